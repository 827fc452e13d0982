// NestJS `@Sse()` on @nestjs/platform-express.
import { serveNest } from './nest-app.mjs';

await serveNest({ platform: 'express', rxsse: false });
