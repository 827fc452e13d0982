// rxsse on Hono with @hono/node-server: the fetch handler of @rxsse/web, `handler(c.req.raw)`.

import { getRequestListener } from '@hono/node-server';
import { sse } from '@rxsse/web';
import { Hono } from 'hono';
import { listen, queryN, ROUTES } from './common.mjs';

const app = new Hono();
for (const { path, source, options } of ROUTES) {
  const handler = sse((request) => source(queryN(request.url)), options);
  app.get(path, (c) => handler(c.req.raw));
}
listen(getRequestListener(app.fetch, { hostname: '127.0.0.1' }));
