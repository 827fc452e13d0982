import 'reflect-metadata';
import type { ServerResponse } from 'node:http';
import {
  type CallHandler,
  Controller,
  type ExecutionContext,
  Injectable,
  Module,
  type NestInterceptor,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type Type,
  UseInterceptors,
} from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { MessageEvent } from '@rxsse/core';
import { type ChannelEngine, createChannel, memoryEngine } from '@rxsse/core/channel';
import { type Observable, Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { type RawClient, rawClient, waitFor } from '../../../test/support/clients.js';
import { LastEventId, RxSse, RxSseSignal, RxsseModule } from '../src/index.js';
import { nestMajor, type Platform, startNest } from './harness.js';

/** What the routes read, and what a provider of the app releases when it closes. */
interface Resources {
  events: Subject<MessageEvent>;
  failing: Subject<MessageEvent>;
  engine: ChannelEngine;
}

function release({ events, failing, engine }: Resources, log: string[], hook: string): Promise<void> {
  log.push(hook);
  events.complete();
  // As a client that fails its subscribers when it disconnects.
  failing.error(new Error('connection closed'));
  return engine.close();
}

/**
 * An app streaming a Subject, one that fails, and a memory channel, whose provider releases them in
 * its `hook`; `log` gets the hook's name when it runs, and each stream's close reason.
 */
function appReleasingIn(hook: 'onModuleDestroy' | 'onApplicationShutdown', log: string[]): Type {
  const resources: Resources = { events: new Subject(), failing: new Subject(), engine: memoryEngine() };
  const chat = createChannel(resources.engine, 'chat');

  @Injectable()
  class Releases implements OnModuleDestroy, OnApplicationShutdown {
    onModuleDestroy(): Promise<void> | undefined {
      return hook === 'onModuleDestroy' ? release(resources, log, hook) : undefined;
    }
    onApplicationShutdown(): Promise<void> | undefined {
      return hook === 'onApplicationShutdown' ? release(resources, log, hook) : undefined;
    }
  }

  @Controller()
  class Feeds {
    @RxSse('events')
    events() {
      return resources.events;
    }
    @RxSse('failing')
    failing() {
      return resources.failing;
    }
    @RxSse('chat')
    chat(@LastEventId() lastEventId: string | undefined, @RxSseSignal() signal: AbortSignal) {
      return chat.subscribe({ lastEventId, signal });
    }
  }

  @Module({
    imports: [RxsseModule.forRoot({ shutdown: { retry: 1000 }, onClose: (reason) => log.push(reason) })],
    controllers: [Feeds],
    providers: [Releases],
  })
  class AppModule {}
  return AppModule;
}

/** Opens the three streams, closes the app, and returns what each client received. */
async function closeWithOpenStreams(
  module: Type,
  platform: Platform | ExpressAdapter | FastifyAdapter,
  logged: string[],
): Promise<{ texts: string[]; closing: Promise<void> }> {
  const app = await startNest(module, platform, logged);
  let clients: RawClient[] = [];
  try {
    clients = await Promise.all(
      ['events', 'failing', 'chat'].map((path) => rawClient(`${app.url}/${path}`, { read: true })),
    );
    await waitFor(() => clients.every((client) => client.text.includes('\r\n\r\n')), 5000, 'the streams');
    const closing = app.app.close();
    await waitFor(() => clients.every((client) => client.closed), 5000, 'the streams to end');
    return { texts: clients.map((client) => client.text), closing };
  } catch (error) {
    for (const client of clients) client.destroy();
    await app.close();
    throw error;
  }
}

/** The platform's adapter, whose own `beforeClose` logs `adapter` before it does its part. */
function adapterLoggingBeforeClose(platform: Platform, log: string[]): ExpressAdapter | FastifyAdapter {
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  const own = adapter.beforeClose.bind(adapter);
  adapter.beforeClose = () => {
    log.push('adapter');
    own();
  };
  return adapter;
}

describe.each<Platform>(['express', 'fastify'])(
  `nestjs ${nestMajor} on %s: a provider that releases what the streams read when the app closes`,
  (platform) => {
    if (nestMajor === '11') {
      // NestJS 11 calls onModuleDestroy before any step a module can hook into: the README says so.
      it('in onModuleDestroy, ends the streams first on NestJS 11: completed or failed, with no retry hint', async () => {
        const log: string[] = [];
        const logged: string[] = [];
        const { texts, closing } = await closeWithOpenStreams(
          appReleasingIn('onModuleDestroy', log),
          platform,
          logged,
        );
        await closing;
        for (const text of texts) expect(text).not.toContain('retry:');
        expect([log[0], ...log.slice(1).sort()]).toEqual([
          'onModuleDestroy',
          'complete',
          'complete',
          'error',
        ]);
        expect(logged).toEqual([expect.stringContaining('connection closed')]);
      });
    } else {
      it("in onModuleDestroy, still ends each stream as a shutdown with the retry hint, after the adapter's own beforeClose", async () => {
        const log: string[] = [];
        const logged: string[] = [];
        const { texts, closing } = await closeWithOpenStreams(
          appReleasingIn('onModuleDestroy', log),
          adapterLoggingBeforeClose(platform, log),
          logged,
        );
        await closing;
        for (const text of texts) expect(text).toContain('retry: 1000\n\n');
        expect(log).toEqual(['adapter', 'shutdown', 'shutdown', 'shutdown', 'onModuleDestroy']);
        expect(logged).toEqual([]);
      });

      it('calls onModuleDestroy only once a stream still flushing to a client that reads nothing was dropped', async () => {
        const logged: string[] = [];
        const events = new Subject<MessageEvent>();
        let response: ServerResponse | undefined;
        const seen: string[] = [];
        @Injectable()
        class KeepsTheResponse implements NestInterceptor {
          intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
            const res = context.switchToHttp().getResponse();
            response = res.raw ?? res;
            return next.handle();
          }
        }
        @Injectable()
        class Releases implements OnModuleDestroy {
          onModuleDestroy(): void {
            seen.push(response!.destroyed ? 'dropped' : 'still flushing');
            events.complete();
          }
        }
        @Controller()
        class Feed {
          @RxSse('feed')
          @UseInterceptors(KeepsTheResponse)
          feed(): Observable<MessageEvent> {
            return events;
          }
        }
        // The close waits for the stream's flush until the deadline, then drops its connection.
        @Module({
          imports: [RxsseModule.forRoot({ shutdown: { deadline: 200 } })],
          controllers: [Feed],
          providers: [Releases],
        })
        class AppModule {}
        const server = await startNest(AppModule, platform, logged);
        const client = await rawClient(`${server.url}/feed`, { read: false });
        let closing: Promise<void> | undefined;
        try {
          await waitFor(() => events.observed, 5000, 'the stream');
          // Until the response holds bytes the socket would not take: the client reads nothing.
          const event = { data: 'x'.repeat(64 * 1024) };
          for (let sent = 0; response!.writableLength === 0; sent++) {
            if (sent === 1000) throw new Error('the socket took 64 MB without the client reading');
            events.next(event);
            await new Promise((resolve) => setImmediate(resolve));
          }
          closing = server.close();
          await closing;
        } finally {
          client.destroy();
          await (closing ?? server.close());
        }
        expect(seen).toEqual(['dropped']);
        expect(logged).toEqual([]);
      });
    }

    it('in onApplicationShutdown, as the README says, ends each stream as a shutdown with the retry hint on every NestJS', async () => {
      const log: string[] = [];
      const logged: string[] = [];
      const { texts, closing } = await closeWithOpenStreams(
        appReleasingIn('onApplicationShutdown', log),
        platform,
        logged,
      );
      await closing;
      for (const text of texts) expect(text).toContain('retry: 1000\n\n');
      expect(log).toEqual(['shutdown', 'shutdown', 'shutdown', 'onApplicationShutdown']);
      expect(logged).toEqual([]);
    });
  },
);
