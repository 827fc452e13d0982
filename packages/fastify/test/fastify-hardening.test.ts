import Fastify from 'fastify';
import { NEVER } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { fastifyLogStream } from '../../../test/support/logged.js';
import { rxsse } from '../src/index.js';

describe('fastify reply.sse', () => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  afterEach(() => {
    expect(rejections).toEqual([]);
  });

  it('answers a producer that throws with a 500, even when the route neither returns nor awaits it', async () => {
    const logged: string[] = [];
    const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
    await app.register(rxsse);
    app.get('/sse', (_req, reply) => {
      void reply.sse(() => {
        throw new Error('not authorized');
      });
    });
    const response = await app.inject('/sse');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(response.statusCode).toBe(500);
    expect(logged.join('\n')).toContain('not authorized');
    await app.close();
  });

  it('answers per-call options out of range with a 500, even when the route neither returns nor awaits it', async () => {
    const logged: string[] = [];
    const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
    await app.register(rxsse);
    app.get('/sse', (_req, reply) => {
      void reply.sse(NEVER, { maxLifetime: 2 ** 31 });
    });
    const response = await app.inject('/sse');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(response.statusCode).toBe(500);
    expect(logged.join('\n')).toContain('maxLifetime');
    await app.close();
  });

  it('checks the plugin options when it is registered', async () => {
    const app = Fastify();
    await expect(app.register(rxsse, { maxLifetime: 2 ** 31 })).rejects.toThrow(/maxLifetime/);
    const other = Fastify();
    await expect(other.register(rxsse, { shutdown: { spread: -1 } })).rejects.toThrow(/spread/);
  });
});
