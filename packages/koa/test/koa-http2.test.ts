import { once } from 'node:events';
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { describeHttp2Contract } from '../../../test/http2-contract.js';
import { closeStreamsOnServerClose } from '../src/index.js';
import { mountRoutes } from './routes.js';

describeHttp2Contract({
  name: 'koa (http2.createSecureServer)',
  async start({ key, cert }, routes, onRequest) {
    const app = new Koa();
    const logged: string[] = [];
    app.on('error', (error) => logged.push(String(error)));
    app.use(async (ctx, next) => {
      onRequest(ctx.req);
      await next();
    });
    const router = new Router();
    mountRoutes(router, routes);
    app.use(router.routes());
    const server = createSecureServer({ key, cert, allowHTTP1: true }, app.callback());
    closeStreamsOnServerClose(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
      logged,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  },
});
