import 'reflect-metadata';
import type { Server } from 'node:net';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { NEVER } from 'rxjs';
import { describe, it } from 'vitest';
import { expectCloseDropsLateHandshake } from '../../../test/support/app-lifecycle.js';
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
      await expectCloseDropsLateHandshake(app.getHttpServer() as Server, () => app.close(), deadline);
    });
  },
);
