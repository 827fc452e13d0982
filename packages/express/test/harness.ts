import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import type { ErrorRequestHandler } from 'express';
import type { AdapterHarness } from '../../../test/support/harness.js';
import { captureConsoleErrors } from '../../../test/support/logged.js';
import { closeStreamsOnServerClose, sse } from '../src/index.js';

/** The shared suites' harness for an Express of the given major version. */
export function expressHarness(name: string, createApp: typeof express): AdapterHarness {
  return {
    name,
    async start(routes, shutdown) {
      const app = createApp();
      for (const route of routes) {
        if ('html' in route) app.get(route.path, (_req, res) => res.type('html').send(route.html));
        else
          app[route.method === 'POST' ? 'post' : 'get'](
            route.path,
            sse((_req, ctx) => route.events(ctx), route.options),
          );
      }
      const logged: string[] = [];
      // What Express's final handler answers with, recorded: it prints nothing under NODE_ENV=test.
      const recordError: ErrorRequestHandler = (error, _req, _res, next) => {
        logged.push(String(error));
        next(error);
      };
      app.use(recordError);
      const restoreConsole = captureConsoleErrors(logged);
      const server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      closeStreamsOnServerClose(server, shutdown);
      return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        logged,
        close: () =>
          new Promise((resolve) =>
            server.close(() => {
              restoreConsole();
              resolve();
            }),
          ),
      };
    },
  };
}
