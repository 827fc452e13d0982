// rxsse with Hono on Node: `node server.mjs` serves http://127.0.0.1:3005/ (PORT overrides).
import { createAdaptorServer } from '@hono/node-server';
import { closeStreamsOnServerClose } from '@rxsse/node';
import { sse } from '@rxsse/web';
import { Hono } from 'hono';
import { interval, map } from 'rxjs';
import { exampleEvent, firstEventNumber, isMain, listen, page, runMain } from '../shared.mjs';

export const DEFAULT_PORT = 3005;

// One event a second. A reconnecting EventSource sends the last id it saw, so it resumes after it.
const events = sse((_request, { lastEventId }) => {
  const first = firstEventNumber(lastEventId);
  return interval(1000).pipe(map((i) => exampleEvent(first + i)));
});

/** The Hono app: the page at `/`, its event stream at `/sse`. */
export function createApp() {
  const app = new Hono();
  app.get('/', (c) => c.html(page('Hono')));
  app.get('/sse', (c) => events(c.req.raw));
  return app;
}

/**
 * Starts the example on 127.0.0.1:`port` (0 picks a free port).
 * @param {number} [port]
 * @returns {Promise<{ url: string; close(): Promise<void> }>}
 */
export function start(port = DEFAULT_PORT) {
  const server = createAdaptorServer({ fetch: createApp().fetch });
  // server.close() ends open streams, telling clients to come back within 1-3 s.
  closeStreamsOnServerClose(server, { retry: 1000, spread: 2000 });
  return listen(server, port);
}

if (isMain(import.meta.url)) await runMain(start, DEFAULT_PORT);
