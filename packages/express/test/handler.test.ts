import express from 'express';
import { concat, from, throwError } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { fetchBytes, waitFor } from '../../../test/support/clients.js';
import { captureConsoleErrors } from '../../../test/support/logged.js';
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
