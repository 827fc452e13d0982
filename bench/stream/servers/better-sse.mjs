// better-sse 0.16 on Express 5: `createSession` per request, `session.push(data)` per event, and a
// `createChannel()` fed by the Subject for the fan-out, as its docs show. Defaults everywhere
// (so each event carries `event:` and a random UUID `id:` line, as `push` writes them).

import { createChannel, createSession } from 'better-sse';
import express from 'express';
import { fanout, ROUTES, serve } from './common.mjs';

const channel = createChannel();
fanout.subscribe((m) => channel.broadcast(m.data));

/**
 * Pushes every event of `source` to the session. The response stays open when the source completes,
 * as in better-sse's docs: it has no way to end a session, and a `res.end()` of our own makes its
 * keep-alive timer write after the end later, an uncaught ERR_STREAM_WRITE_AFTER_END.
 */
function pushAll(session, source) {
  const subscription = source.subscribe((m) => {
    if (session.isConnected) session.push(m.data);
  });
  session.once('disconnected', () => subscription.unsubscribe());
}

const app = express();
for (const { path, source } of ROUTES) {
  if (path === '/fanout') app.get(path, async (req, res) => channel.register(await createSession(req, res)));
  else app.get(path, async (req, res) => pushAll(await createSession(req, res), source(Number(req.query.n))));
}
const server = app.listen(0, '127.0.0.1', () => serve({ server, subscribers: () => channel.sessionCount }));
