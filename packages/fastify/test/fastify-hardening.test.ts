import type { CloseReason, StreamOptions } from '@rxsse/core';
import Fastify from 'fastify';
import { concat, NEVER, Observable, of, Subject, startWith, throwError } from 'rxjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { expectCloseDropsLateHandshake } from '../../../test/support/app-lifecycle.js';
import {
  httpRequest,
  type RawClient,
  rawExchange,
  rawRequests,
  waitFor,
} from '../../../test/support/clients.js';
import { fastifyLogStream } from '../../../test/support/logged.js';
import { counted } from '../../../test/support/recording.js';
import { selfSignedCertificate } from '../../../test/support/tls.js';
import { throwingGetter, throwingProxy } from '../../../test/support/unreadable.js';
import { recordUnhandledRejections } from '../../../test/support/warnings.js';
import { rxsse } from '../src/index.js';

/**
 * A Fastify `logger.stream` that keeps each line logged at its level or above as its message and
 * the first line of its error's stack: the error's name and message, as a reader of the log sees them.
 */
function warnedLines(lines: string[]): { write(line: string): void } {
  return {
    write: (line) => {
      const { msg, err } = JSON.parse(line) as { msg: string; err?: { stack?: string } };
      lines.push(`${msg} | ${err?.stack?.split('\n')[0]}`);
    },
  };
}

