import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { MessageEvent } from '@rxsse/core';
import express from 'express';
import { concat, from, Observable, throwError } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { fetchBytes, waitFor } from '../../../test/support/clients.js';
import { captureConsoleErrors } from '../../../test/support/logged.js';
import { recording } from '../../../test/support/recording.js';
import { serveForSuite } from '../../../test/support/suite-server.js';
import { closeStreamsOnServerClose, sse } from '../src/index.js';

describe('express sse() when the route is set up', () => {
  it('refuses a handler that is not a function, naming what it got, and says how to pass a source', () => {
    expect(() => sse(from([{ data: 'x' }]) as never)).toThrow(
      /^sse\(\) takes a handler, a function of the request that returns its events, got an object \(Observable\); wrap a source in one: sse\(\(\) => source\)$/,
    );
    expect(() => sse(undefined as never)).toThrow(/, got undefined$/);
    expect(() => sse('/events' as never)).toThrow(TypeError);
  });
});

describe('express sse() on a mounted router', () => {
  const app = express();
  const api = express.Router();
  api.get(
    '/items/:id',
    sse((req) => from([{ data: `item ${req.params.id}` }])),
  );
  api.get(
    '/broken',
    sse(() =>
      concat(
        from([{ data: 'first' }]),
        throwError(() => new Error('database went away')),
      ),
    ),
  );
  // Another writer starts the response, hands the request on, and ends its answer later.
  api.get(
    '/owned',
    (_req, res, next) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part one;');
      setTimeout(() => res.end('part two'), 50);
      next();
    },
    sse(() => from([{ data: 'x' }])),
  );
  app.use('/api', api);
  const server = app.listen(0, '127.0.0.1');
  closeStreamsOnServerClose(server);
  const { url } = serveForSuite(server);

  it("hands the handler Express's request, with the route's params", async () => {
    expect((await fetchBytes(`${url()}/api/items/42`)).body.toString()).toBe('data: item 42\n\n');
  });

  it('reports a later error on console.error with the path the client asked for, mount point included', async () => {
    const logged: string[] = [];
    const restore = captureConsoleErrors(logged);
    try {
      expect((await fetchBytes(`${url()}/api/broken`)).body.toString()).toBe('data: first\n\n');
      await waitFor(() => logged.length === 1, 5000, 'the report');
    } finally {
      restore();
    }
    expect(logged[0]).toMatch(/^rxsse: event stream GET \/api\/broken failed: Error: database went away/);
  });

  it("refuses a response another writer is sending, logged, and leaves it to finish: Express's own answer would cut it", async () => {
    const logged: string[] = [];
    const restore = captureConsoleErrors(logged);
    try {
      const { response, body } = await fetchBytes(`${url()}/api/owned`);
      expect(response.headers.get('content-type')).toBe('text/plain');
      expect(body.toString()).toBe('part one;part two');
      await waitFor(() => logged.length === 1, 5000, 'the report');
    } finally {
      restore();
    }
    expect(logged[0]).toMatch(/^rxsse: event stream GET \/api\/owned failed: ResponseBeingSentError: /);
  });

  it('leaves the query out of the report: EventSource clients carry tokens there', async () => {
    const logged: string[] = [];
    const restore = captureConsoleErrors(logged);
    try {
      await fetchBytes(`${url()}/api/broken?access_token=secret&lastEventId=7`);
      await waitFor(() => logged.length === 1, 5000, 'the report');
    } finally {
      restore();
    }
    expect(logged[0]).toMatch(/^rxsse: event stream GET \/api\/broken failed: Error: database went away/);
    expect(logged[0]).not.toContain('secret');
  });
});

describe('express sse() behind a timeout middleware that answers while the handler sets up', () => {
  it('counts no stream and subscribes no source, instead of a client close', async () => {
    const { options, closes } = recording();
    let late!: () => void;
    const timedOut = new Promise<void>((resolve) => (late = resolve));
    let release!: () => void;
    const producing = new Promise<void>((resolve) => (release = resolve));
    let entered = 0;
    let subscribed = 0;
    const app = express();
    // A timeout's race, as `connect-timeout` answers: a 503 once `late`, if the route has not.
    app.use((_req, res, next) => {
      void timedOut.then(() => {
        if (!res.headersSent) res.status(503).send('timed out');
      });
      next();
    });
    app.get(
      '/slow',
      sse(async () => {
        entered++;
        await producing;
        return new Observable<MessageEvent>(() => {
          subscribed++;
        });
      }, options),
    );
    // A handler that gave its signal to a fetch fails with its abort once the response ended.
    app.get(
      '/signal',
      sse(async (_req, { signal }) => {
        entered++;
        if (!signal.aborted) await once(signal, 'abort');
        throw signal.reason;
      }, options),
    );
    const logged: unknown[] = [];
    app.use((error: unknown, _req: express.Request, _res: express.Response, next: express.NextFunction) => {
      logged.push(error);
      next(error);
    });
    const server = app.listen(0, '127.0.0.1');
    try {
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const responses = ['/slow', '/signal'].map((path) => fetch(`http://127.0.0.1:${port}${path}`));
      await waitFor(() => entered === 2, 5000, 'both handlers');
      late();
      for (const response of await Promise.all(responses)) {
        expect([response.status, await response.text()]).toEqual([503, 'timed out']);
      }
      release();
      // The handler and the stream's setup settle in microtasks: a macrotask later, both have.
      await new Promise(setImmediate);
      expect([closes.map(({ reason }) => reason), subscribed, logged]).toEqual([[], 0, []]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
