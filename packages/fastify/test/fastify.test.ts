import Fastify from 'fastify';
import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { rxsse } from '../src/index.js';

describeAdapterContract({
  name: 'fastify',
  async start(routes, shutdown) {
    const app = Fastify();
    await app.register(rxsse, { shutdown });
    for (const route of routes) {
      if ('html' in route) app.get(route.path, (_req, reply) => reply.type('text/html').send(route.html));
      else
        app.route({
          method: route.method ?? 'GET',
          url: route.path,
          handler: (_req, reply) => reply.sse(route.events, route.options),
        });
    }
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    return { url: url.replace('localhost', '127.0.0.1'), close: () => app.close() };
  },
});
