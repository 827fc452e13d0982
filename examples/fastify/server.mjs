// rxsse with Fastify: `node server.mjs` serves http://127.0.0.1:3002/ (PORT overrides).
import { rxsse } from '@rxsse/fastify';
import Fastify from 'fastify';
import { interval, map } from 'rxjs';
import { exampleEvent, firstEventNumber, isMain, page, runMain, serverUrl } from '../shared.mjs';

export const DEFAULT_PORT = 3002;

/** The Fastify app: the page at `/`, its event stream at `/sse`. */
export async function createApp() {
  const app = Fastify();
  // app.close() ends open streams, telling clients to come back within 1-3 s.
  await app.register(rxsse, { shutdown: { retry: 1000, spread: 2000 } });

  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(page('Fastify')));

  app.get('/favicon.ico', (_request, reply) => reply.code(404).send());

  // One event a second. A reconnecting EventSource sends the last id it saw, so it resumes after it.
  app.get('/sse', (_request, reply) =>
    reply.sse(({ lastEventId }) => {
      const first = firstEventNumber(lastEventId);
      return interval(1000).pipe(map((i) => exampleEvent(first + i)));
    }),
  );

  return app;
}

/**
 * Starts the example on 127.0.0.1:`port` (0 picks a free port).
 * @param {number} [port]
 * @returns {Promise<{ url: string; close(): Promise<void> }>}
 */
export async function start(port = DEFAULT_PORT) {
  const app = await createApp();
  await app.listen({ port, host: '127.0.0.1' });
  return { url: serverUrl(app.server), close: () => app.close() };
}

if (isMain(import.meta.url)) await runMain(start, DEFAULT_PORT);
