// rxsse with Express: `node server.mjs` serves http://127.0.0.1:3001/ (PORT overrides).
import { createServer } from 'node:http';
import { closeStreamsOnServerClose, sse } from '@rxsse/express';
import express from 'express';
import { interval, map } from 'rxjs';
import { exampleEvent, firstEventNumber, isMain, listen, page, runMain } from '../shared.mjs';

export const DEFAULT_PORT = 3001;

/** The Express app: the page at `/`, its event stream at `/sse`. */
export function createApp() {
  const app = express();

  app.get('/', (_req, res) => {
    res.type('html').send(page('Express'));
  });

  app.get('/favicon.ico', (_req, res) => {
    res.sendStatus(404);
  });

  // One event a second. A reconnecting EventSource sends the last id it saw, so it resumes after it.
  app.get(
    '/sse',
    sse((_req, { lastEventId }) => {
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
export function start(port = DEFAULT_PORT) {
  const server = createServer(createApp());
  // server.close() ends open streams, telling clients to come back within 1-3 s.
  closeStreamsOnServerClose(server, { retry: 1000, spread: 2000 });
  return listen(server, port);
}

if (isMain(import.meta.url)) await runMain(start, DEFAULT_PORT);
