// NestJS serving the stream suite's routes: `nest.mjs express|fastify sse|rxsse`, the platform, and
// Nest's own `@Sse()` or rxsse's `@RxSse()` with RxsseModule (the one-word migration). Plain JS has
// no decorator syntax here, so the decorators are applied by hand, as TypeScript's emitted code would.

import 'reflect-metadata';
import { Controller, Module, Query, Sse } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BURST_OPTIONS, burstSource, fanout, serve, stallSource } from './common.mjs';

const [platform, flavour] = process.argv.slice(2);

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
if (flavour === 'rxsse') {
  const { RxSse, RxsseModule } = await import('@rxsse/nestjs');
  decorate('burst', RxSse('burst', BURST_OPTIONS));
  decorate('fanout', RxSse('fanout'));
  decorate('stall', RxSse('stall'));
  imports.push(RxsseModule.forRoot());
} else {
  // Nest drops a client once 4M characters wait for it (maxPendingDataLength); like rxsse's, the
  // burst route raises its cap above the burst. The stall route keeps the default.
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
