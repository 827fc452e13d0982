// A NestJS app serving the stream suite's routes, on platform-express or platform-fastify, with
// Nest's own `@Sse()` or with rxsse's `@RxSse()` (the one-word migration). Plain JS has no decorator
// syntax here, so the decorators are applied by hand, exactly as TypeScript's emitted code would.

import 'reflect-metadata';
import { Controller, Module, Query, Sse } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { burstSource, fanout, serve, stallSource } from './common.mjs';
import { BURST_OPTIONS } from './rxsse-options.mjs';

/** @param {{ platform: 'express' | 'fastify', rxsse: boolean }} options */
export async function serveNest({ platform, rxsse }) {
  class EventsController {
    burst(query) {
      return burstSource(Number(query.n));
    }
    fanout() {
      return fanout;
    }
    stall(query) {
      return stallSource(Number(query.n));
    }
  }
  const proto = EventsController.prototype;
  const decorate = (key, decorator) => {
    const descriptor = Object.getOwnPropertyDescriptor(proto, key);
    Object.defineProperty(proto, key, decorator(proto, key, descriptor) ?? descriptor);
  };
  Query()(proto, 'burst', 0);
  Query()(proto, 'stall', 0);
  const imports = [];
  if (rxsse) {
    const { RxSse, RxsseModule } = await import('@rxsse/nestjs');
    decorate('burst', RxSse('burst', BURST_OPTIONS));
    decorate('fanout', RxSse('fanout'));
    decorate('stall', RxSse('stall'));
    imports.push(RxsseModule.forRoot());
  } else {
    // Nest drops a client once 4M characters wait for it (maxPendingDataLength); like rxsse's burst
    // route, the burst route raises it above the burst. The stall route keeps the default.
    decorate('burst', Sse('burst', { maxPendingDataLength: 64 * 1024 * 1024 }));
    decorate('fanout', Sse('fanout'));
    decorate('stall', Sse('stall'));
  }
  Controller()(EventsController);
  class AppModule {}
  Module({ imports, controllers: [EventsController] })(AppModule);

  const adapter =
    platform === 'fastify'
      ? new (await import('@nestjs/platform-fastify')).FastifyAdapter()
      : new (await import('@nestjs/platform-express')).ExpressAdapter();
  const app = await NestFactory.create(AppModule, adapter, { logger: false });
  await app.listen(0, '127.0.0.1');
  serve({ server: app.getHttpServer() });
}
