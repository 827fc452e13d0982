import Router from '@koa/router';
import Koa from 'koa';
import { from } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { fetchBytes } from '../../../test/support/clients.js';
import { serveForSuite } from '../../../test/support/suite-server.js';
import { closeStreamsOnServerClose, sse } from '../src/index.js';

describe('koa sse() when the route is set up', () => {
  it('refuses a handler that is not a function, naming what it got, and says how to pass a source', () => {
    expect(() => sse(from([{ data: 'x' }]) as never)).toThrow(
      /^sse\(\) takes a handler, a function of the request that returns its events, got an object \(Observable\); wrap a source in one: sse\(\(\) => source\)$/,
    );
    expect(() => sse(undefined as never)).toThrow(/, got undefined$/);
    expect(() => sse('/events' as never)).toThrow(TypeError);
  });
});

describe('koa sse() middleware', () => {
  const app = new Koa();
  const logged: unknown[] = [];
  app.on('error', (error) => logged.push(error));
  app.use(async (ctx, next) => {
    ctx.state.user = 'ada';
    await next();
  });
  const router = new Router();
  router.get(
    '/items/:id',
    sse((ctx) => from([{ data: `item ${ctx.params.id} for ${ctx.state.user}` }])),
  );
  app.use(router.routes());
  const server = app.listen(0, '127.0.0.1');
  closeStreamsOnServerClose(server);
  const { url } = serveForSuite(server);

  it("hands the handler Koa's context, with the router's params and earlier middleware's state", async () => {
    const { response, body } = await fetchBytes(`${url()}/items/42`);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(body.toString()).toBe('data: item 42 for ada\n\n');
    expect(logged).toEqual([]);
  });
});

describe('koa sse() behind a middleware that answers errors itself', () => {
  const app = new Koa();
  const logged: unknown[] = [];
  app.on('error', (error) => logged.push(error));
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      ctx.status = 401;
      ctx.body = `refused: ${(error as Error).message}`;
    }
  });
  app.use(
    sse(() => {
      throw new Error('no token');
    }),
  );
  const server = app.listen(0, '127.0.0.1');
  closeStreamsOnServerClose(server);
  const { url } = serveForSuite(server);

  it('hands it a handler failure before the first byte, as any middleware would, for its own answer', async () => {
    const { response, body } = await fetchBytes(`${url()}/events`);
    expect(response.status).toBe(401);
    expect(body.toString()).toBe('refused: no token');
    expect(logged).toEqual([]);
  });
});
