// NestJS 11 `@Sse()` on @nestjs/platform-express. Plain JS has no decorator syntax here, so the
// decorators are applied by hand, exactly as TypeScript's emitted code would apply them.

import 'reflect-metadata';
import { Controller, Module, Query, Sse } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { burstSource, fanout, serve, stallSource } from './common.mjs';

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

const decorate = (key, ...decorators) => {
  const proto = EventsController.prototype;
  let descriptor = Object.getOwnPropertyDescriptor(proto, key);
  for (const decorator of decorators.reverse()) descriptor = decorator(proto, key, descriptor) ?? descriptor;
  Object.defineProperty(proto, key, descriptor);
};
Query()(EventsController.prototype, 'burst', 0);
Query()(EventsController.prototype, 'stall', 0);
// Nest drops a client once 4M characters wait for it (maxPendingDataLength); like rxsse's burst
// route, the burst route raises it above the burst. The stall route keeps the default.
decorate('burst', Sse('burst', { maxPendingDataLength: 64 * 1024 * 1024 }));
decorate('fanout', Sse('fanout'));
decorate('stall', Sse('stall'));
Controller()(EventsController);

class AppModule {}
Module({ controllers: [EventsController] })(AppModule);

const app = await NestFactory.create(AppModule, { logger: false });
await app.listen(0, '127.0.0.1');
serve({ server: app.getHttpServer() });
