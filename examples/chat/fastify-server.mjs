// The chat on Fastify: `node fastify-server.mjs` serves http://127.0.0.1:3012/ (PORT overrides).
import { rxsse } from '@rxsse/fastify';
import Fastify from 'fastify';
import { isMain, runMain, serverUrl } from '../shared.mjs';
import { closeAll, page, post, room, streamOptions } from './chat.mjs';

export const DEFAULT_PORT = 3012;

/** @param {string} self this instance's base URL */
export async function createApp(self) {
  const app = Fastify();
  await app.register(rxsse, { ...streamOptions, shutdown: { retry: 500, spread: 1000 } });
  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(page('Fastify', self)));
  app.get('/favicon.ico', (_request, reply) => reply.code(404).send());
  app.get('/events', (_request, reply) => reply.sse((context) => room.subscribe(context)));
  // Posts are JSON sent as text/plain (no CORS preflight); take any type as text, like Express.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  app.post('/messages', async (request, reply) => {
    const [status, body] = await post(request.body, 'fastify');
    return reply.code(status).header('Access-Control-Allow-Origin', '*').send(body);
  });
  return app;
}

/** @param {number} [port] */
export async function start(port = DEFAULT_PORT) {
  const app = await createApp(`http://127.0.0.1:${port}`);
  await app.listen({ port, host: '127.0.0.1' });
  return { url: serverUrl(app.server), close: () => closeAll({ close: () => app.close() }) };
}

if (isMain(import.meta.url)) await runMain(start, DEFAULT_PORT);
