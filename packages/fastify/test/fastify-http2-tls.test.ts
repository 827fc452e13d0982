import Fastify from 'fastify';
import { describeHttp2Contract } from '../../../test/http2-contract.js';
import { fastifyLogStream } from '../../../test/support/logged.js';
import { rxsse } from '../src/index.js';

describeHttp2Contract({
  name: 'fastify',
  async start({ key, cert }, routes, onRequest) {
    const logged: string[] = [];
    const app = Fastify({
      http2: true,
      https: { key, cert, allowHTTP1: true },
      logger: { level: 'error', stream: fastifyLogStream(logged) },
    });
    await app.register(rxsse);
    app.addHook('onRequest', async (req) => onRequest(req.raw));
    for (const route of routes) {
      if ('html' in route) app.get(route.path, (_req, reply) => reply.type('text/html').send(route.html));
      else app.get(route.path, (_req, reply) => reply.sse(route.events, route.options));
    }
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    return { url, logged, close: () => app.close() };
  },
});
