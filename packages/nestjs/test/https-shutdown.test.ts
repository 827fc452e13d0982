import 'reflect-metadata';
import { once } from 'node:events';
import { type AddressInfo, connect as connectTcp, type Server } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { NEVER } from 'rxjs';
import { describe, it, onTestFinished, vi } from 'vitest';
import { RawClient, waitForReal } from '../../../test/support/clients.js';
import { selfSignedCertificate } from '../../../test/support/tls.js';
import { RxSse, RxsseModule } from '../src/index.js';
import { nestMajor } from './harness.js';

const deadline = 60_000;

@Controller()
class NeverController {
  @RxSse('sse')
  sse() {
    return NEVER;
  }
}

@Module({
  imports: [RxsseModule.forRoot({ shutdown: { deadline } })],
  controllers: [NeverController],
})
class AppModule {}

describe.each(['express', 'fastify'] as const)(
  `nestjs ${nestMajor} on %s over HTTPS: app.close()`,
  (platform) => {
    it('drops at its deadline a connection whose TLS handshake ended after the unused ones were dropped', async () => {
      const httpsOptions = await selfSignedCertificate();
      const app =
        platform === 'express'
          ? await NestFactory.create(AppModule, new ExpressAdapter(), { httpsOptions, logger: false })
          : await NestFactory.create(
              AppModule,
              // Avvio times the close's hooks with a setTimeout too: the fake clock's jump would fire it.
              new FastifyAdapter({ https: httpsOptions, pluginTimeout: 0 } as never),
              { logger: false },
            );
      await app.listen(0, '127.0.0.1');
      const server = app.getHttpServer() as Server;
      const { port } = server.address() as AddressInfo;
      const secured = once(server, 'secureConnection');
      const unused = new RawClient(
        connectTls({ host: '127.0.0.1', port, rejectUnauthorized: false }) as TLSSocket,
        true,
      );
      await secured;
      // Accepted before the close, its handshake not begun yet.
      const accepted = once(server, 'connection');
      const late = new RawClient(connectTcp(port, '127.0.0.1'), true);
      await accepted;
      onTestFinished(() => {
        unused.destroy();
        late.destroy();
      });
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      onTestFinished(() => {
        vi.useRealTimers();
      });
      let closed = false;
      void app.close().then(() => {
        closed = true;
      });
      await waitForReal(() => unused.closed, 5000, 'the unused connection to be dropped');
      // Its handshake ends now, after Node's close() began, and it sends nothing: Node times out neither.
      const lateSecured = once(server, 'secureConnection');
      const tls = connectTls({ socket: late.socket, rejectUnauthorized: false });
      tls.on('error', () => {});
      await lateSecured;
      vi.advanceTimersByTime(deadline + 10);
      await waitForReal(() => closed, 5000, 'app.close() to complete');
      // The server's side of it closed; the client hears of it a moment later.
      await waitForReal(() => late.closed, 5000, 'the late connection to be dropped');
    });
  },
);
