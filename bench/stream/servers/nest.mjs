// NestJS serving the stream suite's routes: `nest.mjs express|fastify sse|rxsse`, the platform, and
// Nest's own `@Sse()` or rxsse's `@RxSse()` with RxsseModule (the one-word migration). Plain JS has
// no decorator syntax here, so the decorators are applied by hand, as TypeScript's emitted code would.

import 'reflect-metadata';
import { Controller, Module, Query, Sse } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ROUTES, serve } from './common.mjs';

const [platform, flavour] = process.argv.slice(2);

const { RxSse, RxsseModule } = flavour === 'rxsse' ? await import('@rxsse/nestjs') : {};
// Nest drops a client once 4M characters wait for it (maxPendingDataLength); like rxsse's, the burst
// route raises its cap above the burst. The other routes keep the default.
const route = (path, options) =>
  RxSse ? RxSse(path, options) : Sse(path, options && { maxPendingDataLength: options.maxQueueBytes });

class EventsController {}
const proto = EventsController.prototype;
for (const { path, source, options } of ROUTES) {
  const key = path.slice(1);
  proto[key] = (query) => source(Number(query.n));
  Query()(proto, key, 0);
  const descriptor = Object.getOwnPropertyDescriptor(proto, key);
  Object.defineProperty(proto, key, route(key, options)(proto, key, descriptor) ?? descriptor);
}
Controller()(EventsController);
class AppModule {}
Module({ imports: RxsseModule ? [RxsseModule.forRoot()] : [], controllers: [EventsController] })(AppModule);

const adapter =
  platform === 'fastify'
    ? new (await import('@nestjs/platform-fastify')).FastifyAdapter()
    : new (await import('@nestjs/platform-express')).ExpressAdapter();
const app = await NestFactory.create(AppModule, adapter, { logger: false });
await app.listen(0, '127.0.0.1');
serve({ server: app.getHttpServer() });
