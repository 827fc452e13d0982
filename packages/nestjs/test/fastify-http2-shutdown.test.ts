import 'reflect-metadata';
import type { Http2Session } from 'node:http2';
import type { AddressInfo, Server } from 'node:net';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { StreamGroup } from '@rxsse/core';
import { concat, map, NEVER, range } from 'rxjs';
import { describe, it } from 'vitest';
import { waitFor } from '../../../test/support/clients.js';
import { expectCloseWithinDeadline, stalledStream } from '../../../test/support/http2-clients.js';
import { RxSse, RxsseModule } from '../src/index.js';
import { nestMajor } from './harness.js';

const group = new StreamGroup();
const deadline = 60_000;

@Controller()
class FloodController {
  // Far more than the socket and the stream's window take: the rest waits in the queue.
  @RxSse('sse', { maxQueueBytes: 64 * 1024 * 1024 })
  sse() {
    return concat(range(0, 64).pipe(map(() => ({ data: 'x'.repeat(64 * 1024) }))), NEVER);
  }
}

@Module({
  imports: [RxsseModule.forRoot({ group, heartbeat: false, stallTimeout: false, shutdown: { deadline } })],
  controllers: [FloodController],
})
class AppModule {}

describe(`nestjs ${nestMajor} on fastify over HTTP/2 (h2c): app.close() and its deadline`, () => {
  it('completes within the deadline, the cut of a session that reads nothing included', async () => {
    // Avvio times the close's hooks with a setTimeout too: the fake clock's jump would fire it.
    const adapter = new FastifyAdapter({ http2: true, pluginTimeout: 0 } as never);
    const app = await NestFactory.create(AppModule, adapter, { logger: false });
    const server = app.getHttpServer() as Server;
    const sessions: Http2Session[] = [];
    server.on('session', (session: Http2Session) => sessions.push(session));
    await app.listen(0, '127.0.0.1');
    await stalledStream((server.address() as AddressInfo).port, 'http');
    await waitFor(() => group.queuedBytes > 0, 10_000, 'bytes queued for the client');
    await expectCloseWithinDeadline(
      () => app.close(),
      () => group.closing,
      sessions,
      deadline,
    );
  });
});
