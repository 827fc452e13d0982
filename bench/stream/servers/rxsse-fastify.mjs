// rxsse on Fastify 5: the plugin, then `reply.sse(source, options)` per route.

import { rxsse } from '@rxsse/fastify';
import Fastify from 'fastify';
import { ROUTES, serve } from './common.mjs';

const app = Fastify({ logger: false });
await app.register(rxsse);
for (const { path, source, options } of ROUTES) {
  app.get(path, (req, reply) => reply.sse(source(Number(req.query.n)), options));
}
await app.listen({ port: 0, host: '127.0.0.1' });
serve({ server: app.server });
