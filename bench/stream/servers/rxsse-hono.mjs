// rxsse on Hono with @hono/node-server: the fetch handler of @rxsse/web, `handler(c.req.raw)`.

import { serve as listen } from '@hono/node-server';
import { sse } from '@rxsse/web';
import { Hono } from 'hono';
import { BURST_OPTIONS, burstSource, fanout, queryNumber, serve, stallSource } from './common.mjs';

const burst = sse((request) => burstSource(queryNumber(request.url, 'n')), BURST_OPTIONS);
const fan = sse(() => fanout);
const stall = sse((request) => stallSource(queryNumber(request.url, 'n')));

const app = new Hono();
app.get('/burst', (c) => burst(c.req.raw));
app.get('/fanout', (c) => fan(c.req.raw));
app.get('/stall', (c) => stall(c.req.raw));

const server = listen({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => serve({ server }));
