import Fastify from 'fastify';
import type { AdapterHarness } from '../../../test/support/harness.js';
import { fastifyLogStream } from '../../../test/support/logged.js';
import { rxsse } from '../src/index.js';

/** The shared suites' harness for the given Fastify: the rxsse plugin, logging errors into `logged`. */
export function fastifyHarnessOf(name: string, createApp: typeof Fastify): AdapterHarness {
  return {
    name,
    async start(routes, shutdown) {
      const logged: string[] = [];
      // rxsse answers event-stream requests during shutdown with a reconnect hint, not a 503.
      const app = createApp({
        return503OnClosing: false,
        logger: { level: 'error', stream: fastifyLogStream(logged) },
      });
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
      return { url: url.replace('localhost', '127.0.0.1'), logged, close: () => app.close() };
    },
  };
}

/** The shared suites' harness on the Fastify the package is developed against. */
export const fastifyHarness: AdapterHarness = fastifyHarnessOf('fastify', Fastify);
