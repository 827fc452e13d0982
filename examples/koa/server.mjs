// rxsse with Koa: `node server.mjs` serves http://127.0.0.1:3003/ (PORT overrides).
import { createServer } from 'node:http';
import Router from '@koa/router';
import { closeStreamsOnServerClose, sse } from '@rxsse/koa';
import Koa from 'koa';
import { interval, map } from 'rxjs';
import { exampleEvent, firstEventNumber, isMain, listen, page, runMain } from '../shared.mjs';

export const DEFAULT_PORT = 3003;

/** The Koa app: the page at `/`, its event stream at `/sse`. */
export function createApp() {
  const app = new Koa();
  const router = new Router();

  router.get('/', (ctx) => {
    ctx.type = 'html';
    ctx.body = page('Koa');
  });

  router.get('/favicon.ico', (ctx) => {
    ctx.status = 404;
  });

  // One event a second. A reconnecting EventSource sends the last id it saw, so it resumes after it.
  router.get(
    '/sse',
    sse((_ctx, { lastEventId }) => {
      const first = firstEventNumber(lastEventId);
      return interval(1000).pipe(map((i) => exampleEvent(first + i)));
    }),
  );

  app.use(router.routes()).use(router.allowedMethods());

  return app;
}

/**
 * Starts the example on 127.0.0.1:`port` (0 picks a free port).
 * @param {number} [port]
 * @returns {Promise<{ url: string; close(): Promise<void> }>}
 */
export function start(port = DEFAULT_PORT) {
  const server = createServer(createApp().callback());
  // server.close() ends open streams, telling clients to come back within 1-3 s.
  closeStreamsOnServerClose(server, { retry: 1000, spread: 2000 });
  return listen(server, port);
}

if (isMain(import.meta.url)) await runMain(start, DEFAULT_PORT);
