// rxsse with NestJS: `node server.mjs` serves http://127.0.0.1:3004/ (PORT overrides).
// NestJS's SSE sample (sample/28-sse) with `@Sse('sse')` changed to `@RxSse('sse')`. Plain
// JavaScript has no decorator syntax, so the decorators are applied as TypeScript would apply them.
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { Controller, Get, Header, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { LastEventId, RxSse, RxsseModule } from '@rxsse/nestjs';
import { interval, map } from 'rxjs';
import { firstEventNumber, isMain, runMain, serverUrl } from '../shared.mjs';

export const DEFAULT_PORT = 3004;

const indexHtml = readFileSync(new URL('./index.html', import.meta.url), 'utf8');

class AppController {
  index() {
    return indexHtml;
  }

  // One event a second, each with an id: a reconnecting EventSource resumes after the last it saw.
  sse(lastEventId) {
    const first = firstEventNumber(lastEventId);
    return interval(1000).pipe(map((i) => ({ id: String(first + i), data: { hello: 'world' } })));
  }
}

const decorate = (key, ...decorators) => {
  const proto = AppController.prototype;
  let descriptor = Object.getOwnPropertyDescriptor(proto, key);
  for (const decorator of decorators.reverse()) descriptor = decorator(proto, key, descriptor) ?? descriptor;
  Object.defineProperty(proto, key, descriptor);
};
LastEventId()(AppController.prototype, 'sse', 0);
decorate('index', Get(), Header('Content-Type', 'text/html; charset=utf-8'));
decorate('sse', RxSse('sse'));
Controller()(AppController);

class AppModule {}
// app.close() ends open streams, telling clients to come back within 1-3 s.
Module({
  imports: [RxsseModule.forRoot({ shutdown: { retry: 1000, spread: 2000 } })],
  controllers: [AppController],
})(AppModule);

/**
 * Starts the example on 127.0.0.1:`port` (0 picks a free port).
 * @param {number} [port]
 * @returns {Promise<{ url: string; close(): Promise<void> }>}
 */
export async function start(port = DEFAULT_PORT) {
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  await app.listen(port, '127.0.0.1');
  return { url: serverUrl(app.getHttpServer()), close: () => app.close() };
}

if (isMain(import.meta.url)) await runMain(start, DEFAULT_PORT);
