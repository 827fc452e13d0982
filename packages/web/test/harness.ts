import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { closeStreamsOnServerClose } from '@rxsse/node';
import { Hono } from 'hono';
import type { AdapterHarness, TestRoute } from '../../../test/support/harness.js';
import { captureConsoleErrors } from '../../../test/support/logged.js';
import { sse } from '../src/index.js';
import { serveFetch } from './node-bridge.js';

/** One fetch handler for all of a test's routes. */
function routeHandler(routes: TestRoute[]): (request: Request) => Promise<Response> {
  const handlers = new Map(
    routes.map((route) => [
      route.path,
      'html' in route
        ? async () => new Response(route.html, { headers: { 'content-type': 'text/html; charset=utf-8' } })
        : sse((_request, context) => route.events(context), route.options),
    ]),
  );
  return async (request) => {
    const handler = handlers.get(new URL(request.url).pathname);
    return handler ? handler(request) : new Response('not found', { status: 404 });
  };
}

async function running(server: Server, shutdown: Parameters<AdapterHarness['start']>[1], logged: string[]) {
  const restoreConsole = captureConsoleErrors(logged);
  if (!server.listening) await once(server, 'listening');
  closeStreamsOnServerClose(server, shutdown);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    logged,
    close: () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          restoreConsole();
          resolve();
        }),
      ),
  };
}

/** Hono on `@hono/node-server`, each route `app.get(path, (c) => handler(c.req.raw))`. */
export const honoHarness: AdapterHarness = {
  name: 'hono on @hono/node-server',
  traits: {
    openingComment: true,
    holdsBytesWithinTick: true,
    logsDroppedStreams: true,
    // Node 24 closes a response queued behind pipelined ones when the connection drops; Node 20
    // does not, and @hono/node-server does not watch the socket meanwhile.
    missesQueuedDisconnects: Number(process.versions.node.split('.')[0]) < 24,
    missesHalfCloses: true,
    noHopByHopHeaders: true,
  },
  async start(routes, shutdown) {
    const app = new Hono();
    for (const route of routes) {
      const handler = routeHandler([route]);
      if ('html' in route) app.get(route.path, (c) => handler(c.req.raw));
      else app.on(route.method ?? 'GET', route.path, (c) => handler(c.req.raw));
    }
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    return running(server, shutdown, []);
  },
};

/** A plain `node:http` server bridging to the fetch handler. */
export const nodeBridgeHarness: AdapterHarness = {
  name: 'node:http bridge',
  traits: {
    openingComment: true,
    holdsBytesWithinTick: true,
    noHopByHopHeaders: true,
    hearsDisconnectsOnlyThroughBody: true,
    missesHalfCloses: true,
  },
  async start(routes, shutdown) {
    const server = serveFetch(routeHandler(routes)).listen(0, '127.0.0.1');
    return running(server, shutdown, []);
  },
};
