import Fastify from 'fastify';
import { of } from 'rxjs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { rxsse } from '../src/index.js';

describe('reply.sse() types', () => {
  it('resolves to nothing, as it does: a hijacked reply is no value to use', async () => {
    const app = Fastify();
    await app.register(rxsse);
    let resolved: unknown = 'not yet';
    app.get('/sse', async (_req, reply) => {
      const result = reply.sse(of({ data: 'x' }));
      expectTypeOf(result).toEqualTypeOf<Promise<void>>();
      resolved = await result;
    });
    await app.inject('/sse');
    await app.close();
    expect(resolved).toBeUndefined();
  });
});
