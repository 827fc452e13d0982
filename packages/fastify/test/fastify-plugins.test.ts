import compress from '@fastify/compress';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import Fastify from 'fastify';
import { concat, NEVER, of } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/clients.js';
import {
  everyKindOfEvent,
  expectEveryKindOfEvent,
  expectPreflightAnswered,
  expectStreamUncompressed,
  ORIGIN,
} from '../../../test/support/ecosystem.js';
import { metered } from '../../../test/support/recording.js';
import { rxsse } from '../src/index.js';

/**
 * One app with the ecosystem's most used plugins registered globally, as a production app has them,
 * and the stream routes among its other routes.
 */
describe('fastify reply.sse() behind @fastify/compress, helmet, cors and rate-limit', () => {
  const { options, closes, seen } = metered();
  const app = Fastify();
  let url = '';

  beforeAll(async () => {
    await app.register(compress, { global: true, threshold: 0 });
    await app.register(helmet);
    await app.register(cors, { origin: ORIGIN });
    // Keyed by a header, so that only the case that means to passes the limit.
    await app.register(rateLimit, {
      max: (_req, key) => (key === 'limited' ? 2 : 1000),
      timeWindow: '1 minute',
      keyGenerator: (req) => String(req.headers['x-client'] ?? 'anyone'),
    });
    await app.register(rxsse, options);
    app.get('/open', (_req, reply) => reply.sse(concat(of({ data: 'hello' }), NEVER)));
    app.get('/events', (_req, reply) => reply.sse(everyKindOfEvent()));
    app.get('/json', async () => ({ text: 'x'.repeat(2048) }));
    url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
  });
  afterAll(() => app.close());
  // Every case's streams have closed before the next counts its own.
  afterEach(() =>
    waitFor(() => seen.filter((s) => s === 'opened').length === closes.length, 5000, 'the streams to close'),
  );

  it('sends each event at once, uncompressed, while other routes are compressed', async () => {
    const json = await fetch(`${url}/json`, { headers: { 'accept-encoding': 'gzip', 'x-client': 'json' } });
    expect(json.headers.get('content-encoding')).toBe('gzip');
    expect(await json.json()).toEqual({ text: 'x'.repeat(2048) });

    await expectStreamUncompressed(`${url}/open`, seen);
  });

  it("parses exactly in an EventSource, with helmet's and cors' headers on the stream", async () => {
    // A simple GET from another origin.
    const response = await fetch(`${url}/open`, { headers: { origin: ORIGIN } });
    await response.body?.cancel();
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(response.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(response.headers.get('x-ratelimit-limit')).toBe('1000');
    await expectEveryKindOfEvent(`${url}/events`);
  });

  it("answers a CORS preflight with the plugin's 204, never a stream", async () => {
    const before = [...seen];
    await expectPreflightAnswered(`${url}/open`, { 'x-client': 'preflight' });
    expect(seen).toEqual(before);
  });

  it("answers the request over the rate limit with the plugin's 429, never a stream", async () => {
    const before = seen.length;
    const headers = { 'x-client': 'limited' };
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${url}/open`, { headers });
      expect(response.status).toBe(200);
      await response.body?.cancel();
    }
    const refused = await fetch(`${url}/open`, { headers });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toContain('application/json');
    expect(refused.headers.get('retry-after')).not.toBeNull();
    expect(await refused.json()).toMatchObject({ statusCode: 429 });
    await waitFor(() => seen.length === before + 4, 5000, 'the two streams to close');
    // The refused request counts nothing: no stream opened, and no failed one.
    expect(seen.slice(before).sort()).toEqual(['closed:client', 'closed:client', 'opened', 'opened']);
    expect(closes.every((c) => c.reason === 'client')).toBe(true);
  });
});
