import 'reflect-metadata';
import { Server as TlsServer } from 'node:tls';
import { format } from 'node:util';
import {
  Controller,
  Get,
  Header,
  type INestApplication,
  type LoggerService,
  Module,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { ShutdownOptions } from '@rxsse/core';
import type { AdapterHarness, RunningServer, TestRoute } from '../../../test/support/harness.js';
import { LastEventId, RxSse, RxSseSignal, RxsseModule } from '../src/index.js';

export type Platform = 'express' | 'fastify';

/** The NestJS major the suite runs on: the `nestjs-11` vitest project aliases @nestjs/* to NestJS 11. */
export const nestMajor = process.env.RXSSE_NEST_MAJOR ?? '12';

/** A Nest logger that keeps what is logged at level error or fatal, as the harness's `logged`. */
export function recordingLogger(logged: string[]): LoggerService {
  const keep = (...args: unknown[]) => {
    logged.push(format(...args));
  };
  return { log() {}, warn() {}, debug() {}, verbose() {}, error: keep, fatal: keep };
}

/** Starts `module` on the platform (or on a platform adapter of the test's own) on 127.0.0.1. */
export async function startNest(
  module: Type,
  platform: Platform | ExpressAdapter | FastifyAdapter,
  logged: string[],
  configure?: (app: INestApplication) => void,
): Promise<RunningServer & { app: INestApplication }> {
  const adapter =
    platform === 'express' ? new ExpressAdapter() : platform === 'fastify' ? new FastifyAdapter() : platform;
  const app = await NestFactory.create(module, adapter, { logger: recordingLogger(logged) });
  configure?.(app);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  const scheme = app.getHttpServer() instanceof TlsServer ? 'https' : 'http';
  return { app, url: `${scheme}://127.0.0.1:${port}`, logged, close: () => app.close() };
}

/**
 * A controller with one method per route, decorated as TypeScript would: the test transform
 * cannot, since the routes are only known when a test starts the app.
 */
function controllerOf(routes: TestRoute[]): Type {
  class TestController {}
  const proto = TestController.prototype as unknown as Record<string, unknown>;
  routes.forEach((route, index) => {
    const key = `route${index}`;
    if ('html' in route) {
      proto[key] = () => route.html;
      decorate(proto, key, Get(route.path), Header('Content-Type', 'text/html; charset=utf-8'));
      return;
    }
    proto[key] = (lastEventId: string | undefined, signal: AbortSignal) =>
      route.events({ lastEventId, signal });
    LastEventId()(proto, key, 0);
    RxSseSignal()(proto, key, 1);
    decorate(proto, key, RxSse(route.path, { ...route.options, method: route.method ?? 'GET' }));
  });
  Controller()(TestController);
  return TestController;
}

function decorate(proto: object, key: string, ...decorators: MethodDecorator[]): void {
  let descriptor = Object.getOwnPropertyDescriptor(proto, key) as PropertyDescriptor;
  for (const decorator of decorators.reverse()) descriptor = decorator(proto, key, descriptor) ?? descriptor;
  Object.defineProperty(proto, key, descriptor);
}

/** An app module with `RxsseModule` and a controller serving `routes`. */
export function appModuleOf(routes: TestRoute[], shutdown?: ShutdownOptions): Type {
  class AppModule {}
  Module({ imports: [RxsseModule.forRoot({ shutdown })], controllers: [controllerOf(routes)] })(AppModule);
  return AppModule;
}

/** The shared suites' harness: a Nest app on one platform with `RxsseModule` and the routes. */
export function nestHarness(platform: Platform): AdapterHarness {
  return {
    name: `nestjs ${nestMajor} on ${platform}`,
    start: (routes, shutdown) => startNest(appModuleOf(routes, shutdown), platform, []),
  };
}
