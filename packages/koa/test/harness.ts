import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import type { AdapterHarness } from '../../../test/support/harness.js';
import { closeStreamsOnServerClose } from '../src/index.js';
import { mountRoutes } from './routes.js';

/** The shared suites' harness for a Koa of the given major version, with @koa/router on node:http. */
export function koaHarnessOf(name: string, App: typeof Koa): AdapterHarness {
  return {
    name,
    async start(routes, shutdown) {
      const app = new App();
      const logged: string[] = [];
      app.on('error', (error) => logged.push(String(error)));
      const router = new Router();
      mountRoutes(router, routes);
      app.use(router.routes());
      const server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      closeStreamsOnServerClose(server, shutdown);
      return {
        logged,
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise((resolve) => server.close(() => resolve())),
      };
    },
  };
}

export const koaHarness: AdapterHarness = koaHarnessOf('koa', Koa);
