import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { of } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/clients.js';
import { neverYielding, recording } from '../../../test/support/recording.js';
import { sse } from '../src/index.js';

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** Serves `app` on 127.0.0.1 until the test ends: its URL. */
async function listen(app: Koa): Promise<string> {
  const server = createServer(app.callback());
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** A timeout middleware in front: it answers with a 503 once `late()` is called, if the route has not. */
function timeoutInFront(app: Koa): () => void {
  let late!: () => void;
  const timedOut = new Promise<void>((resolve) => (late = resolve));
  app.use(async (ctx, next) => {
    await Promise.race([next(), timedOut]);
    if (!ctx.res.headersSent) {
      ctx.status = 503;
      ctx.body = 'timed out';
    }
  });
  return late;
}

describe('koa: a middleware in front that answers while the handler still sets up', () => {
  it('counts no stream and subscribes no source, as for a handler that failed, instead of a client close', async () => {
    const { options, closes } = recording();
    const logged: unknown[] = [];
    const app = new Koa();
    app.on('error', (error) => logged.push(error));
    let entered = 0;
    app.use((_ctx, next) => {
      entered++;
      return next();
    });
    const late = timeoutInFront(app);
    let resolveSource!: () => void;
    const producing = new Promise<void>((resolve) => (resolveSource = resolve));
    let subscribed = 0;
    const held = neverYielding();
    const settled: Promise<void>[] = [];
    const pending = (work: () => Promise<unknown>) => {
      const done = work();
      settled.push(
        done.then(
          () => undefined,
          () => undefined,
        ),
      );
      return done;
    };
    const router = new Router();
    router.get(
      '/observable',
      sse(
        () =>
          pending(async () => {
            await producing;
            return {
              subscribe: () => {
                subscribed++;
                return { unsubscribe() {} };
              },
            };
          }) as never,
        options,
      ),
    );
    router.get(
      '/iterator',
      sse(
        () =>
          pending(async () => {
            await producing;
            return held.iterator;
          }) as never,
        options,
      ),
    );
    // A handler that gave its signal to a fetch fails with its abort once the response ended.
    router.get(
      '/signal',
      sse(
        (_ctx, { signal }) =>
          pending(async () => {
            await producing;
            if (!signal.aborted) await once(signal, 'abort');
            throw signal.reason;
          }) as never,
        options,
      ),
    );
    app.use(router.routes());
    const url = await listen(app);
    const responses = ['/observable', '/iterator', '/signal'].map((path) => fetch(new URL(path, url)));
    await waitFor(() => settled.length === 3 && entered === 3, 5000, 'the three handlers');
    late();
    for (const response of await Promise.all(responses)) {
      expect(response.status).toBe(503);
      expect(await response.text()).toBe('timed out');
    }
    resolveSource();
    await Promise.all(settled);
    expect(closes.map(({ reason }) => reason)).toEqual([]);
    expect(subscribed).toBe(0);
    await waitFor(held.returned, 5000, 'the iterator returned');
    expect(logged).toEqual([]);
  });

  it("reports to the app a handler's own failure after the answer, which the race in front no longer awaits", async () => {
    const { options, closes } = recording();
    const logged: unknown[] = [];
    const app = new Koa();
    app.on('error', (error) => logged.push(error));
    const late = timeoutInFront(app);
    let entered = false;
    let release!: () => void;
    const producing = new Promise<void>((resolve) => (release = resolve));
    app.use(
      sse(async () => {
        entered = true;
        await producing;
        throw new Error('database down');
      }, options),
    );
    const responding = fetch(await listen(app));
    await waitFor(() => entered, 5000, 'the handler');
    late();
    const response = await responding;
    expect([response.status, await response.text()]).toEqual([503, 'timed out']);
    release();
    await waitFor(() => logged.length > 0, 2000, 'the failure reported');
    expect(logged.map(String)).toEqual(['Error: database down']);
    expect(closes).toEqual([]);
  });

  it('runs no handler and counts no stream when the middleware in front answered before the route was reached', async () => {
    const { options, closes } = recording();
    const app = new Koa();
    const late = timeoutInFront(app);
    // A slow step before the route: the answer comes while it runs.
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    let reached = false;
    app.use(async (_ctx, next) => {
      reached = true;
      await slow;
      await next();
    });
    let ran = 0;
    let routeDone: Promise<void> | undefined;
    const route = sse(() => {
      ran++;
      return of({ data: 'first' });
    }, options);
    app.use((ctx, next) => {
      routeDone = route(ctx, next) as Promise<void>;
      return routeDone;
    });
    const responding = fetch(await listen(app));
    await waitFor(() => reached, 5000, 'the slow step');
    late();
    const response = await responding;
    expect(response.status).toBe(503);
    expect(await response.text()).toBe('timed out');
    release();
    await waitFor(() => routeDone !== undefined, 5000, 'the route');
    await routeDone;
    expect(ran).toBe(0);
    expect(closes.map(({ reason }) => reason)).toEqual([]);
  });
});
