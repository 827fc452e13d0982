import express, { type ErrorRequestHandler } from 'express';
import { NEVER } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { describeHostileContract } from '../../../test/hostile-contract.js';
import { serveForSuite } from '../../../test/support/suite-server.js';
import { sse } from '../src/index.js';
import { expressHarness } from './harness.js';

describeHostileContract(expressHarness('express 5', express));

describe('express route options', () => {
  it('are checked when the route is created', () => {
    expect(() => sse(() => NEVER, { maxLifetime: 30 * 86_400_000 })).toThrow(/maxLifetime/);
    expect(() => sse(() => NEVER, { retry: 1.5 })).toThrow(/retry/);
    expect(() => sse(() => NEVER, { stallTimeout: Number.POSITIVE_INFINITY })).toThrow(/stallTimeout/);
    expect(() => sse(() => NEVER, { maxQueueByte: 1e6 } as never)).toThrow(
      /^Unknown stream option "maxQueueByte" \(did you mean "maxQueueBytes"\?\)$/,
    );
  });
});

describe('express sse() with a handler that fails without a reason', () => {
  const app = express();
  app.get(
    '/thrown',
    sse(() => {
      throw undefined;
    }),
  );
  app.get(
    '/rejected',
    sse(() => Promise.reject(null)),
  );
  app.get(
    '/falsy',
    sse(() => Promise.reject(0)),
  );
  // What a next() without an error would reach: the page of a single-page app.
  app.get('/*path', (_req, res) => res.type('html').send('<!doctype html>'));
  const errors: unknown[] = [];
  const recordError: ErrorRequestHandler = (error, _req, res, _next) => {
    errors.push(error);
    res.status(500).end();
  };
  app.use(recordError);
  const { url } = serveForSuite(app.listen(0, '127.0.0.1'));

  it.each(['thrown', 'rejected', 'falsy'])("is answered by Express's error handler when %s", async (path) => {
    const response = await fetch(`${url()}/${path}`);
    expect(response.status).toBe(500);
    expect(errors.pop()).toBeInstanceOf(Error);
  });
});
