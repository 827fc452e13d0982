import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import cors from '@koa/cors';
import Router from '@koa/router';
import Koa from 'koa';
import compress from 'koa-compress';
import session from 'koa-session';
import { concat, NEVER, of } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readUntil, waitFor } from '../../../test/support/clients.js';
import {
  everyKindOfEvent,
  expectEveryKindOfEvent,
  expectPreflightAnswered,
  expectStreamUncompressed,
  ORIGIN,
} from '../../../test/support/ecosystem.js';
import { metered } from '../../../test/support/recording.js';
import { closeStreamsOnServerClose, sse } from '../src/index.js';

/** One app with the ecosystem's most used middleware in front of every route, as a production app has them. */
describe('koa sse() behind koa-compress, @koa/cors and koa-session', () => {
  const { options, closes, seen } = metered();
  const logged: unknown[] = [];
  const app = new Koa({ keys: ['a session key'] });
  app.on('error', (error) => logged.push(error));
  app.use(compress({ threshold: 0 }));
  app.use(cors({ origin: ORIGIN }));
  // koa-session as the README has it for a stream: committed after next() unless a stream's handler did.
  app.use(session({ autoCommit: false }, app));
  app.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      if (!ctx.headerSent) await ctx.session.manuallyCommit();
    }
  });
  const router = new Router();
  router.get(
    '/open',
    sse(() => concat(of({ data: 'hello' }), NEVER), options),
  );
  router.get(
    '/events',
    sse(() => everyKindOfEvent(), options),
  );
  // A route that counts its client's visits in the session.
  router.get(
    '/visit',
    sse(async (ctx) => {
      ctx.session.visits = (ctx.session.visits ?? 0) + 1;
      await ctx.session.manuallyCommit();
      return concat(of({ data: String(ctx.session.visits) }), NEVER);
    }, options),
  );
  router.get('/json', (ctx) => {
    ctx.body = { text: 'x'.repeat(2048) };
  });
  router.get('/page', (ctx) => {
    ctx.session.visits = (ctx.session.visits ?? 0) + 1;
    ctx.body = String(ctx.session.visits);
  });
  app.use(router.routes());
  const server = app.listen(0, '127.0.0.1');
  closeStreamsOnServerClose(server);
  const listening = once(server, 'listening');
  let url = '';

  beforeAll(async () => {
    await listening;
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  // Every case's streams have closed before the next counts its own.
  afterEach(async () => {
    await waitFor(
      () => seen.filter((s) => s === 'opened').length === closes.length,
      5000,
      'the streams to close',
    );
    // Emptied, so an error fails the case it came in, not every case after it.
    expect(logged.splice(0)).toEqual([]);
  });

  it('sends each event at once, uncompressed, while other routes are compressed', async () => {
    const json = await fetch(`${url}/json`, { headers: { 'accept-encoding': 'gzip' } });
    expect(json.headers.get('content-encoding')).toBe('gzip');
    // Read whole: a page cancelled mid-write is Koa's own EPIPE in app.on('error'), not the stream's.
    expect(await json.json()).toEqual({ text: 'x'.repeat(2048) });

    await expectStreamUncompressed(`${url}/open`, seen);
  });

  it("parses exactly in an EventSource, with @koa/cors' headers on a simple GET from another origin", async () => {
    const response = await fetch(`${url}/open`, { headers: { origin: ORIGIN } });
    await response.body?.cancel();
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(response.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(response.headers.get('vary')).toContain('Origin');
    await expectEveryKindOfEvent(`${url}/events`);
  });

  it("answers a CORS preflight with @koa/cors' 204, never a stream", async () => {
    const before = [...seen];
    const response = await expectPreflightAnswered(`${url}/open`);
    expect(response.headers.get('access-control-allow-headers')).toBe('last-event-id');
    expect(seen).toEqual(before);
  });

  it("sends koa-session's cookie with the stream whose handler commits it, and with a page after next()", async () => {
    const first = await fetch(`${url}/visit`);
    await first.body?.cancel();
    const cookies = first.headers.getSetCookie();
    expect(cookies.map((c) => c.split('=')[0])).toEqual(['koa.sess', 'koa.sess.sig']);
    const page = await fetch(`${url}/page`, { headers: { cookie: cookieOf(cookies) } });
    expect(await page.text()).toBe('2');
    const second = await fetch(`${url}/visit`, {
      headers: { cookie: cookieOf(page.headers.getSetCookie()) },
    });
    const reader = second.body?.getReader();
    expect(new TextDecoder().decode((await reader?.read())?.value)).toBe('data: 3\n\n');
    await reader?.cancel();
  });
});

/** The `Cookie` header that sends back what `Set-Cookie` headers set. */
const cookieOf = (setCookies: string[]) => setCookies.map((c) => c.split(';')[0]).join('; ');

describe("koa sse() behind koa-session's default autoCommit", () => {
  it('loses the cookie of a session its handler changed, reported as too late to the app, and streams on', async () => {
    const logged: { code?: string }[] = [];
    const app = new Koa({ keys: ['a session key'] });
    app.on('error', (error) => logged.push(error));
    app.use(session(app));
    app.use(
      sse((ctx) => {
        ctx.session.visits = 1;
        return concat(of({ data: 'hello' }), NEVER);
      }),
    );
    const server = app.listen(0, '127.0.0.1');
    closeStreamsOnServerClose(server);
    await once(server, 'listening');
    try {
      const text = readUntil(
        `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        (text) => text.includes('\n\n'),
        5000,
      );
      await waitFor(() => logged.length === 1, 5000, "the session's error");
      expect(await text).toBe('data: hello\n\n');
      expect(logged[0]?.code).toBe('ERR_HTTP_HEADERS_SENT');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
