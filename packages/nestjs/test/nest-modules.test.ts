import 'reflect-metadata';
import fastifyHelmet from '@fastify/helmet';
import { CACHE_KEY_METADATA, CacheInterceptor, CacheKey, CacheModule } from '@nestjs/cache-manager';
import {
  ClassSerializerInterceptor,
  Controller,
  type INestApplication,
  Module,
  ValidationPipe,
  Version,
  VersioningType,
} from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Throttle, ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { Exclude } from 'class-transformer';
import compression from 'compression';
import helmet from 'helmet';
import { concat, interval, map, NEVER, of } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { collectEvents, eventSourceClients, readUntil, waitFor } from '../../../test/support/clients.js';
import { expectPreflightAnswered, ORIGIN } from '../../../test/support/ecosystem.js';
import { metered } from '../../../test/support/recording.js';
import { LastEventId, RxSse, RxSseSignal, RxsseModule } from '../src/index.js';
import { nestMajor, type Platform, startNest } from './harness.js';

class User {
  constructor(
    readonly name: string,
    password: string,
  ) {
    this.password = password;
  }

  @Exclude()
  password: string;
}

/**
 * One app with the ecosystem's usual global modules (throttler, cache, class serializer, CORS,
 * helmet, a global prefix, versioning, validation, and compression on Express), and the stream
 * routes among them, as a production app has them.
 */
function appOf(options: ReturnType<typeof metered>['options']) {
  @Controller()
  class EventsController {
    @RxSse('open')
    open() {
      return concat(of({ data: 'hello' }), NEVER);
    }

    @RxSse('ticks')
    ticks() {
      return interval(20).pipe(map((n) => ({ id: String(n), data: String(n) })));
    }

    @RxSse('users')
    users() {
      return concat(of({ data: new User('ada', 'secret') }), NEVER);
    }

    @Throttle({ default: { limit: 2, ttl: 60_000 } })
    @RxSse('limited')
    limited() {
      return concat(of({ data: 'hello' }), NEVER);
    }

    @RxSse('resume')
    resume(@RxSseSignal() signal: AbortSignal, @LastEventId() lastEventId: string | undefined) {
      return concat(
        of({ data: `${signal instanceof AbortSignal && !signal.aborted} ${lastEventId}` }),
        NEVER,
      );
    }

    @Version('1')
    @RxSse('versioned')
    versioned() {
      return concat(of({ id: 'v1', data: 'one' }), NEVER);
    }
  }

  @Module({
    imports: [
      RxsseModule.forRoot(options),
      ThrottlerModule.forRoot([{ limit: 1000, ttl: 60_000 }]),
      CacheModule.register(),
    ],
    controllers: [EventsController],
    providers: [
      { provide: APP_GUARD, useClass: ThrottlerGuard },
      { provide: APP_INTERCEPTOR, useClass: CacheInterceptor },
      { provide: APP_INTERCEPTOR, useClass: ClassSerializerInterceptor },
    ],
  })
  class AppModule {}
  return AppModule;
}

