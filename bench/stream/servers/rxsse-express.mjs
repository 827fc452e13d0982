// rxsse on Express 5: `sse(handler, options)` per route, default options except the burst's cap.

import { sse } from '@rxsse/express';
import express from 'express';
import { BURST_OPTIONS, burstSource, fanout, serve, stallSource } from './common.mjs';

const app = express();
const routes = {
  '/burst': sse((req) => burstSource(Number(req.query.n)), BURST_OPTIONS),
  '/fanout': sse(() => fanout),
  '/stall': sse((req) => stallSource(Number(req.query.n))),
};
for (const [path, route] of Object.entries(routes)) app.get(path, route);
const server = app.listen(0, '127.0.0.1', () => serve({ server }));
