import { text } from 'node:stream/consumers';
import cookie from '@fastify/cookie';
import { type MessageEvent, openStreams, StreamGroup } from '@rxsse/core';
import Fastify, { type FastifyInstance } from 'fastify';
import { concat, map, NEVER, of, range, Subject, startWith } from 'rxjs';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  expectCloseEndsOnlyItsOwnStreams,
  expectSecondServerClosedWithApp,
  expectStreamPastHandlerTimeout,
  localhostOnBothLoopbacks,
  turnAwayWhileClosing,
} from '../../../test/support/app-lifecycle.js';
import { fetchBytes, rawClient, waitFor } from '../../../test/support/clients.js';
import { fastifyLogStream } from '../../../test/support/logged.js';
import { counted, recording } from '../../../test/support/recording.js';
import { recordWarnings } from '../../../test/support/warnings.js';
import { rxsse } from '../src/index.js';

describe('fastify reply.sse() in the app', () => {
  it("closing one app ends its own streams and leaves another app's open", async () => {
    const events = new Subject<MessageEvent>();
    const logged: string[] = [];
    const start = async () => {
      const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
      await app.register(rxsse);
      app.get('/feed', (_req, reply) => reply.sse(events));
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      return { url: url.replace('localhost', '127.0.0.1'), close: () => app.close() };
    };
    await expectCloseEndsOnlyItsOwnStreams(events, await start(), await start());
    expect(logged).toEqual([]);
  });

  it("closing one app leaves another app's streams open when the plugin options leave group undefined", async () => {
    const events = new Subject<MessageEvent>();
    // Options built from a config, where what is not configured is undefined.
    const config: { group?: StreamGroup } = {};
    const start = async () => {
      const app = Fastify();
      await app.register(rxsse, { group: config.group });
      app.get('/feed', (_req, reply) => reply.sse(events));
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      return { url: url.replace('localhost', '127.0.0.1'), close: () => app.close() };
    };
    await expectCloseEndsOnlyItsOwnStreams(events, await start(), await start());
  });

  it("keeps a stream open past the route's handlerTimeout, which is for replies Fastify sends", async () => {
    const events = new Subject<MessageEvent>();
    const logged: string[] = [];
    const app = Fastify({
      handlerTimeout: 1000,
      logger: { level: 'error', stream: fastifyLogStream(logged) },
    });
    await app.register(rxsse);
    app.get('/feed', (_req, reply) => reply.sse(events.pipe(startWith({ data: 'first' }))));
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      await expectStreamPastHandlerTimeout(url, events);
    } finally {
      await app.close();
    }
    expect(logged).toEqual([]);
  });

  /**
   * An app whose pluginTimeout (2 s: room for a busy machine's start, which avvio times by it too)
   * a shutdown `deadline` passes, and a client that reads nothing of a flood far more than the
   * socket takes, so its stream holds on to the deadline.
   */
  async function floodPastPluginTimeout(deadline: number, logged: string[] = []) {
    const group = new StreamGroup();
    const { options, closes } = recording({ group, stallTimeout: false, maxQueueBytes: 64 * 1024 * 1024 });
    const app = Fastify({
      pluginTimeout: 2000,
      logger: { level: 'error', stream: fastifyLogStream(logged) },
    });
    await app.register(rxsse, { ...options, shutdown: { deadline } });
    const flood = range(0, 256).pipe(map(() => ({ data: 'x'.repeat(64 * 1024) })));
    app.get('/feed', (_req, reply) => reply.sse(concat(flood, NEVER)));
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    const client = await rawClient(`${url}/feed`, { read: false });
    onTestFinished(() => client.destroy());
    await waitFor(() => group.queuedBytes > 0, 5000, 'bytes queued for the client');
    return { app, client, closes };
  }

  it("completes app.close() at a shutdown deadline past Fastify's pluginTimeout, which bounds every preClose hook", async () => {
    const logged: string[] = [];
    const { app, closes } = await floodPastPluginTimeout(3000, logged);
    // Rejected with "Plugin did not start in time" at the pluginTimeout, the streams still open.
    await app.close();
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(logged).toEqual([]);
  });

  it("logs a close of the streams that fails once the preClose hook returned at Fastify's pluginTimeout", async () => {
    const logged: string[] = [];
    let fail!: (error: Error) => void;
    // A group whose close is still going when the hook returns, and fails after.
    class SlowFailingGroup extends StreamGroup {
      override close(): Promise<void> {
        return new Promise((_resolve, reject) => {
          fail = reject;
        });
      }
    }
    const app = Fastify({
      pluginTimeout: 1000,
      logger: { level: 'error', stream: fastifyLogStream(logged) },
    });
    await app.register(rxsse, { group: new SlowFailingGroup() });
    await app.listen({ port: 0, host: '127.0.0.1' });
    await app.close();
    expect(logged).toEqual([]);
    fail(new Error('the group could not close'));
    await waitFor(() => logged.length > 0, 5000, 'the failure in the log');
    expect(logged).toEqual(['rxsse: closing the event streams failed Error: the group could not close']);
  });

  it('waits in the preClose hook for the streams however long they take where pluginTimeout is 0 (none)', async () => {
    let closed!: () => void;
    class SlowGroup extends StreamGroup {
      override close(): Promise<void> {
        return new Promise((resolve) => {
          closed = resolve;
        });
      }
    }
    const app = Fastify({ pluginTimeout: 0 });
    await app.register(rxsse, { group: new SlowGroup() });
    await app.ready();
    vi.useFakeTimers();
    try {
      let done = false;
      const closing = app.close().then(() => {
        done = true;
      });
      await vi.advanceTimersByTimeAsync(60_000);
      expect(done).toBe(false);
      closed();
      await closing;
    } finally {
      vi.useRealTimers();
    }
  });

  it('lets a stream flush once the preClose hook returned at the pluginTimeout, then closes its connection', async () => {
    // Past the test's timeout: neither the deadline's drop nor its cut ends this close.
    const { app, client, closes } = await floodPastPluginTimeout(60_000);
    let closed = false;
    const closing = app.close().then(() => {
      closed = true;
    });
    // Fastify closes the server once the hook returned: Node's close() took the ended stream's
    // connection for idle and dropped it, far before the deadline.
    await waitFor(() => !app.server.listening, 5000, 'the server to stop listening');
    client.resume();
    // Node's close() reaped idle connections only as it began: the flushed stream's kept-alive one
    // would hold it to the deadline.
    await waitFor(() => closed, 20_000, 'app.close() once the stream flushed');
    await closing;
    await client.done;
    expect(client.text.endsWith('0\r\n\r\n')).toBe(true);
    expect(client.text.split('data: ').length - 1).toBe(256);
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
  });

  it('sends the headers hooks and the route set on the reply with the stream', async () => {
    const app = Fastify();
    await app.register(rxsse, { headers: { 'X-Dropped': null } });
    // Headers kept on the reply, for Fastify to send, as @fastify/cors sets them
    // (fastify-plugins.test.ts runs the real plugins).
    app.addHook('onRequest', async (_req, reply) => {
      reply.header('Access-Control-Allow-Origin', 'https://app.example');
      reply.header('X-Dropped', 'by the route');
    });
    app.get('/feed', (_req, reply) => reply.header('X-Route', 'set').sse(of({ data: 'hi' })));
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      for (const method of ['GET', 'HEAD']) {
        const { response, body } = await fetchBytes(`${url}/feed`, { method });
        expect(response.headers.get('access-control-allow-origin')).toBe('https://app.example');
        expect(response.headers.get('x-route')).toBe('set');
        expect(response.headers.get('x-dropped')).toBeNull();
        expect(response.headers.get('content-type')).toBe('text/event-stream');
        expect(body.toString()).toBe(method === 'GET' ? 'data: hi\n\n' : '');
      }
    } finally {
      await app.close();
    }
  });

  it('sends a stream as 200 OK whatever status reply.code() set before it', async () => {
    const app = Fastify();
    await app.register(rxsse);
    app.get('/feed', (_req, reply) => reply.code(404).sse(of({ data: 'hi' })));
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      const { response, body } = await fetchBytes(`${url}/feed`);
      expect([response.status, response.statusText]).toEqual([200, 'OK']);
      expect(body.toString()).toBe('data: hi\n\n');
    } finally {
      await app.close();
    }
  });

  it('runs onResponse for a stream that ended and onRequestAbort alone for one whose HTTP/1 client left', async () => {
    const { options, closes } = recording();
    const app = Fastify();
    const hooks: string[] = [];
    app.addHook('onResponse', async (req) => {
      hooks.push(`onResponse ${req.url}`);
    });
    app.addHook('onRequestAbort', async (req) => {
      hooks.push(`onRequestAbort ${req.url}`);
    });
    await app.register(rxsse, options);
    app.get('/done', (_req, reply) => reply.sse(of({ data: 'hi' })));
    app.get('/endless', (_req, reply) => reply.sse(concat(of({ data: 'hi' }), NEVER)));
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      expect((await fetchBytes(`${url}/done`)).body.toString()).toBe('data: hi\n\n');
      await waitFor(() => hooks.length === 1, 5000, 'the finished stream to run its hook');
      const abort = new AbortController();
      const response = await fetch(`${url}/endless`, { signal: abort.signal });
      await response.body!.getReader().read();
      abort.abort();
      await waitFor(() => closes.length === 2, 5000, 'the left stream to end');
      await waitFor(() => hooks.length === 2, 5000, 'the left stream to run its hook');
      await app.close();
      expect(closes.map((c) => c.reason)).toEqual(['complete', 'client']);
      expect(hooks).toEqual(['onResponse /done', 'onRequestAbort /endless']);
    } finally {
      await app.close();
    }
  });

  it('sends the headers a producer set on the reply, at once or after an await', async () => {
    const app = Fastify();
    await app.register(rxsse);
    app.get('/at-once', (_req, reply) =>
      reply.sse(() => {
        reply.header('X-User', 'at once');
        return of({ data: 'hi' });
      }),
    );
    app.get('/after-await', (_req, reply) =>
      reply.sse(async () => {
        await new Promise((resolve) => setImmediate(resolve));
        reply.header('X-User', 'after an await');
        return of({ data: 'hi' });
      }),
    );
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      for (const method of ['GET', 'HEAD']) {
        const atOnce = await fetchBytes(`${url}/at-once`, { method });
        const afterAwait = await fetchBytes(`${url}/after-await`, { method });
        expect(atOnce.response.headers.get('x-user')).toBe('at once');
        expect(afterAwait.response.headers.get('x-user')).toBe('after an await');
        expect(afterAwait.body.toString()).toBe(method === 'GET' ? 'data: hi\n\n' : '');
      }
    } finally {
      await app.close();
    }
  });

  it('sends a header set on the reply and on the Node response as Fastify sends it for its own replies', async () => {
    const app = Fastify();
    await app.register(rxsse);
    // A Node-level middleware's header, then a plugin's for the same name on the reply.
    app.addHook('onRequest', async (_req, reply) => {
      reply.raw.setHeader('X-Set-By', 'node');
      reply.header('X-Set-By', 'reply');
    });
    app.get('/page', async () => 'page');
    app.get('/feed', (_req, reply) => reply.sse(of({ data: 'hi' })));
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      const [page, feed] = await Promise.all(['page', 'feed'].map((path) => fetchBytes(`${url}/${path}`)));
      expect(page!.response.headers.get('x-set-by')).toBe('reply');
      expect(feed!.response.headers.get('x-set-by')).toBe('reply');
    } finally {
      await app.close();
    }
  });

  it('turns away a stream request that comes once the streams ended, while the app still closes', async () => {
    const app = Fastify({ return503OnClosing: false });
    await app.register(rxsse, { shutdown: { retry: 5000 } });
    app.get('/feed', (_req, reply) => reply.sse(concat(of({ data: 'hi' }), NEVER)));
    // Registered after the plugin, so it runs once the plugin's hook ended the streams.
    const asking = turnAwayWhileClosing(app);
    await asking.open((await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1'));
    await app.close();
    asking.expectTurnedAway();
  });

  it("ends on app.close() a stream whose call options leave group undefined, and keeps the plugin's other options", async () => {
    const app = Fastify();
    await app.register(rxsse, { retry: 3000, shutdown: { retry: 1000 } });
    // Options built from a config, where what is not configured is undefined.
    const config: { group?: StreamGroup; retry?: number } = {};
    app.get('/feed', (_req, reply) =>
      reply.sse(concat(of({ data: 'hi' }), NEVER), { group: config.group, retry: config.retry }),
    );
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    const client = await rawClient(`${url}/feed`, { read: true });
    try {
      await waitFor(() => client.text.includes('data: hi'), 5000, 'the first event');
      expect(client.text).toContain('retry: 3000');
      const closing = app.close();
      await waitFor(() => client.closed, 5000, 'the stream to end');
      expect(client.text).toContain('retry: 1000');
      await closing;
    } finally {
      // What the app's close left open, for the test's own cleanup.
      client.destroy();
      await openStreams.close();
      await app.close();
    }
  });

  it('ends the streams of two contexts that registered the plugin each with its own shutdown options', async () => {
    const app = Fastify({ return503OnClosing: false });
    for (const [prefix, retry] of [
      ['/a', 1111],
      ['/b', 2222],
    ] as const) {
      await app.register(
        async (context) => {
          await context.register(rxsse, { shutdown: { retry } });
          context.get('/feed', (_req, reply) => reply.sse(concat(of({ data: 'hi' }), NEVER)));
        },
        { prefix },
      );
    }
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    const a = await rawClient(`${url}/a/feed`, { read: true });
    const b = await rawClient(`${url}/b/feed`, { read: true });
    try {
      await waitFor(() => a.text.includes('data: hi') && b.text.includes('data: hi'), 5000, 'both streams');
      await app.close();
      await waitFor(() => a.closed && b.closed, 5000, 'both streams to end');
      expect(a.text).toContain('retry: 1111');
      expect(b.text).toContain('retry: 2222');
    } finally {
      a.destroy();
      b.destroy();
      await app.close();
    }
  });

  it("lets a stream of a context with the longer deadline flush to a slow client past another context's", async () => {
    const app = Fastify({ return503OnClosing: false });
    const count = 20_000;
    let started = 0;
    for (const [prefix, deadline] of [
      ['/a', 300],
      ['/b', 10_000],
    ] as const) {
      await app.register(
        async (context) => {
          await context.register(rxsse, { shutdown: { deadline } });
          context.get('/feed', (_req, reply) => {
            started++;
            return reply.sse(
              concat(range(0, count).pipe(map((i) => ({ id: String(i), data: 'x'.repeat(1024) }))), NEVER),
              { maxQueueBytes: 64 << 20, stallTimeout: false },
            );
          });
        },
        { prefix },
      );
    }
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    // ~20 MiB, more than loopback's buffers take: most of it waits in the server past 300 ms.
    const slow = await rawClient(`${url}/b/feed`, { read: false });
    try {
      await waitFor(() => started === 1, 5000, 'the stream');
      const closed = app.close();
      // Past the other context's deadline.
      await new Promise((resolve) => setTimeout(resolve, 600));
      slow.resume();
      await closed;
      await slow.done;
      expect(slow.text.split('\ndata: ').length - 1).toBe(count);
      expect(slow.text.endsWith('\r\n0\r\n\r\n')).toBe(true);
    } finally {
      slow.destroy();
    }
  });

  it.each([
    ['HTTP/1.1', false],
    ['HTTP/2', true],
  ])(
    'takes the plugin in a dozen sibling contexts on %s with no listener leak, and ends their streams on close',
    async (_name, http2) => {
      const { warnings, stop } = recordWarnings();
      onTestFinished(stop);
      const { options, closes } = recording();
      // One type for both: the routes below take no part of a request that differs between them.
      const app = (http2 ? Fastify({ http2: true }) : Fastify()) as unknown as FastifyInstance;
      // A route module each, as an app split by feature registers them.
      for (let i = 0; i < 12; i++) {
        await app.register(async (context) => {
          await context.register(rxsse, { ...options, shutdown: { retry: 1000 + i } });
          context.get(`/feed${i}`, (_req, reply) => reply.sse(concat(of({ data: 'hi' }), NEVER)));
        });
      }
      await app.ready();
      const streams = await Promise.all(
        [0, 11].map((i) => app.inject({ url: `/feed${i}`, payloadAsStream: true })),
      );
      const bodies = streams.map((response) => text(response.stream()));
      await app.close();
      expect(await Promise.all(bodies)).toEqual([
        'data: hi\n\nretry: 1000\n\n',
        'data: hi\n\nretry: 1011\n\n',
      ]);
      expect(closes.map((c) => c.reason)).toEqual(['shutdown', 'shutdown']);
      expect(warnings.map((w) => w.message)).toEqual([]);
    },
  );

  it("answers app.inject() with a finite source's whole body, and ends an endless one at the inject's abort or app.close()", async () => {
    const { options, closes } = recording();
    const app = Fastify();
    await app.register(rxsse, { ...options, shutdown: { retry: 1000 } });
    app.get('/finite', (_req, reply) =>
      reply.sse(range(0, 3).pipe(map((n) => ({ id: String(n), data: n })))),
    );
    app.get('/endless', (_req, reply) => reply.sse(concat(of({ data: 'hi' }), NEVER)));
    try {
      const finite = await app.inject('/finite');
      expect(finite.headers['content-type']).toBe('text/event-stream');
      expect(finite.body).toBe('id: 0\ndata: 0\n\nid: 1\ndata: 1\n\nid: 2\ndata: 2\n\n');
      // A test reads what it needs, then aborts: the stream sees its client leave.
      const abort = new AbortController();
      const endless = await app.inject({ url: '/endless', payloadAsStream: true, signal: abort.signal });
      const events = endless.stream();
      events.on('error', () => {});
      expect(String(await new Promise((resolve) => events.once('data', resolve)))).toBe('data: hi\n\n');
      abort.abort();
      await waitFor(() => closes.length === 2, 5000, 'the aborted stream to end');
      // One no test ends holds no inject past the app's close (a bare inject dispatches once awaited).
      const unended = await app.inject({ url: '/endless', payloadAsStream: true });
      const rest = text(unended.stream());
      await app.close();
      expect(await rest).toBe('data: hi\n\nretry: 1000\n\n');
      expect(closes.map((c) => c.reason)).toEqual(['complete', 'client', 'shutdown']);
    } finally {
      await app.close();
    }
  });

  it('turns away an injected stream request whose hooks ran past app.close(), its source never subscribed', async () => {
    const { options, closes } = recording();
    const { counts, observable } = counted(concat(of({ data: 'hi' }), NEVER));
    const app = Fastify();
    await app.register(rxsse, { ...options, shutdown: { retry: 1000 } });
    let arrived = () => {};
    const arriving = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    // An async hook (an auth check) still running while the test's teardown closes the app.
    app.addHook('onRequest', async () => {
      arrived();
      await held;
    });
    let handled = () => {};
    const handling = new Promise<void>((resolve) => {
      handled = resolve;
    });
    app.get('/feed', async (_req, reply) => {
      await reply.sse(observable);
      handled();
    });
    try {
      const answered = Promise.resolve(app.inject('/feed'));
      await arriving;
      await app.close();
      release();
      await handling;
      expect(counts.subscribed).toBe(0);
      const response = await answered;
      expect(response.body).toBe('retry: 1000\n\n');
      expect(response.headers.connection).toBe('close');
      expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    } finally {
      release();
      await app.close();
    }
  });

  it('sends the headers hooks set on the reply with the answer that turns a request away while the app closes', async () => {
    const app = Fastify();
    await app.register(rxsse, { shutdown: { retry: 1000 } });
    let arrived = () => {};
    const arriving = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    // As @fastify/cors sets it: a browser drops a cross-origin answer without it, retry hint and all.
    app.addHook('onRequest', async (_req, reply) => {
      reply.header('Access-Control-Allow-Origin', 'https://app.example');
      arrived();
      await held;
    });
    app.get('/feed', (_req, reply) => reply.sse(concat(of({ data: 'hi' }), NEVER)));
    try {
      const answered = Promise.resolve(app.inject('/feed'));
      await arriving;
      await app.close();
      release();
      const response = await answered;
      expect(response.body).toBe('retry: 1000\n\n');
      expect(response.headers['access-control-allow-origin']).toBe('https://app.example');
    } finally {
      release();
      await app.close();
    }
  });

  it("turns away, and ends on close, the streams of the second server Fastify binds for localhost's IPv6 address", async () => {
    const restore = localhostOnBothLoopbacks();
    const app = Fastify({ return503OnClosing: false });
    await app.register(rxsse, { shutdown: { retry: 5000 } });
    const own = new StreamGroup();
    app.get('/feed', (_req, reply) => reply.sse(concat(of({ data: 'hi' }), NEVER)));
    app.get('/own', (_req, reply) => reply.sse(concat(of({ data: 'hi' }), NEVER), { group: own }));
    const asking = turnAwayWhileClosing(app);
    try {
      const { port } = new URL(await app.listen({ port: 0, host: 'localhost' }));
      await expectSecondServerClosedWithApp(app, Number(port), asking, () => app.close());
    } finally {
      restore();
      await own.close();
      await app.close();
    }
  });

  it("sends a cookie set as a header with @fastify/cookie's serializeCookie, as the README says; setCookie() waits for an onSend hook", async () => {
    const app = Fastify();
    await app.register(cookie);
    await app.register(rxsse);
    app.get('/feed', (_req, reply) => {
      // Serialized by @fastify/cookie's onSend hook, which runs only for replies Fastify sends.
      reply.setCookie('unsent', '1');
      return reply
        .header('set-cookie', app.serializeCookie('seen', '1', { path: '/', httpOnly: true }))
        .sse(of({ data: 'hi' }));
    });
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      const { response, body } = await fetchBytes(`${url}/feed`);
      expect(response.headers.getSetCookie()).toEqual(['seen=1; Path=/; HttpOnly']);
      expect(body.toString()).toBe('data: hi\n\n');
    } finally {
      await app.close();
    }
  });
});