describe.each<Platform>(['express', 'fastify'])(
  `nestjs ${nestMajor} on %s behind the usual global modules`,
  (platform) => {
    const { options, closes, seen } = metered();
    const logged: string[] = [];
    let app: INestApplication;
    let url = '';

    beforeAll(async () => {
      let adapter: Platform | FastifyAdapter = platform;
      if (platform === 'fastify') {
        adapter = new FastifyAdapter();
        // Nest types `register` with its own fastify type provider, which the plugin's types are not.
        await adapter.register(fastifyHelmet as never);
      }
      const started = await startNest(appOf(options), adapter, logged, (nest) => {
        nest.enableCors({ origin: ORIGIN });
        nest.setGlobalPrefix('api');
        nest.enableVersioning({ type: VersioningType.URI });
        // It validates custom parameters too, by their declared type.
        nest.useGlobalPipes(new ValidationPipe({ transform: true, validateCustomDecorators: true }));
        if (platform === 'express') nest.use(helmet(), compression({ threshold: 0 }));
      });
      app = started.app;
      url = `${started.url}/api`;
    });
    afterAll(async () => {
      await app.close();
      expect(seen.filter((s) => s === 'opened').length).toBe(closes.length);
      expect(logged).toEqual([]);
    });
    afterEach(() =>
      waitFor(
        () => seen.filter((s) => s === 'opened').length === closes.length,
        5000,
        'the streams to close',
      ),
    );

    it("sends each event at once, uncompressed, with cors' and helmet's headers", async () => {
      const response = await fetch(`${url}/open`, {
        headers: { origin: ORIGIN, 'accept-encoding': 'gzip, br' },
      });
      await response.body?.cancel();
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(response.headers.get('content-encoding')).toBeNull();
      expect(response.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-ratelimit-limit')).toBe('1000');
      expect(response.headers.get('x-cache')).toBeNull();
      // Only an unbuffered stream delivers the one event of a stream that stays open.
      expect(await readUntil(`${url}/open`, (text) => text.includes('\n\n'), 5000)).toBe('data: hello\n\n');
    });

    it("answers a CORS preflight with Nest's 204, never a stream", async () => {
      const before = [...seen];
      await expectPreflightAnswered(`${url}/open`);
      expect(seen).toEqual(before);
    });

    it('streams a versioned route under the prefix, exactly, in an EventSource', async () => {
      for (const [, EventSourceImpl] of eventSourceClients) {
        const events = await collectEvents(EventSourceImpl, `${url}/v1/versioned`, ['message'], 1);
        expect(events).toEqual([{ type: 'message', data: 'one', lastEventId: 'v1' }]);
      }
    });

    it("hands @RxSseSignal()'s signal and @LastEventId()'s id through a pipe that validates custom parameters", async () => {
      const text = await readUntil(`${url}/resume?lastEventId=7`, (text) => text.includes('\n\n'), 5000);
      expect(text).toBe('data: true 7\n\n');
    });

    it('serializes class instances without their @Exclude() fields', async () => {
      const text = await readUntil(`${url}/users`, (text) => text.includes('\n\n'), 5000);
      expect(text).toBe('data: {"name":"ada"}\n\n');
    });

    it('streams every client its own events, none served from the cache', async () => {
      const first = await readUntil(`${url}/ticks`, (text) => text.includes('id: 2\n'), 5000);
      expect(first).toMatch(/^id: 0\ndata: 0\n\nid: 1\ndata: 1\n\nid: 2\n/);
      // A second client gets the stream from its start, not a cached event.
      const second = await readUntil(`${url}/ticks`, (text) => text.includes('id: 2\n'), 5000);
      expect(second).toMatch(/^id: 0\ndata: 0\n\nid: 1\ndata: 1\n\nid: 2\n/);
    });

    it("answers the request over the throttler's limit with 429, counted as no stream, and keeps the others", async () => {
      const before = seen.length;
      const open = new AbortController();
      const kept = await fetch(`${url}/limited`, { signal: open.signal });
      expect(kept.status).toBe(200);
      const reader = (kept.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      const second = await fetch(`${url}/limited`);
      expect(second.status).toBe(200);
      await second.body?.cancel();
      const refused = await fetch(`${url}/limited`);
      expect(refused.status).toBe(429);
      expect(await refused.json()).toMatchObject({ statusCode: 429 });
      await waitFor(() => seen.length === before + 3, 5000, 'the second stream to close');
      // The first stream goes on past the refusal.
      expect(seen.slice(before)).toEqual(['opened', 'opened', 'closed:client']);
      open.abort();
      await waitFor(() => seen.length === before + 4, 5000, 'the two streams to close');
      expect(seen.slice(before).sort()).toEqual(['closed:client', 'closed:client', 'opened', 'opened']);
    });
  },
);

it("keeps a method's own @CacheKey() given below @RxSse()", () => {
  class Feed {
    @RxSse('feed')
    @CacheKey('feed')
    feed() {
      return of({ data: 'x' });
    }
  }
  expect(Reflect.getMetadata(CACHE_KEY_METADATA, Feed.prototype.feed)).toBe('feed');
});
