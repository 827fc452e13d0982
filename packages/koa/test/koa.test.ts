import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { closeStreamsOnServerClose } from '../src/index.js';
import { mountRoutes } from './routes.js';

describeAdapterContract({
  name: 'koa',
  async start(routes, shutdown) {
    const app = new Koa();
    const appErrors: unknown[] = [];
    app.on('error', (error) => appErrors.push(error));
    const router = new Router();
    mountRoutes(router, routes);
    app.use(router.routes());
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closeStreamsOnServerClose(server, shutdown);
    return {
      appErrors,
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  },
});
