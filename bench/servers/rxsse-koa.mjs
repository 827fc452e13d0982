// rxsse on Koa 3 with @koa/router: `sse(handler, options)` as route middleware.

import Router from '@koa/router';
import { sse } from '@rxsse/koa';
import Koa from 'koa';
import { burstSource, fanout, serve, stallSource } from './common.mjs';
import { BURST_OPTIONS } from './rxsse-options.mjs';

const app = new Koa();
const router = new Router();
router.get(
  '/burst',
  sse((ctx) => burstSource(Number(ctx.query.n)), BURST_OPTIONS),
);
router.get(
  '/fanout',
  sse(() => fanout),
);
router.get(
  '/stall',
  sse((ctx) => stallSource(Number(ctx.query.n))),
);
app.use(router.routes());

const server = app.listen(0, '127.0.0.1', () => serve({ server }));
