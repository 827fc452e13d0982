import 'reflect-metadata';
import {
  Controller,
  Injectable,
  Module,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type Type,
} from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { MessageEvent } from '@rxsse/core';
import { type ChannelEngine, createChannel, memoryEngine } from '@rxsse/core/channel';
import { Subject } from 'rxjs';
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
