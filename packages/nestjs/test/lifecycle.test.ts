import 'reflect-metadata';
import { once } from 'node:events';
import { Controller, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { type MessageEvent, StreamGroup } from '@rxsse/core';
import { concat, from, NEVER, type Observable, of, Subject, startWith } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import {
  fetchBytes,
  httpRequest,
  type RawClient,
  rawClient,
  waitFor,
} from '../../../test/support/clients.js';
import { RxSse, RxSseSignal, RxsseModule, RxsseRuntime } from '../src/index.js';
import { nestMajor, startNest } from './harness.js';

describe(`nestjs ${nestMajor}: RxsseModule in the app's lifecycle`, () => {
  it('refuses shutdown options from forRootAsync that forRoot would refuse, when the app starts', async () => {
    const compiling = Test.createTestingModule({
      imports: [RxsseModule.forRootAsync({ useFactory: () => ({ shutdown: { spread: -1 } }) })],
    }).compile();
    await expect(compiling).rejects.toThrow(/spread/);
  });

  it('starts and closes in an application context without an HTTP server', async () => {
    @Module({ imports: [RxsseModule.forRoot()] })
    class WorkerModule {}
    const app = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
    expect(app.get(RxsseRuntime).defaults.heartbeat).toBeGreaterThan(0);
    await app.close();
  });

  it("lets any module inject the app's RxsseRuntime", async () => {
    @Injectable()
    class Reads {
      constructor(readonly runtime: RxsseRuntime) {}
    }
    @Module({ providers: [Reads], exports: [Reads] })
    class FeatureModule {}
    @Module({ imports: [RxsseModule.forRoot({ heartbeat: 4321 }), FeatureModule] })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    expect(moduleRef.get(Reads).runtime.defaults.heartbeat).toBe(4321);
    await moduleRef.close();
  });

  it("closing the app ends the streams of the group given to forRoot, and a route's own group is its owner's", async () => {
    const events = new Subject<MessageEvent>();
    const shared = new StreamGroup();
    const own = new StreamGroup();
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
    }
    @Module({
      imports: [RxsseModule.forRoot({ group: shared, shutdown: { retry: 1000 } })],
      controllers: [Feeds],
    })
    class FeedModule {}
    const app = await startNest(FeedModule, 'express', []);
    const [inShared, inOwn] = await Promise.all([
      rawClient(`${app.url}/shared`, { read: true }),
      rawClient(`${app.url}/own`, { read: true }),
    ]);
    await waitFor(() => shared.size === 1 && own.size === 1, 5000, 'both streams');
    const closing = app.close();
    await inShared.done;
    expect(inShared.text).toContain('retry: 1000');
    expect(own.size).toBe(1);
    await own.close({ retry: 2000 });
    await inOwn.done;
    await closing;
    expect(inOwn.text).toContain('retry: 2000');
  });

  it("closing one app ends its own streams and leaves another app's open", async () => {
    const events = new Subject<MessageEvent>();
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(): Observable<MessageEvent> {
        return events;
      }
    }
    @Module({ imports: [RxsseModule.forRoot()], controllers: [Feed] })
    class FeedModule {}
    const first = await startNest(FeedModule, 'express', []);
    const second = await startNest(FeedModule, 'express', []);
    try {
      const [leaving, staying] = await Promise.all([
        rawClient(`${first.url}/feed`, { read: true }),
        rawClient(`${second.url}/feed`, { read: true }),
      ]);
      await waitFor(() => events.observers.length === 2, 5000, 'both subscriptions');
      await first.close();
      await leaving.done;
      events.next({ data: 'still here' });
      await waitFor(() => staying.text.includes('data: still here\n\n'), 5000, "the other app's event");
      expect(staying.closed).toBe(false);
      staying.destroy();
    } finally {
      await second.close();
    }
    expect([...first.logged, ...second.logged]).toEqual([]);
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
    const logged: string[] = [];
    const server = await startNest(LonelyModule, 'express', logged);
    try {
      expect((await fetchBytes(`${server.url}/lonely`)).response.status).toBe(500);
      expect(logged).toEqual([
        expect.stringMatching(/RxsseModuleMissingError.*with @RxSseSignal\(\).*RxsseModule\.forRoot\(\)/s),
      ]);
    } finally {
      await server.close();
    }
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
      // Fastify arms the handler's timer when the request arrives: fake time from before it.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const client = await rawClient(`${server.url}/feed`, { read: true });
      try {
        while (!client.text.includes('data: first\n\n')) await once(client.socket, 'data');
        vi.advanceTimersByTime(5000);
      } finally {
        vi.useRealTimers();
      }
      events.next({ data: 'later' });
      await waitFor(() => client.text.includes('data: later\n\n') || client.closed, 5000, 'the later event');
      expect(client.closed).toBe(false);
      expect(client.text).not.toContain('FST_ERR');
      client.destroy();
    } finally {
      await server.close();
    }
    expect(server.logged).toEqual([]);
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
    let client: RawClient | undefined;
    let answer = '';
    // Fastify's preClose runs once Nest's shutdown hooks ended the streams, before the server stops.
    adapter.getInstance().addHook('preClose', async () => {
      const kept = client!;
      await waitFor(() => kept.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the first stream');
      const before = kept.text.length;
      kept.socket.write(httpRequest('GET', '/feed'));
      await waitFor(() => kept.closed || kept.text.slice(before).includes('data: hi'), 5000, 'the answer');
      answer = kept.text.slice(before);
      kept.destroy();
    });
    const server = await startNest(FeedModule, adapter, []);
    client = await rawClient(`${server.url}/feed`, { read: true });
    await waitFor(() => client!.text.includes('data: hi'), 5000, 'the stream');
    await server.close();
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(answer).toContain('retry: 5000');
    expect(answer).not.toContain('data: hi');
    expect(server.logged).toEqual([]);
  });
});
