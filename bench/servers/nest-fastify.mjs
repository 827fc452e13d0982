// NestJS `@Sse()` on @nestjs/platform-fastify.
import { serveNest } from './nest-app.mjs';

await serveNest({ platform: 'fastify', rxsse: false });