describe('fastify reply.sse', () => {
  const { rejections, stop } = recordUnhandledRejections();
  afterEach(() => {
    expect(rejections).toEqual([]);
  });
  afterAll(stop);

  it('answers a producer that throws with a 500, even when the route neither returns nor awaits it', async () => {
    const logged: string[] = [];
    const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
    await app.register(rxsse);
    app.get('/sse', (_req, reply) => {
      void reply.sse(() => {
        throw new Error('not authorized');
      });
    });
    const response = await app.inject('/sse');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(response.statusCode).toBe(500);
    expect(logged.join('\n')).toContain('not authorized');
    await app.close();
  });

  it('answers a producer that throws an object that is no Error with the status it carries, never with a 200', async () => {
    const logged: string[] = [];
    const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
    await app.register(rxsse);
    // What a library may throw: a plain object with a status, which Fastify answers with that status.
    const refusal = () => ({ statusCode: 401, message: 'not authorized' });
    app.get('/sse', (_req, reply) =>
      reply.sse(() => {
        throw refusal();
      }),
    );
    app.get('/async', (_req, reply) =>
      reply.sse(async () => {
        throw refusal();
      }),
    );
    app.get('/plain', (_req, reply) =>
      reply.sse(() => {
        throw { reason: 'no source today' };
      }),
    );
    for (const path of ['/sse', '/async']) {
      const response = await app.inject(path);
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ statusCode: 401, message: 'not authorized' });
    }
    // One without a status is a 500, in Fastify's log as any route's failure.
    const failure = await app.inject('/plain');
    expect(failure.statusCode).toBe(500);
    expect(logged.join('\n')).toContain('the event handler failed');
    await app.close();
  });

  it('answers per-call options out of range with a 500, even when the route neither returns nor awaits it', async () => {
    const logged: string[] = [];
    const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
    await app.register(rxsse);
    app.get('/sse', (_req, reply) => {
      void reply.sse(NEVER, { maxLifetime: 2 ** 31 });
    });
    const response = await app.inject('/sse');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(response.statusCode).toBe(500);
    expect(logged.join('\n')).toContain('maxLifetime');
    await app.close();
  });

  it.each([
    ['a getter that throws', () => throwingGetter({}, 'statusCode')],
    ['a Proxy whose traps throw', () => throwingProxy()],
  ])(
    'answers a producer that throws an object whose fields throw as they are read (%s) with a 500, even when the route neither returns nor awaits it',
    async (_kind, make) => {
      const logged: string[] = [];
      const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
      await app.register(rxsse);
      app.get('/sse', (_req, reply) => {
        void reply.sse(() => {
          throw make();
        });
      });
      const response = await app.inject('/sse');
      expect(response.statusCode).toBe(500);
      expect(logged.join('\n')).toContain('the event handler failed');
      await app.close();
    },
  );

  it.each([
    ['fast', 'string fast'],
    [null, 'null'],
    [0, 'number 0'],
    [new Map([['heartbeat', 1000]]), 'an object (Map)'],
  ])(
    'answers per-call options that are not an object (%o) with a 500 that names them',
    async (options, got) => {
      const logged: string[] = [];
      const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
      await app.register(rxsse);
      app.get('/sse', (_req, reply) => reply.sse(of({ data: 'x' }), options as never));
      const response = await app.inject('/sse');
      expect(response.statusCode).toBe(500);
      expect(logged.join('\n')).toContain(`options must be an object, got ${got}`);
      await app.close();
    },
  );

  it('logs a reply.sse() on a reply the route answered already as that, the answer standing and the source never subscribed', async () => {
    const lines: string[] = [];
    const app = Fastify({ logger: { level: 'warn', stream: warnedLines(lines) } });
    await app.register(rxsse);
    let subscribed = 0;
    const late = new Observable<{ data: string }>(() => {
      subscribed++;
    });
    app.get('/sent', (_req, reply) => {
      reply.send('hi');
      return reply.sse(late);
    });
    app.get('/twice', async (_req, reply) => {
      await reply.sse(of({ data: 'first' }));
      return reply.sse(late);
    });
    try {
      for (const [url, body] of [
        ['/sent', 'hi'],
        ['/twice', 'data: first\n\n'],
      ] as const) {
        lines.length = 0;
        expect((await app.inject(url)).body).toBe(body);
        await waitFor(() => lines.length > 0, 5000, 'a log line');
        expect(lines).toEqual([
          'rxsse: event stream failed | ReplyAnsweredError: reply.sse() on a reply already answered: an event stream cannot follow that answer (one per request)',
        ]);
      }
      expect(subscribed).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('logs a reply.sse() whose producer ran while an async onSend hook held the reply.send() before it as answered, not as a missing return', async () => {
    const lines: string[] = [];
    const app = Fastify({ logger: { level: 'warn', stream: warnedLines(lines) } });
    await app.register(rxsse);
    // Holds each answer for a turn of the event loop, as a hook that awaits anything does.
    app.addHook('onSend', async (_req, _reply, payload) => payload);
    let subscribed = 0;
    app.get('/sent', async (_req, reply) => {
      reply.send('hi');
      await reply.sse(
        async () =>
          new Observable<{ data: string }>(() => {
            subscribed++;
          }),
      );
      return reply;
    });
    try {
      expect((await app.inject('/sent')).body).toBe('hi');
      await waitFor(() => lines.length > 0, 5000, 'a log line');
      expect(lines).toEqual([expect.stringMatching(/^rxsse: event stream failed \| ReplyAnsweredError: /)]);
      expect(subscribed).toBe(0);
    } finally {
      await app.close();
    }
  });

  it("logs a stream's failure in the request's log, under its request id, as Fastify logs a route's", async () => {
    const entries: { reqId?: unknown; msg?: unknown }[] = [];
    const app = Fastify({
      genReqId: () => 'req-sent',
      logger: { level: 'error', stream: { write: (line: string) => void entries.push(JSON.parse(line)) } },
    });
    await app.register(rxsse);
    app.get('/sent', (_req, reply) => {
      reply.send('hi');
      return reply.sse(of({ data: 'late' }));
    });
    try {
      expect((await app.inject('/sent')).body).toBe('hi');
      await waitFor(() => entries.length > 0, 5000, 'a log line');
      expect(entries).toEqual([
        expect.objectContaining({ reqId: 'req-sent', msg: 'rxsse: event stream failed' }),
      ]);
    } finally {
      await app.close();
    }
  });

  it.each([
    [
      'an Error with a getter that throws',
      () => throwingGetter(new Error('database went away'), 'status'),
      'Error: Error: database went away',
    ],
    ['a Proxy whose traps throw', () => throwingProxy(), 'Error: {}'],
  ])(
    "logs a stream's failure whose fields throw as the log reads them (%s), instead of losing it",
    async (_kind, make, text) => {
      const lines: string[] = [];
      const app = Fastify({ logger: { level: 'error', stream: warnedLines(lines) } });
      await app.register(rxsse);
      app.get('/sse', (_req, reply) => reply.sse(concat(of({ data: 'first' }), throwError(make))));
      try {
        expect((await app.inject('/sse')).body).toBe('data: first\n\n');
        await waitFor(() => lines.length > 0, 5000, 'a log line');
        expect(lines).toEqual([`rxsse: event stream failed | ${text}`]);
      } finally {
        await app.close();
      }
    },
  );

  it("warns in Fastify's log when an async route neither returns nor awaits reply.sse() and Fastify answers first", async () => {
    const warned: string[] = [];
    const app = Fastify({
      logger: {
        level: 'warn',
        stream: { write: (line: string) => void warned.push(JSON.stringify(JSON.parse(line).err ?? line)) },
      },
    });
    await app.register(rxsse);
    let opened!: () => void;
    const producing = new Promise<void>((resolve) => (opened = resolve));
    app.get('/sse', async (_req, reply) => {
      void reply.sse(async () => {
        await producing;
        return NEVER;
      });
    });
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      // Fastify answers the route's promise, resolved with undefined, with an empty reply.
      await (await fetch(`${url}/sse`)).arrayBuffer();
      opened();
      await waitFor(() => warned.length > 0, 5000, 'a warning');
      expect(warned.join('\n')).toContain('return reply');
    } finally {
      await app.close();
    }
  });

  it("does not tell a route that returns reply.sse() to return reply when Fastify's handlerTimeout answered first", async () => {
    const warned: string[] = [];
    const app = Fastify({
      handlerTimeout: 1,
      logger: {
        level: 'warn',
        stream: { write: (line: string) => void warned.push(JSON.parse(line).msg) },
      },
    });
    await app.register(rxsse);
    let opened!: () => void;
    const producing = new Promise<void>((resolve) => (opened = resolve));
    let streaming: Promise<unknown> | undefined;
    app.get('/sse', (_req, reply) => {
      streaming = reply.sse(async () => {
        await producing;
        return NEVER;
      });
      return streaming;
    });
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      const response = await fetch(`${url}/sse`);
      await response.arrayBuffer();
      expect(response.status).toBe(503);
      opened();
      await streaming;
      expect(warned.filter((message) => message.includes('return reply'))).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('answers a producer that fails after the route hijacked the reply itself, and logs the error', async () => {
    const logged: string[] = [];
    const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
    await app.register(rxsse);
    app.get('/sync', (_req, reply) => {
      reply.hijack();
      return reply.sse(() => {
        throw new Error('not authorized');
      });
    });
    app.get('/async', async (_req, reply) => {
      reply.hijack();
      await reply.sse(async () => {
        throw new Error('no source today');
      });
    });
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    const clients: RawClient[] = [];
    try {
      for (const path of ['/sync', '/async']) {
        const client = await rawRequests(url, [httpRequest('GET', path)]);
        clients.push(client);
        await waitFor(() => client.text.includes('\r\n\r\n'), 5000, `an answer to ${path}`);
        expect(client.text).toMatch(/^HTTP\/1\.1 500 /);
      }
      expect(logged.join('\n')).toContain('Error: not authorized');
      expect(logged.join('\n')).toContain('Error: no source today');
    } finally {
      for (const client of clients) client.destroy();
      await app.close();
    }
  });

  it('formats an event once for every stream of one per-call options object, as for the defaults', async () => {
    const events = new Subject<{ data: unknown }>();
    const source = counted(events);
    // Hoisted, as reply.sse() asks: one options object for every call of the route.
    const perCall: StreamOptions = { heartbeat: false };
    const app = Fastify();
    await app.register(rxsse);
    app.get('/sse', (_req, reply) => reply.sse(source.observable, perCall));
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    const clients: RawClient[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await rawRequests(url, [httpRequest('GET', '/sse')]));
      await waitFor(() => source.counts.active === 3, 5000, 'three streams');
      let formatted = 0;
      events.next({ data: { toJSON: () => `formatted ${++formatted}` } });
      await waitFor(() => clients.every((c) => c.text.includes('data: ')), 5000, 'the event on every stream');
      expect(formatted).toBe(1);
      for (const client of clients) expect(client.text).toContain('data: "formatted 1"\n\n');
    } finally {
      for (const client of clients) client.destroy();
      await app.close();
    }
  });

  it('leaves the answer the route wrote while its producer ran, when that producer fails after it', async () => {
    const logged: string[] = [];
    const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
    await app.register(rxsse);
    let call: Promise<void> | undefined;
    app.get('/sse', (_req, reply) => {
      reply.hijack();
      call = reply.sse(async () => {
        reply.raw.writeHead(503, { 'content-length': '4' }).end('busy');
        throw new Error('no source today');
      });
    });
    const response = await app.inject('/sse');
    // Never a rejection: the route need not await it, and the headers that went out are not its own.
    await expect(call).resolves.toBeUndefined();
    expect(response.statusCode).toBe(503);
    expect(response.body).toBe('busy');
    expect(logged).toEqual(['rxsse: event stream failed Error: no source today']);
    await app.close();
  });

  it.each([
    [
      'throws',
      () => {
        throw new Error('no source today');
      },
    ],
    [
      'rejects',
      async () => {
        throw new Error('no source today');
      },
    ],
  ])(
    "streams the answer of an error handler that answers a producer's failure with reply.sse() (a producer that %s)",
    async (_, producer) => {
      const logged: string[] = [];
      const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
      await app.register(rxsse);
      const reasons: CloseReason[] = [];
      // An error handler that tells the stream's client what failed, as an event.
      app.setErrorHandler<Error>((error, _req, reply) =>
        reply.sse(of({ type: 'failed', data: error.message }), {
          onClose: (reason) => reasons.push(reason),
        }),
      );
      app.get('/sse', (_req, reply) => reply.sse(producer));
      const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
      const client = await rawRequests(url, [httpRequest('GET', '/sse')]);
      try {
        await waitFor(() => client.text.includes('\r\n0\r\n\r\n'), 5000, 'the error stream to end');
        expect(client.text).toMatch(/^HTTP\/1\.1 200 /);
        expect(client.text).toContain('event: failed\ndata: no source today\n\n');
        expect(reasons).toEqual(['complete']);
        expect(logged).toEqual([]);
      } finally {
        client.destroy();
        await app.close();
      }
    },
  );

  it.each([
    ['a source', (source: Observable<{ data: string }>) => source],
    ['an async producer', (source: Observable<{ data: string }>) => async () => source],
  ])(
    'refuses a second reply.sse() on one reply in the log, and leaves the first stream as it was (%s)',
    async (_, given) => {
      const logged: string[] = [];
      const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
      await app.register(rxsse);
      const first = new Subject<{ data: string }>();
      const reasons: CloseReason[] = [];
      let second: Promise<void> | undefined;
      // An async route that returns the second call: it must wait with the first, or Fastify would
      // answer the route as it resolves, before the first stream took the response.
      app.get('/sse', async (_req, reply) => {
        void reply.sse(given(first.pipe(startWith({ data: 'first' }))), {
          onClose: (reason) => reasons.push(reason),
        });
        second = reply.sse(given(of({ data: 'second' })));
        return second;
      });
      const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
      const client = await rawRequests(url, [httpRequest('GET', '/sse')]);
      try {
        await waitFor(() => client.text.includes('data: first'), 5000, 'the first stream');
        await second;
        await waitFor(() => logged.length > 0, 5000, 'the refusal in the log');
        expect(logged.join('\n')).toContain('ReplyAnsweredError');
        first.next({ data: 'later' });
        await waitFor(() => client.text.includes('data: later') || client.closed, 5000, 'the first stream');
        expect(client.text).toContain('data: later');
        expect(client.text).not.toContain('data: second');
        expect(reasons).toEqual([]);
      } finally {
        client.destroy();
        await app.close();
      }
    },
  );

  it('checks the plugin options when it is registered', async () => {
    const app = Fastify();
    await expect(app.register(rxsse, { maxLifetime: 2 ** 31 })).rejects.toThrow(/maxLifetime/);
    const other = Fastify();
    await expect(other.register(rxsse, { shutdown: { spread: -1 } })).rejects.toThrow(/spread/);
    // Options of no names, which would run on the defaults unheard.
    const collection = Fastify();
    await expect(collection.register(rxsse, new Map([['heartbeat', 1000]]) as never)).rejects.toThrow(
      /^@rxsse\/fastify options must be an object, got an object \(Map\)/,
    );
  });

  it("refuses an option name the plugin does not know when it is registered, and takes Fastify's own", async () => {
    const typo = Fastify();
    await expect(typo.register(rxsse, { heartbeet: 1000 } as never)).rejects.toThrow(
      /^Unknown @rxsse\/fastify option "heartbeet" \(did you mean "heartbeat"\?\)$/,
    );
    const shutdown = Fastify();
    await expect(shutdown.register(rxsse, { shutdwon: {} } as never)).rejects.toThrow(
      /\(did you mean "shutdown"\?\)$/,
    );
    // Fastify's register options come in the same object as the plugin's.
    const app = Fastify();
    await app.register(rxsse, { prefix: '/v1', logLevel: 'warn', logSerializers: {}, heartbeat: 1000 });
    app.get('/sse', (_req, reply) => reply.sse(of({ data: 'x' })));
    const response = await app.inject('/sse');
    expect(response.body).toBe('data: x\n\n');
    await app.close();
  });

  it('drops the connection of a live stream whose client sends garbage after its request, with no raw 400 inside the stream', async () => {
    const app = Fastify();
    await app.register(rxsse);
    const reasons: CloseReason[] = [];
    app.get('/sse', (_req, reply) =>
      reply.sse(NEVER.pipe(startWith({ data: 'hi' })), { onClose: (reason) => reasons.push(reason) }),
    );
    const { port } = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
    try {
      const received = await rawExchange(
        Number(port),
        'GET /sse HTTP/1.1\r\nHost: x\r\n\r\n',
        'data: hi\n\n\r\n',
      );
      // The stream's body ends at a chunk boundary: nothing but its own chunks, then the close.
      expect(received.slice(received.indexOf('\r\n\r\n') + 4)).toBe('a\r\ndata: hi\n\n\r\n');
      await waitFor(() => reasons.length > 0, 5000, 'the close');
      expect(reasons).toEqual(['client']);
    } finally {
      await app.close();
    }
  });

  it('drops the connection of a live stream whose client pipelines another stream request and then garbage', async () => {
    const app = Fastify();
    await app.register(rxsse);
    const reasons: CloseReason[] = [];
    app.get('/sse', (_req, reply) =>
      reply.sse(NEVER.pipe(startWith({ data: 'hi' })), { onClose: (reason) => reasons.push(reason) }),
    );
    // The second request's stream has not begun when the garbage comes: its handler waits.
    app.get('/pending', (_req, reply) => reply.sse(() => new Promise<never>(() => {})));
    const { port } = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
    try {
      for (const path of ['/sse', '/pending']) {
        const received = await rawExchange(
          Number(port),
          'GET /sse HTTP/1.1\r\nHost: x\r\n\r\n',
          'data: hi\n\n\r\n',
          `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\ngarbage \x00\r\n\r\n`,
        );
        expect(received.slice(received.indexOf('\r\n\r\n') + 4), path).toBe('a\r\ndata: hi\n\n\r\n');
      }
      await waitFor(() => reasons.length === 3, 5000, 'the closes');
      expect(reasons).toEqual(['client', 'client', 'client']);
    } finally {
      await app.close();
    }
  });

  it("leaves Fastify's 400 to garbage on a connection whose stream ended, or that never had one", async () => {
    const app = Fastify();
    await app.register(rxsse);
    app.get('/sse', (_req, reply) => reply.sse(of({ data: 'hi' })));
    const { port } = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
    try {
      const ended = await rawExchange(Number(port), 'GET /sse HTTP/1.1\r\nHost: x\r\n\r\n', '0\r\n\r\n');
      expect(ended).toMatch(/0\r\n\r\nHTTP\/1\.1 400 Bad Request\r\n/);
      const fresh = await rawExchange(Number(port), '', '');
      expect(fresh).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    } finally {
      await app.close();
    }
  });
});

describe('fastify over HTTPS, app.close()', () => {
  it('drops at its deadline a connection whose TLS handshake ended after the unused ones were dropped', async () => {
    const deadline = 60_000;
    // Avvio times the close's hooks with a setTimeout too: the fake clock's jump would fire it.
    const app = Fastify({ https: await selfSignedCertificate(), pluginTimeout: 0 });
    await app.register(rxsse, { shutdown: { deadline } });
    app.get('/sse', (_req, reply) => reply.sse(NEVER));
    await app.listen({ port: 0, host: '127.0.0.1' });
    await expectCloseDropsLateHandshake(app.server, () => app.close(), deadline);
  });
});
