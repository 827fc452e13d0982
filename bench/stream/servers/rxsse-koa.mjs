// rxsse on Koa 3 with @koa/router: `sse(handler, options)` as route middleware.

import Router from '@koa/router';
import { sse } from '@rxsse/koa';
import Koa from 'koa';
import { BURST_OPTIONS, burstSource, fanout, serve, stallSource } from './common.mjs';

const router = new Router();
const routes = {
  '/burst': sse((ctx) => burstSource(Number(ctx.query.n)), BURST_OPTIONS),
  '/fanout': sse(() => fanout),
  '/stall': sse((ctx) => stallSource(Number(ctx.query.n))),
};
for (const [path, route] of Object.entries(routes)) router.get(path, route);
const server = new Koa().use(router.routes()).listen(0, '127.0.0.1', () => serve({ server }));
