// rxsse on NestJS, @nestjs/platform-fastify: `@RxSse()` in place of `@Sse()`, and RxsseModule.
import { serveNest } from './nest-app.mjs';

await serveNest({ platform: 'fastify', rxsse: true });
