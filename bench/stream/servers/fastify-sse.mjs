// @fastify/sse 0.6 on Fastify 5: an `sse: 'only'` route per workload, `reply.sse.send(message)` per
// event of the Observable (keepAlive, so the route outlives its handler), `close()` on complete.

import fastifySSE from '@fastify/sse';
import Fastify from 'fastify';
import { ROUTES, serve } from './common.mjs';

const ignore = () => {};

function sendAll(reply, source) {
  reply.sse.keepAlive();
  reply.sse.sendHeaders();
  const subscription = source.subscribe({
    next: (m) => {
      if (reply.sse.isConnected) reply.sse.send(m).catch(ignore);
    },
    complete: () => reply.sse.close(),
  });
  reply.sse.onClose(() => subscription.unsubscribe());
}

const app = Fastify({ logger: false });
await app.register(fastifySSE);
for (const { path, source } of ROUTES) {
  app.get(path, { sse: 'only' }, async (req, reply) => sendAll(reply, source(Number(req.query.n))));
}
await app.listen({ port: 0, host: '127.0.0.1' });
serve({ server: app.server });
