// rxsse on Express 5: `sse(handler, options)` per route, default options except the burst's cap.

import { sse } from '@rxsse/express';
import express from 'express';
import { listen, ROUTES } from './common.mjs';

const app = express();
for (const { path, source, options } of ROUTES) {
  const handler = sse((req) => source(Number(req.query.n)), options);
  app.get(path, handler);
}
listen(app);
