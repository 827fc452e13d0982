// rxsse on Fastify 5: the plugin, then `reply.sse(source, options)` per route.

import { rxsse } from '@rxsse/fastify';
import Fastify from 'fastify';
import { BURST_OPTIONS, burstSource, fanout, serve, stallSource } from './common.mjs';

const app = Fastify({ logger: false });
await app.register(rxsse);
app.get('/burst', (req, reply) => reply.sse(burstSource(Number(req.query.n)), BURST_OPTIONS));
app.get('/fanout', (_req, reply) => reply.sse(fanout));
app.get('/stall', (req, reply) => reply.sse(stallSource(Number(req.query.n))));

await app.listen({ port: 0, host: '127.0.0.1' });
serve({ server: app.server });
