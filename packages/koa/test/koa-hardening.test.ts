import { once } from 'node:events';
import { createServer as createHttpServer, type Server, type ServerOptions } from 'node:http';
import { connect, constants, createSecureServer, createServer } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { runInNewContext } from 'node:vm';
import Router from '@koa/router';
import type { CloseReason } from '@rxsse/core';
import Koa from 'koa';
import { concat, from, NEVER, of, throwError } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectCloseDropsLateHandshake } from '../../../test/support/app-lifecycle.js';
import { httpRequest, RawClient, rawClient, rawRequests, waitFor } from '../../../test/support/clients.js';
import { captureConsoleErrors } from '../../../test/support/logged.js';
import { selfSignedCertificate } from '../../../test/support/tls.js';
import { throwingGetter, throwingProxy } from '../../../test/support/unreadable.js';
import { recordWarnings } from '../../../test/support/warnings.js';
import { closeStreamsOnServerClose, sse } from '../src/index.js';

/**
 * A handler that is still running when its client leaves, whatever the timing: it waits, inside,
 * for the response to close, then returns a stream. `next()`, called before the request is sent,
 * resolves once that request is inside.
 */
const slowHandler = (() => {
  let inside: () => void = () => {};
  return {
    next: () => new Promise<void>((resolve) => (inside = resolve)),
    handler: async (ctx: Koa.Context) => {
      inside();
      if (!ctx.res.closed) await once(ctx.res, 'close');
      return concat(of({ data: 'first' }), NEVER);
    },
  };
})();

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** Serves `app` on HTTP/1 at 127.0.0.1 until the test ends; returns its URL. */
async function listen(app: Koa, options: ServerOptions = {}): Promise<string> {
  const server = createHttpServer(options, app.callback());
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('koa over HTTP/2, with clients that reset', () => {
  const logged: unknown[] = [];
  const closes: CloseReason[] = [];
  const app = new Koa();
  app.on('error', (error) => logged.push(error));
  const router = new Router();
  router.get(
    '/sse',
    sse(() => concat(of({ data: 'first' }), NEVER), { onClose: (reason) => closes.push(reason) }),
  );
  router.get('/slow', sse(slowHandler.handler, { onClose: (reason) => closes.push(reason) }));
  app.use(router.routes());
  const server = createServer(app.callback());
  closeStreamsOnServerClose(server);
  let url = '';

  beforeAll(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Opens a stream, waits for its first event, then lets `reset` end it from the client side. */
  async function resetAfterFirstEvent(
    reset: (
      session: ReturnType<typeof connect>,
      stream: ReturnType<ReturnType<typeof connect>['request']>,
    ) => void,
  ) {
    const before = closes.length;
    const session = connect(url);
    session.on('error', () => {});
    const stream = session.request({ ':path': '/sse' });
    stream.on('error', () => {});
    await once(stream, 'data');
    reset(session, stream);
    await waitFor(() => closes.length > before, 5000, 'the close');
    session.destroy();
    // Errors surface a tick or two after the close.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return closes.slice(before);
  }

  for (const [label, code] of [
    ['an INTERNAL_ERROR', constants.NGHTTP2_INTERNAL_ERROR],
    ['a PROTOCOL_ERROR', constants.NGHTTP2_PROTOCOL_ERROR],
    ['a CANCEL', constants.NGHTTP2_CANCEL],
  ] as const) {
    it(`takes a stream reset with ${label} as a client close, not an app error`, async () => {
      const reasons = await resetAfterFirstEvent((_session, stream) => stream.close(code));
      expect(reasons).toEqual(['client']);
      expect(logged).toEqual([]);
    });
  }

  it('takes a stream reset while an async handler runs as a client close, not an app error', async () => {
    const before = closes.length;
    const session = connect(url);
    session.on('error', () => {});
    const entered = slowHandler.next();
    const stream = session.request({ ':path': '/slow' });
    stream.on('error', () => {});
    await entered;
    stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    await waitFor(() => closes.length > before, 5000, 'the close');
    session.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closes.slice(before)).toEqual(['client']);
    expect(logged).toEqual([]);
  });

  it('takes a session destroyed with an error code as a client close, not an app error', async () => {
    const reasons = await resetAfterFirstEvent((session) =>
      session.destroy(new Error('client gone'), constants.NGHTTP2_INTERNAL_ERROR),
    );
    expect(reasons).toEqual(['client']);
    expect(logged).toEqual([]);
  });
});

describe('koa over HTTP/1, with a client that resets while the handler runs', () => {
  it('takes the reset as a client close, and still answers a handler error with such a code', async () => {
    const logged: unknown[] = [];
    const closes: CloseReason[] = [];
    const app = new Koa();
    app.on('error', (error) => logged.push(error));
    const router = new Router();
    router.get('/slow', sse(slowHandler.handler, { onClose: (reason) => closes.push(reason) }));
    router.get(
      '/upstream',
      sse(() => {
        throw Object.assign(new Error('upstream reset'), { code: 'ECONNRESET' });
      }),
    );
    app.use(router.routes());
    const url = await listen(app);
    const entered = slowHandler.next();
    const client = await rawClient(`${url}/slow`, { read: true });
    await entered;
    client.socket.resetAndDestroy();
    await waitFor(() => closes.length > 0, 5000, 'the close');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closes).toEqual(['client']);
    expect(logged).toEqual([]);
    const response = await fetch(`${url}/upstream`);
    expect(response.status).toBe(500);
    expect(logged.map(String)).toEqual(['Error: upstream reset']);
  });
});

