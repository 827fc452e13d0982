// rxsse on NestJS, @nestjs/platform-express: `@RxSse()` in place of `@Sse()`, and RxsseModule.
import { serveNest } from './nest-app.mjs';

await serveNest({ platform: 'express', rxsse: true });
