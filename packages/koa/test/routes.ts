import type Router from '@koa/router';
import type { TestRoute } from '../../../test/support/harness.js';
import { sse } from '../src/index.js';

/** Mounts the shared suites' routes on a Koa router. */
export function mountRoutes(router: Router, routes: TestRoute[]): void {
  for (const route of routes) {
    if ('html' in route) {
      router.get(route.path, (ctx) => {
        ctx.type = 'html';
        ctx.body = route.html;
      });
    } else {
      const method = route.method === 'POST' ? 'post' : 'get';
      router[method](
        route.path,
        sse((_ctx, context) => route.events(context), route.options),
      );
    }
  }
}
