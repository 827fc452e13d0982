// rxsse on Koa 3 with @koa/router: `sse(handler, options)` as route middleware.

import Router from '@koa/router';
import { sse } from '@rxsse/koa';
import Koa from 'koa';
import { listen, ROUTES } from './common.mjs';

const router = new Router();
for (const { path, source, options } of ROUTES) {
  const handler = sse((ctx) => source(Number(ctx.query.n)), options);
  router.get(path, handler);
}
listen(new Koa().use(router.routes()).callback());
