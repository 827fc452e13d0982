import 'reflect-metadata';
import {
  BadRequestException,
  ConsoleLogger,
  Controller,
  Logger,
  type LoggerService,
  type LogLevel,
  Module,
  Res,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { MessageEvent } from '@rxsse/core';
import { Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { fetchBytes, waitFor } from '../../../test/support/clients.js';
import { throwingProxy } from '../../../test/support/unreadable.js';
import { recordUnhandledRejections } from '../../../test/support/warnings.js';
import { RxSse, RxsseModule } from '../src/index.js';
import { errorText, streamErrorLog } from '../src/logger.js';
import { nestMajor, type Platform, startNest } from './harness.js';

/** A logger that keeps the arguments of each `error` call. */
function errorLog(): LoggerService & { errors: unknown[][] } {
  const errors: unknown[][] = [];
  return { errors, log() {}, warn() {}, error: (...args: unknown[]) => errors.push(args) };
}

/** An app whose `/feed` sends one event, then fails with `message`, its streams logging to `logger`. */
function failingApp(message: string, logger: LoggerService, failure: unknown = new Error(message)): Type {
  @Controller()
  class Feed {
    @RxSse('feed')
    feed(): Observable<MessageEvent> {
      return new Observable((subscriber) => {
        subscriber.next({ data: 'first' });
        const timer = setTimeout(() => subscriber.error(failure), 10);
        return () => clearTimeout(timer);
      });
    }
  }
  @Module({ imports: [RxsseModule.forRoot({ logger })], controllers: [Feed] })
  class AppModule {}
  return AppModule;
}

describe(`nestjs ${nestMajor}: the module's logger`, () => {
  it.each<Platform>(['express', 'fastify'])(
    "reports each app's failing stream to that app's logger only, with two apps in one process (%s)",
    async (platform) => {
      const one = errorLog();
      const two = errorLog();
      // Each app replaces Nest's logger of the process as it is created: the second one wins.
      const nestLogged: string[] = [];
      const first = await startNest(failingApp('feed one broke', one), platform, nestLogged);
      const second = await startNest(failingApp('feed two broke', two), platform, nestLogged);
      try {
        for (const app of [first, second]) {
          const { body } = await fetchBytes(`${app.url}/feed`, { signal: AbortSignal.timeout(5000) });
          expect(body.toString()).toBe('data: first\n\n');
        }
        await waitFor(() => one.errors.length > 0 && two.errors.length > 0, 5000, 'both reports');
        expect(one.errors).toEqual([
          [
            expect.stringMatching(/^event stream GET \/feed failed: Error: feed one broke$/),
            expect.stringContaining('feed one broke'),
            'RxSse',
          ],
        ]);
        expect(two.errors).toEqual([
          [
            expect.stringMatching(/^event stream GET \/feed failed: Error: feed two broke$/),
            expect.stringContaining('feed two broke'),
            'RxSse',
          ],
        ]);
        expect(nestLogged).toEqual([]);
      } finally {
        await first.close();
        await second.close();
      }
    },
  );

  it.each<Platform>(['express', 'fastify'])(
    "reports under the context of a logger that has one of its own, ConsoleLogger('tenant-a') or Logger('Feeds'), with its stack as the stack (%s)",
    async (platform) => {
      /** What a ConsoleLogger prints of its errors: each report's context, messages and stack. */
      class Printing extends ConsoleLogger {
        printed: { context?: string | undefined; messages: unknown[]; stack?: string | undefined }[] = [];
        protected override printMessages(messages: unknown[], context?: string, level?: LogLevel): void {
          if (level === 'error') this.printed.push({ context, messages });
        }
        protected override printStackTrace(stack?: string): void {
          if (stack) this.printed.at(-1)!.stack = stack;
        }
      }
      const tenant = new Printing('tenant-a');
      // Nest's logger of the process: a Logger('Feeds') hands it its calls, with its context.
      const nest = new Printing();
      const reports = (message: string, context: string) => [
        {
          context,
          messages: [`event stream GET /feed failed: Error: ${message}`],
          stack: expect.stringContaining(message),
        },
      ];
      for (const [message, logger] of [
        ['tenant broke', tenant],
        ['feeds broke', new Logger('Feeds')],
      ] as const) {
        const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
        const app = await NestFactory.create(failingApp(message, logger), adapter, { logger: nest });
        await app.listen(0, '127.0.0.1');
        try {
          const { port } = app.getHttpServer().address() as { port: number };
          await fetchBytes(`http://127.0.0.1:${port}/feed`, { signal: AbortSignal.timeout(5000) });
          await waitFor(() => [...tenant.printed, ...nest.printed].length > 0, 5000, 'the report');
        } finally {
          await app.close();
        }
        const printed = logger === tenant ? tenant.printed : nest.printed;
        expect(printed).toEqual(reports(message, logger === tenant ? 'tenant-a' : 'Feeds'));
        printed.length = 0;
      }
      expect([...tenant.printed, ...nest.printed]).toEqual([]);
    },
  );

  it.each<Platform>(['express', 'fastify'])(
    'reports a stream that fails with an object String() cannot print, one without a prototype (%s)',
    async (platform) => {
      const log = errorLog();
      // What a parser hands out for a query string or a JSON body: an object without a prototype.
      const failure = Object.assign(Object.create(null), { reason: 'upstream gone' });
      const app = await startNest(failingApp('', log, failure), platform, []);
      try {
        const { body } = await fetchBytes(`${app.url}/feed`, { signal: AbortSignal.timeout(5000) });
        expect(body.toString()).toBe('data: first\n\n');
        await waitFor(() => log.errors.length > 0, 5000, 'the report');
        expect(log.errors).toEqual([
          [
            expect.stringMatching(/^event stream GET \/feed failed: .*reason: 'upstream gone'/),
            undefined,
            'RxSse',
          ],
        ]);
      } finally {
        await app.close();
      }
    },
  );

  it.each<Platform>(['express', 'fastify'])(
    'reports a stream that fails with an object whose fields throw as they are read, a Proxy whose traps throw (%s)',
    async (platform) => {
      const log = errorLog();
      const failure = throwingProxy();
      const app = await startNest(failingApp('', log, failure), platform, []);
      try {
        const { body } = await fetchBytes(`${app.url}/feed`, { signal: AbortSignal.timeout(5000) });
        expect(body.toString()).toBe('data: first\n\n');
        await waitFor(() => log.errors.length > 0, 5000, 'the report');
        expect(log.errors).toEqual([['event stream GET /feed failed: {}', undefined, 'RxSse']]);
      } finally {
        await app.close();
      }
    },
  );

  it.each<[Platform, string, () => Error, boolean]>([
    ['express', 'an HttpException', () => new BadRequestException('bad token'), false],
    ['fastify', 'an HttpException', () => new BadRequestException('bad token'), false],
    ['express', 'another error', () => new Error('the database is down'), true],
  ])(
    'reports a method that fails once its client left only for what Nest would report (%s, %s)',
    async (platform, _, failure, reported) => {
      let entered = false;
      let fail!: () => void;
      @Controller()
      class Feed {
        @RxSse('feed')
        async feed(): Promise<Observable<MessageEvent>> {
          entered = true;
          await new Promise<void>((resolve) => (fail = resolve));
          throw failure();
        }
      }
      @Module({ imports: [RxsseModule.forRoot()], controllers: [Feed] })
      class AppModule {}
      const nestLogged: string[] = [];
      const app = await startNest(AppModule, platform, nestLogged);
      try {
        const abort = new AbortController();
        const request = fetch(`${app.url}/feed`, { signal: abort.signal }).catch(() => {});
        await waitFor(() => entered, 5000, 'the method');
        abort.abort();
        await request;
        // Its failure comes once the stream counted its client gone.
        await new Promise((resolve) => setTimeout(resolve, 50));
        fail();
        await new Promise((resolve) => setTimeout(resolve, 50));
      } finally {
        await app.close();
      }
      expect(nestLogged.some((line) => line.includes('the database is down'))).toBe(reported);
      expect(nestLogged.filter((line) => !line.includes('the database is down'))).toEqual([]);
    },
  );

  const refusing: Record<string, LoggerService['error']> = {
    throws() {
      throw new Error('the log is full');
    },
    // Nest's LoggerService.error returns `any`: a log shipper's may be a promise.
    rejects: async () => {
      throw new Error('the log is full');
    },
  };
  it.each<[Platform, string]>([
    ['express', 'throws'],
    ['fastify', 'throws'],
    ['express', 'rejects'],
    ['fastify', 'rejects'],
  ])(
    "reports to Nest's own log what a logger could not take, instead of an unhandled rejection (%s, a logger that %s)",
    async (platform, how) => {
      const logger: LoggerService = { log() {}, warn() {}, error: refusing[how]! };
      // An iterator no stream takes (the method answered through @Res()), whose return() rejects.
      const iterator: AsyncIterableIterator<MessageEvent> = {
        next: () => new Promise(() => {}),
        return: () => Promise.reject(new Error('return() broke')),
        [Symbol.asyncIterator]() {
          return this;
        },
      };
      @Controller()
      class Feed {
        @RxSse('feed')
        feed(
          @Res() res: { status?(code: number): { send(): void }; code?(code: number): { send(): void } },
        ): AsyncIterable<MessageEvent> {
          (res.code ?? res.status)!.call(res, 204).send();
          return iterator;
        }
      }
      @Module({ imports: [RxsseModule.forRoot({ logger })], controllers: [Feed] })
      class AppModule {}
      const { rejections: unhandled, stop } = recordUnhandledRejections();
      const nestLogged: string[] = [];
      const app = await startNest(AppModule, platform, nestLogged);
      try {
        const { response } = await fetchBytes(`${app.url}/feed`, { signal: AbortSignal.timeout(5000) });
        expect(response.status).toBe(204);
        await waitFor(
          () => nestLogged.some((line) => line.includes('return() broke')) || unhandled.length > 0,
          5000,
          'the report',
        );
        expect(unhandled).toEqual([]);
        expect(nestLogged.join('\n')).toContain('the log is full');
      } finally {
        stop();
        await app.close();
      }
    },
  );

  it("hands a logger with a context of its own a report as Nest's Logger hands it its calls, with the stack only when there is one, and one with an empty context the module's", () => {
    const withContext = (context: string) => Object.assign(errorLog(), { context });
    // A stream that fails with what is no Error (a string thrown) has no stack to report.
    const message = 'event stream GET /feed failed: upstream gone';
    const tenant = withContext('tenant-a');
    streamErrorLog(tenant)(message, undefined);
    streamErrorLog(tenant)(message, 'Error: upstream gone\n    at feed');
    expect(tenant.errors).toEqual([[message], [message, 'Error: upstream gone\n    at feed']]);
    const blank = withContext('');
    streamErrorLog(blank)(message, undefined);
    expect(blank.errors).toEqual([[message, undefined, 'RxSse']]);
  });

  it('refuses a logger without an error function where it is given, naming the option', async () => {
    expect(() => RxsseModule.forRoot({ logger: { log() {} } as never })).toThrow(
      /^logger must be a Nest LoggerService \(an object with an error function\), got an object \(Object\) without an error function$/,
    );
    expect(() => RxsseModule.forRoot({ logger: null as never })).toThrow(TypeError);
    expect(() => RxsseModule.forRoot({ logger: 'console' as never })).toThrow(/^logger .*, got string$/);
    const compiling = Test.createTestingModule({
      imports: [RxsseModule.forRootAsync({ useFactory: () => ({ logger: console.error as never }) })],
    }).compile();
    await expect(compiling).rejects.toThrow(/^logger must be a Nest LoggerService .*, got function$/);
  });
});

describe('errorText', () => {
  it('prints an error, and inspects what String() cannot print or prints as [object Object]', () => {
    expect(errorText(new Error('broke'))).toBe('Error: broke');
    expect(errorText('plain')).toBe('plain');
    expect(errorText({ code: 'E_FEED', status: 502 })).toBe("{ code: 'E_FEED', status: 502 }");
    expect(errorText(Object.assign(Object.create(null), { reason: 'parsed' }))).toBe(
      "[Object: null prototype] { reason: 'parsed' }",
    );
  });
});
