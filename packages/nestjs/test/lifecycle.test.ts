import 'reflect-metadata';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type CallHandler,
  Controller,
  Get,
  Injectable,
  Module,
  type NestInterceptor,
  type Type,
  UseInterceptors,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { type MessageEvent, openStreams, StreamGroup } from '@rxsse/core';
import { concat, finalize, from, NEVER, type Observable, of, Subject, startWith } from 'rxjs';
import { describe, expect, it } from 'vitest';
import {
  expectCloseEndsOnlyItsOwnStreams,
  expectSecondServerClosedWithApp,
  expectStreamPastHandlerTimeout,
  localhostOnBothLoopbacks,
  turnAwayWhileClosing,
} from '../../../test/support/app-lifecycle.js';
import { fetchBytes, rawClient, rawExchange, waitFor } from '../../../test/support/clients.js';
import { RxSse, RxSseSignal, RxsseModule, RxsseRuntime } from '../src/index.js';
import { nestMajor, startNest } from './harness.js';

describe(`nestjs ${nestMajor}: RxsseModule in the app's lifecycle`, () => {
  it('refuses shutdown options from forRootAsync that forRoot would refuse, when the app starts', async () => {
    const compiling = Test.createTestingModule({
      imports: [RxsseModule.forRootAsync({ useFactory: () => ({ shutdown: { spread: -1 } }) })],
    }).compile();
    await expect(compiling).rejects.toThrow(/spread/);
  });

  it('refuses an option name from forRootAsync that forRoot would refuse, when the app starts', async () => {
    const compiling = Test.createTestingModule({
      imports: [RxsseModule.forRootAsync({ useFactory: () => ({ maxQueueByte: 1e6 }) as never })],
    }).compile();
    await expect(compiling).rejects.toThrow(
      /^Unknown RxsseModule option "maxQueueByte" \(did you mean "maxQueueBytes"\?\)$/,
    );
  });

  it('refuses options from forRootAsync that are no object, when the app starts', async () => {
    const compiling = Test.createTestingModule({
      imports: [RxsseModule.forRootAsync({ useFactory: () => undefined as never })],
    }).compile();
    await expect(compiling).rejects.toThrow(/^RxsseModule options must be an object, got undefined$/);
  });

  it("takes forRootAsync's inject and imports as Nest's factory providers do: an optional dependency, imports left undefined", async () => {
    const HEARTBEAT = Symbol('heartbeat');
    @Module({ providers: [{ provide: HEARTBEAT, useValue: 4321 }], exports: [HEARTBEAT] })
    class ConfigModule {}
    const app = async (configured: boolean) => {
      const moduleRef = await Test.createTestingModule({
        imports: [
          RxsseModule.forRootAsync({
            // What is not configured is undefined (the repo checks under exactOptionalPropertyTypes).
            imports: configured ? [ConfigModule] : undefined,
            inject: [{ token: HEARTBEAT, optional: true }],
            useFactory: (heartbeat?: number) => ({ heartbeat }),
          }),
        ],
      }).compile();
      const { heartbeat } = moduleRef.get(RxsseRuntime).defaults;
      await moduleRef.close();
      return heartbeat;
    };
    expect(await app(true)).toBe(4321);
    expect(await app(false)).toBe(15_000);
  });

  it('starts and closes in an application context without an HTTP server', async () => {
    @Module({ imports: [RxsseModule.forRoot()] })
    class WorkerModule {}
    const app = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
    expect(app.get(RxsseRuntime).defaults.heartbeat).toBeGreaterThan(0);
    await app.close();
  });

  it.each([
    ['forRoot', () => RxsseModule.forRoot({ heartbeat: 4321 })],
    ['forRootAsync', () => RxsseModule.forRootAsync({ useFactory: () => ({ heartbeat: 4321 }) })],
  ])("lets any module inject the app's RxsseRuntime (%s)", async (_how, rxsseModule) => {
    @Injectable()
    class Reads {
      constructor(readonly runtime: RxsseRuntime) {}
    }
    @Module({ providers: [Reads], exports: [Reads] })
    class FeatureModule {}
    @Module({ imports: [rxsseModule(), FeatureModule] })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    expect(moduleRef.get(Reads).runtime.defaults.heartbeat).toBe(4321);
    await moduleRef.close();
  });

  it("closing the app ends every stream it serves, those of a route's own group too, which its owner may close earlier", async () => {
    const events = new Subject<MessageEvent>();
    const shared = new StreamGroup();
    const own = new StreamGroup();
    const early = new StreamGroup();
    @Controller()
    class Feeds {
      @RxSse('shared')
      shared(): Observable<MessageEvent> {
        return events;
      }
      @RxSse('own', { group: own })
      own(): Observable<MessageEvent> {
        return events;
      }
      @RxSse('early', { group: early })
      early(): Observable<MessageEvent> {
        return events;
      }
    }
    @Module({
      imports: [RxsseModule.forRoot({ group: shared, shutdown: { retry: 1000 } })],
      controllers: [Feeds],
    })
    class FeedModule {}
    const app = await startNest(FeedModule, 'express', []);
    const [inShared, inOwn, inEarly] = await Promise.all([
      rawClient(`${app.url}/shared`, { read: true }),
      rawClient(`${app.url}/own`, { read: true }),
      rawClient(`${app.url}/early`, { read: true }),
    ]);
    await waitFor(() => shared.size + own.size + early.size === 3, 5000, 'the three streams');
    await early.close({ retry: 2000 });
    // The response's last chunk: its connection stays open for the server's keep-alive timeout.
    await waitFor(() => inEarly.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the early stream to end');
    expect(inEarly.text).toContain('retry: 2000');
    const closing = app.close();
    try {
      await waitFor(() => inShared.closed && inOwn.closed, 5000, 'the streams to end');
      expect(inShared.text).toContain('retry: 1000');
      expect(inOwn.text).toContain('retry: 1000');
      expect(own.size).toBe(0);
    } finally {
      // Whatever failed above, the app must not outlive the test.
      await own.close();
      await closing;
    }
  });

  it("keeps the module's options where a route's are undefined: its bare values, its group, which closing the app ends", async () => {
    // Options built from a config, where what is not configured is undefined.
    const config: { group?: StreamGroup; bareValues?: 'refuse' | 'data' } = {};
    @Controller()
    class Feed {
      @RxSse('feed', { group: config.group, bareValues: config.bareValues })
      feed(): Observable<string> {
        return concat(of('hi'), NEVER);
      }
    }
    @Module({ imports: [RxsseModule.forRoot({ shutdown: { retry: 1000 } })], controllers: [Feed] })
    class FeedModule {}
    const app = await startNest(FeedModule, 'express', []);
    const client = await rawClient(`${app.url}/feed`, { read: true });
    try {
      await waitFor(() => client.text.includes('data: hi'), 5000, 'the bare value as data');
      const closing = app.close();
      await waitFor(() => client.closed, 5000, 'the stream to end');
      expect(client.text).toContain('retry: 1000');
      await closing;
    } finally {
      client.destroy();
      await openStreams.close();
      await app.close();
    }
  });

  it('ends the streams of an Express app that listens again after its close, at its next close too', async () => {
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(): Observable<MessageEvent> {
        return concat(of({ data: 'hi' }), NEVER);
      }
    }
    @Module({ imports: [RxsseModule.forRoot({ shutdown: { retry: 1000 } })], controllers: [Feed] })
    class FeedModule {}
    const server = await startNest(FeedModule, 'express', []);
    for (const close of ['first', 'second']) {
      // Nest lets a closed app listen again (Fastify would refuse: its server cannot reopen).
      if (close === 'second') await server.app.listen(0, '127.0.0.1');
      const { port } = server.app.getHttpServer().address() as { port: number };
      const client = await rawClient(`http://127.0.0.1:${port}/feed`, { read: true });
      await waitFor(() => client.text.includes('data: hi'), 5000, 'the stream');
      const closing = server.close();
      try {
        await waitFor(() => client.closed, 5000, `the ${close} close to end the stream`);
        expect(client.text).toContain('retry: 1000');
      } finally {
        // Whatever failed above, the app must not outlive the test.
        client.destroy();
        await closing;
      }
    }
    expect(server.logged).toEqual([]);
  });

  it("streams through a server besides the Express app's once the app that closed listens again", async () => {
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(): Observable<MessageEvent> {
        return concat(of({ data: 'hi' }), NEVER);
      }
    }
    @Module({ imports: [RxsseModule.forRoot()], controllers: [Feed] })
    class FeedModule {}
    const server = await startNest(FeedModule, 'express', []);
    // A second server for the same Express app, as one serving both HTTP and HTTPS has.
    const other = createServer(server.app.getHttpAdapter().getInstance());
    try {
      await server.close();
      await server.app.listen(0, '127.0.0.1');
      await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
      const { port } = other.address() as AddressInfo;
      const client = await rawClient(`http://127.0.0.1:${port}/feed`, { read: true });
      await waitFor(() => client.text.includes('data: hi') || client.closed, 5000, 'the stream');
      client.destroy();
      expect(client.text).toMatch(/^HTTP\/1\.1 200/);
      expect(client.text).toContain('data: hi');
    } finally {
      other.closeAllConnections();
      other.close();
      await server.close();
    }
    expect(server.logged).toEqual([]);
  });

  it("drops a live stream's connection when its client sends garbage after the request on platform-fastify, with no raw 400 inside the stream", async () => {
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(): Observable<string> {
        return concat(of('hi'), NEVER);
      }
    }
    @Module({ imports: [RxsseModule.forRoot()], controllers: [Feed] })
    class FeedModule {}
    const app = await startNest(FeedModule, 'fastify', []);
    try {
      const { port } = new URL(app.url);
      const request = 'GET /feed HTTP/1.1\r\nHost: x\r\n\r\n';
      const received = await rawExchange(Number(port), request, 'data: hi\n\n\r\n');
      expect(received.slice(received.indexOf('\r\n\r\n') + 4)).toBe('a\r\ndata: hi\n\n\r\n');
      // Fastify's own 400 still answers garbage on a connection without a stream.
      expect(await rawExchange(Number(port), '', '')).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    } finally {
      await app.close();
    }
  });

  // Options built from a config, where what is not configured is undefined, keep the app's group.
  const unconfigured: { group?: StreamGroup } = {};
  it.each([
    ['no options', undefined],
    ['options a config leaves undefined', { group: unconfigured.group }],
  ])("closing one app ends its own streams and leaves another app's open, given %s", async (_, options) => {
    const events = new Subject<MessageEvent>();
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(): Observable<MessageEvent> {
        return events;
      }
    }
    @Module({ imports: [RxsseModule.forRoot(options)], controllers: [Feed] })
    class FeedModule {}
    const first = await startNest(FeedModule, 'express', []);
    const second = await startNest(FeedModule, 'express', []);
    await expectCloseEndsOnlyItsOwnStreams(events, first, second);
    expect([...first.logged, ...second.logged]).toEqual([]);
  });

  it('streams bare values as data for module options a config leaves undefined', async () => {
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(): Observable<string> {
        return of('bare');
      }
    }
    const config: { bareValues?: 'refuse' | 'data' } = {};
    @Module({ imports: [RxsseModule.forRoot({ bareValues: config.bareValues })], controllers: [Feed] })
    class FeedModule {}
    const app = await startNest(FeedModule, 'express', []);
    try {
      expect((await fetchBytes(`${app.url}/feed`)).body.toString()).toContain('data: bare\n\n');
    } finally {
      await app.close();
    }
    expect(app.logged).toEqual([]);
  });

  it('answers a route that asks for @RxSseSignal() in an app without RxsseModule with a 500 that names the fix', async () => {
    @Controller()
    class Lonely {
      @RxSse('lonely')
      lonely(@RxSseSignal() _signal: AbortSignal) {
        return from([{ data: 'x' }]);
      }
    }
    @Module({ controllers: [Lonely] })
    class LonelyModule {}
    await expectLogged500(
      LonelyModule,
      '/lonely',
      /RxsseModuleMissingError.*with @RxSseSignal\(\).*RxsseModule\.forRoot\(\)/s,
    );
  });

  it('answers a plain route that asks for @RxSseSignal() with a 500 that names the route kind, in an app with RxsseModule', async () => {
    @Controller()
    class Plain {
      @Get('plain')
      plain(@RxSseSignal() _signal: AbortSignal) {
        return 'x';
      }
    }
    @Module({ imports: [RxsseModule.forRoot()], controllers: [Plain] })
    class PlainModule {}
    await expectLogged500(
      PlainModule,
      '/plain',
      /TypeError: @RxSseSignal\(\) is for @RxSse\(\) routes.*@SseSignal\(\)/s,
    );
  });

  it("keeps a stream open on fastify past the route's handlerTimeout, which is for replies Fastify sends", async () => {
    const events = new Subject<MessageEvent>();
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(): Observable<MessageEvent> {
        return events.pipe(startWith({ data: 'first' }));
      }
    }
    @Module({ imports: [RxsseModule.forRoot()], controllers: [Feed] })
    class FeedModule {}
    const server = await startNest(FeedModule, new FastifyAdapter({ handlerTimeout: 1000 } as never), []);
    try {
      await expectStreamPastHandlerTimeout(server.url, events);
    } finally {
      await server.close();
    }
    expect(server.logged).toEqual([]);
  });

  it("leaves Fastify's answer to a request its handlerTimeout cut during the setup, and ends Nest's chain", async () => {
    const chain = { ended: 0 };
    @Injectable()
    class Tracks implements NestInterceptor {
      intercept(_context: unknown, next: CallHandler): Observable<unknown> {
        return next.handle().pipe(finalize(() => chain.ended++));
      }
    }
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    @Controller()
    class Slow {
      @RxSse('slow')
      @UseInterceptors(Tracks)
      async slow(): Promise<Observable<MessageEvent>> {
        await released;
        return of({ data: 'too late' });
      }
    }
    @Module({ imports: [RxsseModule.forRoot()], controllers: [Slow] })
    class SlowModule {}
    const server = await startNest(SlowModule, new FastifyAdapter({ handlerTimeout: 100 } as never), []);
    try {
      const { response } = await fetchBytes(`${server.url}/slow`);
      expect(response.status).toBe(503);
      release();
      await waitFor(() => chain.ended === 1, 5000, "Nest's chain to end");
      await waitFor(
        () => server.logged.some((line) => line.startsWith('RxsseResponseSentError')),
        5000,
        'the report',
      );
    } finally {
      await server.close();
    }
    // Besides Fastify's own report of the timeout (NestJS 12 logs it), one that no stream was sent.
    expect(server.logged.filter((line) => !line.includes('FST_ERR_HANDLER_TIMEOUT'))).toEqual([
      expect.stringMatching(/^RxsseResponseSentError: @RxSse\(\) route GET \/slow /),
    ]);
  });

  it('sends the headers a Fastify hook set on the reply, with the stream', async () => {
    @Controller()
    class Hello {
      @RxSse('hello')
      hello(): Observable<MessageEvent> {
        return from([{ data: 'hello' }]);
      }
    }
    @Module({ imports: [RxsseModule.forRoot()], controllers: [Hello] })
    class HelloModule {}
    const adapter = new FastifyAdapter();
    adapter.getInstance().addHook('onRequest', async (_req, reply) => {
      reply.header('x-request-id', 'req-42');
    });
    const server = await startNest(HelloModule, adapter, []);
    try {
      const { response, body } = await fetchBytes(`${server.url}/hello`);
      expect(response.headers.get('x-request-id')).toBe('req-42');
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(body.toString()).toBe('data: hello\n\n');
    } finally {
      await server.close();
    }
    expect(server.logged).toEqual([]);
  });

  it('turns away a stream request that comes once the streams ended, while the server still closes', async () => {
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(): Observable<MessageEvent> {
        return concat(of({ data: 'hi' }), NEVER);
      }
    }
    @Module({ imports: [RxsseModule.forRoot({ shutdown: { retry: 5000 } })], controllers: [Feed] })
    class FeedModule {}
    const adapter = new FastifyAdapter({ return503OnClosing: false });
    // Fastify's preClose runs once Nest's shutdown hooks ended the streams, before the server stops.
    const asking = turnAwayWhileClosing(adapter.getInstance());
    const server = await startNest(FeedModule, adapter, []);
    await asking.open(server.url);
    await server.close();
    asking.expectTurnedAway();
    expect(server.logged).toEqual([]);
  });

  it("turns away, and ends on close, the streams of the second server Fastify binds for localhost's IPv6 address", async () => {
    const restore = localhostOnBothLoopbacks();
    const own = new StreamGroup();
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(): Observable<MessageEvent> {
        return concat(of({ data: 'hi' }), NEVER);
      }

      @RxSse('own', { group: own })
      own(): Observable<MessageEvent> {
        return concat(of({ data: 'hi' }), NEVER);
      }
    }
    @Module({ imports: [RxsseModule.forRoot({ shutdown: { retry: 5000 } })], controllers: [Feed] })
    class FeedModule {}
    const adapter = new FastifyAdapter({ return503OnClosing: false });
    const asking = turnAwayWhileClosing(adapter.getInstance());
    const app = await NestFactory.create(FeedModule, adapter, { logger: false });
    try {
      await app.listen(0, 'localhost');
      const { port } = app.getHttpServer().address() as { port: number };
      await expectSecondServerClosedWithApp(adapter.getInstance(), port, asking, () => app.close());
    } finally {
      restore();
      await own.close();
      await app.close();
    }
  });
});

/** Serves `module` on Express: a GET of `path` gets a 500, and Nest logs one line, matching `line`. */
async function expectLogged500(module: Type, path: string, line: RegExp): Promise<void> {
  const logged: string[] = [];
  const server = await startNest(module, 'express', logged);
  try {
    expect((await fetchBytes(`${server.url}${path}`)).response.status).toBe(500);
    expect(logged).toEqual([expect.stringMatching(line)]);
  } finally {
    await server.close();
  }
}