describe('koa over HTTP/1, with a handler that fails once its client left', () => {
  it.each([
    ['closes', (client: RawClient) => client.socket.destroy()],
    ['resets', (client: RawClient) => client.socket.resetAndDestroy()],
  ])('reports its error with a connection code to the app when the client %s', async (_label, leave) => {
    const logged: unknown[] = [];
    const app = new Koa();
    app.on('error', (error) => logged.push(error));
    let entered: () => void = () => {};
    const inside = new Promise<void>((resolve) => (entered = resolve));
    app.use(
      sse(async (ctx) => {
        entered();
        if (!ctx.res.closed) await once(ctx.res, 'close');
        // A database driver whose own connection broke while the client was leaving.
        throw Object.assign(new Error('database connection reset'), { code: 'ECONNRESET' });
      }),
    );
    const url = await listen(app);
    const client = await rawClient(`${url}/`, {
      read: true,
    });
    await inside;
    leave(client);
    await waitFor(() => logged.length > 0, 2000, 'the error reported');
    // Errors surface a tick or two after the failure.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(logged.map(String)).toEqual(['Error: database connection reset']);
  });
});

describe('koa over HTTP/1, with a client that Node drops', () => {
  it.each([
    [
      'sends what is not HTTP behind its stream',
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
      'NOT HTTP\r\n\r\n',
    ],
    [
      'leaves its request body unfinished past requestTimeout',
      'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123',
      '',
    ],
  ])('takes a client that %s as a client close, not an app error', async (_label, request, after) => {
    const logged: unknown[] = [];
    const closes: CloseReason[] = [];
    const app = new Koa();
    app.on('error', (error) => logged.push(error));
    app.use(sse(() => concat(of({ data: 'first' }), NEVER), { onClose: (reason) => closes.push(reason) }));
    const url = await listen(app, { requestTimeout: 500, connectionsCheckingInterval: 50 });
    const client = await rawRequests(url, [request]);
    await waitFor(() => client.text.includes('data: first'), 5000, 'the stream');
    client.socket.write(after);
    await client.done;
    await waitFor(() => closes.length > 0, 5000, 'the close');
    // Errors surface a tick or two after the close.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closes).toEqual(['client']);
    expect(logged).toEqual([]);
  });
});

describe('koa over HTTP/1, with a client the network lost', () => {
  it.each(['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN'])(
    'takes its connection failing with %s as a client close, not an app error',
    async (code) => {
      const logged: unknown[] = [];
      const closes: CloseReason[] = [];
      const app = new Koa();
      app.on('error', (error) => logged.push(error));
      let socket: Socket | undefined;
      const stream = sse(
        (ctx) => {
          socket = ctx.req.socket;
          return concat(of({ data: 'first' }), NEVER);
        },
        { onClose: (reason) => closes.push(reason) },
      );
      app.use(stream);
      const client = await rawRequests(await listen(app), ['GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n']);
      await waitFor(() => client.text.includes('data: first'), 5000, 'the stream');
      // What a read fails with once the kernel gave up on a client that vanished (a closed laptop).
      socket?.destroy(Object.assign(new Error(`read ${code}`), { code, syscall: 'read' }));
      await client.done;
      await waitFor(() => closes.length > 0, 5000, 'the close');
      // Errors surface a tick or two after the close.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(closes).toEqual(['client']);
      expect(logged).toEqual([]);
    },
  );
});

