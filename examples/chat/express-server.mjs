// The chat on Express: `node express-server.mjs` serves http://127.0.0.1:3011/ (PORT overrides).
import { createServer } from 'node:http';
import { closeStreamsOnServerClose, sse } from '@rxsse/express';
import express from 'express';
import { isMain, listen, runMain } from '../shared.mjs';
import { closeAll, page, post, room, streamOptions } from './chat.mjs';

export const DEFAULT_PORT = 3011;

/** @param {string} self this instance's base URL */
export function createApp(self) {
  const app = express();
  app.get('/', (_req, res) => res.type('html').send(page('Express', self)));
  app.get('/favicon.ico', (_req, res) => res.sendStatus(404));
  // The handler's context ({ lastEventId, signal }) is exactly what subscribe() takes.
  app.get(
    '/events',
    sse((_req, context) => room.subscribe(context), streamOptions),
  );
  app.post('/messages', express.text({ type: '*/*' }), async (req, res) => {
    const [status, body] = await post(req.body, 'express');
    res.status(status).set('Access-Control-Allow-Origin', '*').json(body);
  });
  return app;
}

/** @param {number} [port] */
export async function start(port = DEFAULT_PORT) {
  const self = `http://127.0.0.1:${port}`;
  const server = createServer(createApp(self));
  closeStreamsOnServerClose(server, { retry: 500, spread: 1000 });
  const running = await listen(server, port);
  return { url: running.url, close: () => closeAll(running) };
}

if (isMain(import.meta.url)) await runMain(start, DEFAULT_PORT);
