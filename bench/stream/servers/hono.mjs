// Hono's own `streamSSE` on @hono/node-server, as its documentation shows it: the burst awaits each
// `writeSSE` (its only backpressure); fan-out and the stall workload write as events arrive, since
// an Observable cannot wait for a write.

import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { burstSource, fanout, listen, queryN, stallSource } from './common.mjs';

const message = ({ data }) => ({ data: JSON.stringify(data) });

/** Writes every event of `source` without waiting, until it completes or the client leaves. */
const forward = (c, source) =>
  streamSSE(c, async (stream) => {
    await new Promise((resolve) => {
      const subscription = source.subscribe({
        next: (m) => void stream.writeSSE(message(m)),
        complete: resolve,
      });
      stream.onAbort(() => {
        subscription.unsubscribe();
        resolve();
      });
    });
  });

const app = new Hono();
app.get('/burst', (c) =>
  streamSSE(c, async (stream) => {
    const messages = [];
    burstSource(queryN(c.req.url)).subscribe((m) => messages.push(m));
    for (const m of messages) await stream.writeSSE(message(m));
  }),
);
app.get('/fanout', (c) => forward(c, fanout));
app.get('/stall', (c) => forward(c, stallSource(queryN(c.req.url))));
listen(getRequestListener(app.fetch, { hostname: '127.0.0.1' }));