describe('koa sse() with a handler that fails without a reason', () => {
  it.each([
    [
      'throws undefined',
      () => {
        throw undefined;
      },
    ],
    ['rejects with null', () => Promise.reject(null)],
  ])("is answered by Koa's error response when it %s", async (_label, handler) => {
    const logged: unknown[] = [];
    const app = new Koa();
    app.on('error', (error) => logged.push(error));
    app.use(sse(handler as () => never));
    const url = await listen(app);
    const response = await fetch(`${url}/`, {
      signal: AbortSignal.timeout(2000),
    });
    expect(response.status).toBe(500);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toBeInstanceOf(Error);
  });
});

describe('koa middleware in front of the stream', () => {
  it('that set a body before next() leaves the stream framed as a stream, not as that body', async () => {
    const logged: unknown[] = [];
    const app = new Koa();
    app.on('error', (error) => logged.push(error));
    // A fallback answer, for when nothing behind sets one.
    app.use(async (ctx, next) => {
      ctx.status = 404;
      ctx.body = 'none';
      await next();
    });
    app.use(sse(() => from([{ data: 'first' }, { data: 'second' }])));
    const url = await listen(app);
    const response = await fetch(`${url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBeNull();
    expect(await response.text()).toBe('data: first\n\ndata: second\n\n');
    expect(logged).toEqual([]);
  });

  it("that set a status before next() leaves the stream's status line 200 OK, not that status's reason", async () => {
    const app = new Koa();
    // Koa sets the reason phrase with the status: 'Not Found'.
    app.use(async (ctx, next) => {
      ctx.status = 404;
      await next();
    });
    app.use(sse(() => from([{ data: 'first' }])));
    const url = await listen(app);
    const client = await rawRequests(url, [httpRequest('GET', '/'), httpRequest('HEAD', '/')]);
    await waitFor(() => client.text.split('HTTP/1.1 ').length === 3, 5000, 'both answers');
    client.destroy();
    expect(client.text.match(/^HTTP\/1\.1 .*$/gm)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
  });

  it('that cleared the body before next() leaves the stream chunked, and its connection serving the next request', async () => {
    const app = new Koa();
    app.use(async (ctx, next) => {
      if (ctx.path === '/page') ctx.body = 'page';
      else await next();
    });
    // Koa removes Transfer-Encoding with it, which tells Node to frame no body of its own.
    app.use(async (ctx, next) => {
      ctx.body = null;
      await next();
    });
    app.use(sse(() => from([{ data: 'first' }])));
    const url = await listen(app);
    const client = await rawRequests(url, [httpRequest('GET', '/'), httpRequest('GET', '/page')]);
    await waitFor(() => client.text.endsWith('page') || client.closed, 5000, 'both answers');
    client.destroy();
    const [stream, page] = client.text.split(/(?=HTTP\/1\.1 )/);
    expect(stream).toMatch(/\r\ntransfer-encoding: chunked\r\n/i);
    expect(stream).toContain('\r\n\r\nd\r\ndata: first\n\n\r\n0\r\n\r\n');
    expect(page).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\npage$/);
  });

  it('that sets headers before next() sends them with the stream; after next(), too late, as the README says', async () => {
    const logged: { code?: string }[] = [];
    const app = new Koa();
    app.on('error', (error) => logged.push(error));
    app.use(async (ctx, next) => {
      ctx.set('x-before', '1');
      await next();
      ctx.set('x-after', '1');
      ctx.cookies.set('late', '1');
    });
    app.use(
      sse((ctx) => {
        ctx.cookies.set('seen', '1');
        return from([{ data: 'first' }]);
      }),
    );
    const response = await fetch(await listen(app));
    expect(await response.text()).toBe('data: first\n\n');
    expect(response.headers.get('x-before')).toBe('1');
    expect(response.headers.getSetCookie()).toEqual(['seen=1; path=/; httponly']);
    expect(response.headers.get('x-after')).toBeNull();
    await waitFor(() => logged.length === 1, 5000, "the late cookie's error");
    expect(logged[0]?.code).toBe('ERR_HTTP_HEADERS_SENT');
  });

  it('that fails with a connection error code once the stream runs is reported to the app', async () => {
    const logged: unknown[] = [];
    const app = new Koa();
    app.on('error', (error) => logged.push(error));
    // An audit log written once the route answered, whose database connection broke.
    app.use(async (_ctx, next) => {
      await next();
      throw Object.assign(new Error('audit log connection reset'), { code: 'ECONNRESET' });
    });
    app.use(sse(() => concat(of({ data: 'first' }), NEVER)));
    const url = await listen(app);
    const client = await rawClient(`${url}/`, {
      read: true,
    });
    await waitFor(() => client.text.includes('data: first'), 5000, 'the stream');
    await waitFor(() => logged.length > 0, 2000, 'the error reported');
    expect(logged.map(String)).toEqual(['Error: audit log connection reset']);
    client.destroy();
  });

  it('that destroys the connection with an error of its own once the stream runs is reported to the app', async () => {
    const logged: unknown[] = [];
    const app = new Koa();
    app.on('error', (error) => logged.push(error));
    // The connection emits the error, but with no code of a client that left: it is the app's.
    app.use(async (ctx, next) => {
      await next();
      ctx.req.socket.destroy(Object.assign(new Error('connection quota exceeded'), { code: 'E_QUOTA' }));
    });
    app.use(sse(() => concat(of({ data: 'first' }), NEVER)));
    const url = await listen(app);
    const client = await rawClient(`${url}/`, { read: true });
    await waitFor(() => client.closed, 5000, 'the connection dropped');
    await waitFor(() => logged.length > 0, 2000, 'the error reported');
    // Errors surface a tick or two after the failure.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(logged.map(String)).toEqual(['Error: connection quota exceeded']);
    client.destroy();
  });
});

describe("koa's own error log", () => {
  /** What Koa's default listener prints for a route that sends `first`, then fails. */
  async function printedAfterFirst(middleware: Koa.Middleware): Promise<string> {
    const logged: string[] = [];
    const app = new Koa();
    app.use(middleware);
    const url = await listen(app);
    const restore = captureConsoleErrors(logged);
    try {
      const response = await fetch(`${url}/`);
      expect(await response.text()).toBe('data: first\n\n');
      await waitFor(() => logged.length > 0, 5000, 'the log');
    } finally {
      restore();
    }
    return logged.join('\n');
  }

  it('prints a stream error that is not an Error, as Koa prints one a middleware throws', async () => {
    const printed = await printedAfterFirst(
      sse(() =>
        concat(
          of({ data: 'first' }),
          throwError(() => 'database went away'),
        ),
      ),
    );
    expect(printed).toContain('non-error thrown: "database went away"');
  });

  it('prints a stream error that JSON cannot write (a BigInt, a toJSON that throws), instead of losing it', async () => {
    const unwritable: [unknown, string][] = [
      [10n, 'non-error thrown: 10n'],
      [
        {
          toJSON() {
            throw new Error('no JSON');
          },
        },
        'non-error thrown: { toJSON: [Function: toJSON] }',
      ],
    ];
    for (const [value, text] of unwritable) {
      const printed = await printedAfterFirst(
        sse(() =>
          concat(
            of({ data: 'first' }),
            throwError(() => value),
          ),
        ),
      );
      expect(printed).toContain(text);
    }
  });

  it.each([
    [
      'an Error with a getter that throws',
      () => throwingGetter(new Error('database went away'), 'status'),
      'Error: database went away',
    ],
    ['a Proxy whose traps throw', () => throwingProxy(), 'stream error that cannot be read: {}'],
  ])(
    'prints a stream error whose fields throw as they are read (%s), instead of losing it',
    async (_kind, make, text) => {
      const printed = await printedAfterFirst(sse(() => concat(of({ data: 'first' }), throwError(make))));
      expect(printed).toContain(text);
    },
  );

  it("prints a stream error Koa would take as told to the client (ctx.throw(401) in a generator), since the stream's client was told nothing", async () => {
    // A generator's body runs once the stream began: its ctx.throw() cannot answer the client.
    const printed = await printedAfterFirst(
      sse(async function* (ctx) {
        yield { data: 'first' };
        ctx.throw(401, 'token expired');
      }),
    );
    expect(printed).toContain('token expired');
  });

  it('prints a stream error with status 404 that Koa would take as told to the client, since its client was told nothing', async () => {
    // Koa's default listener skips any error with status 404, exposed or not.
    const printed = await printedAfterFirst(
      sse(() =>
        concat(
          of({ data: 'first' }),
          throwError(() => Object.assign(new Error('row vanished'), { status: 404 })),
        ),
      ),
    );
    expect(printed).toContain('row vanished');
  });

  it('prints such an error with the stack of where it was thrown, not of where the stream copied it', async () => {
    const vanished = Object.assign(new Error('row vanished'), { status: 404 });
    const thrownAt = (vanished.stack ?? '').split('\n')[1]?.trim();
    expect(thrownAt).toMatch(/^at .*koa-hardening\.test\.ts/);
    const printed = await printedAfterFirst(
      sse(() =>
        concat(
          of({ data: 'first' }),
          throwError(() => vanished),
        ),
      ),
    );
    expect(printed).toContain(thrownAt);
  });

  it('prints an Error of another realm (a vm context) as the Error it is, not as a non-error', async () => {
    const foreign = runInNewContext("new Error('from another realm')") as Error;
    expect(foreign instanceof Error).toBe(false);
    const printed = await printedAfterFirst(
      sse(() =>
        concat(
          of({ data: 'first' }),
          throwError(() => foreign),
        ),
      ),
    );
    expect(printed).toContain('from another realm');
    expect(printed).not.toContain('non-error thrown');
  });

  it("hands an app listener of its own the error as it was thrown, with the request's context, as Koa hands its own", async () => {
    const heard: unknown[] = [];
    const paths: unknown[] = [];
    const app = new Koa();
    app.on('error', (error, ctx?: Koa.Context) => {
      heard.push(error);
      paths.push(ctx?.path);
    });
    app.use(
      sse(async function* (ctx) {
        yield { data: 'first' };
        ctx.throw(401, 'token expired');
      }),
    );
    const url = await listen(app);
    expect(await (await fetch(`${url}/feed`)).text()).toBe('data: first\n\n');
    await waitFor(() => heard.length > 0, 5000, 'the error');
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({ status: 401, message: 'token expired', expose: true });
    expect(paths).toEqual(['/feed']);
  });
});

describe('koa route options', () => {
  it('are checked when the route is created', () => {
    expect(() => sse(() => NEVER, { maxLifetime: 30 * 86_400_000 })).toThrow(/maxLifetime/);
    expect(() => sse(() => NEVER, { heartbeat: 0 })).toThrow(RangeError);
    expect(() => sse(() => NEVER, { maxQueueByte: 1e6 } as never)).toThrow(
      /^Unknown stream option "maxQueueByte" \(did you mean "maxQueueBytes"\?\)$/,
    );
  });

  it('and so are shutdown options', () => {
    const server = createServer();
    expect(() => closeStreamsOnServerClose(server, { deadline: 2 ** 31 })).toThrow(/deadline/);
  });
});

describe('koa over HTTP/1, with many streams pipelined on one connection', () => {
  it('watches their connection without a listener-leak warning, and closes each when it drops', async () => {
    const { warnings, stop } = recordWarnings();
    try {
      const logged: unknown[] = [];
      const closes: CloseReason[] = [];
      const app = new Koa();
      app.on('error', (error) => logged.push(error));
      let handled = 0;
      app.use(
        sse(
          () => {
            handled++;
            return NEVER;
          },
          { heartbeat: false, onClose: (reason) => closes.push(reason) },
        ),
      );
      const url = await listen(app);
      const client = await rawRequests(
        url,
        Array.from({ length: 16 }, () => httpRequest('GET', '/')),
      );
      await waitFor(() => handled === 16, 5000, 'sixteen requests in the middleware');
      client.destroy();
      await waitFor(() => closes.length === 16, 5000, 'sixteen closes');
      expect(closes.every((reason) => reason === 'client')).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
      expect(logged).toEqual([]);
    } finally {
      stop();
    }
  });
});

describe('koa over HTTP/2 with allowHTTP1, closing the server', () => {
  it('drops an HTTP/1.1 connection on which no request ever came', async () => {
    const app = new Koa();
    app.use(sse(() => concat(of({ data: 'first' }), NEVER)));
    const server = createSecureServer(
      { ...(await selfSignedCertificate()), allowHTTP1: true },
      app.callback(),
    );
    closeStreamsOnServerClose(server, { deadline: 500 });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    /** A TLS connection that chose HTTP/1.1, as a client without HTTP/2 opens it. */
    const http1 = async () => {
      const socket = connectTls({
        host: '127.0.0.1',
        port,
        ALPNProtocols: ['http/1.1'],
        rejectUnauthorized: false,
      });
      await once(socket, 'secureConnect');
      return new RawClient(socket as TLSSocket, true);
    };
    const unused = await http1();
    // Accepted after the unused one: once it streams, the server has seen both.
    const client = await http1();
    client.socket.write(httpRequest('GET', '/'));
    await waitFor(() => client.text.includes('data: first'), 5000, 'the first event');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      await waitFor(() => unused.closed, 5000, 'the unused connection to be dropped');
      expect(unused.text).toBe('');
      await client.done;
    } finally {
      // Whatever failed above, the server must not outlive the test.
      unused.destroy();
      client.destroy();
      await closed;
    }
  });
});

describe('koa over HTTPS, closing the server', () => {
  it('drops at its deadline a connection whose TLS handshake ended after the unused ones were dropped', async () => {
    const deadline = 60_000;
    const app = new Koa();
    app.use(sse(() => NEVER));
    const server = createHttpsServer(await selfSignedCertificate(), app.callback());
    closeStreamsOnServerClose(server, { deadline });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
    await expectCloseDropsLateHandshake(server, close, deadline);
  });
});
