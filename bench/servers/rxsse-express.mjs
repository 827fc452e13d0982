// rxsse on Express 5: `sse(handler, options)` per route, default options except the burst's cap.

import { sse } from '@rxsse/express';
import express from 'express';
import { burstSource, fanout, serve, stallSource } from './common.mjs';
import { BURST_OPTIONS } from './rxsse-options.mjs';

const app = express();
app.get(
  '/burst',
  sse((req) => burstSource(Number(req.query.n)), BURST_OPTIONS),
);
app.get(
  '/fanout',
  sse(() => fanout),
);
app.get(
  '/stall',
  sse((req) => stallSource(Number(req.query.n))),
);

const server = app.listen(0, '127.0.0.1', () => serve({ server }));
