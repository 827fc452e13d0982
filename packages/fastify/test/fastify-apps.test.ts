import { once } from 'node:events';
import type { MessageEvent } from '@rxsse/core';
import Fastify from 'fastify';
import { concat, NEVER, of, Subject, startWith } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { httpRequest, type RawClient, rawClient, waitFor } from '../../../test/support/clients.js';
import { fastifyLogStream } from '../../../test/support/logged.js';
import { rxsse } from '../src/index.js';

describe('fastify reply.sse() in the app', () => {
  it("closing one app ends its own streams and leaves another app's open", async () => {
    const events = new Subject<MessageEvent>();
    const logged: string[] = [];
    const start = async () => {
      const app = Fastify({ logger: { level: 'error', stream: fastifyLogStream(logged) } });
      await app.register(rxsse);
      app.get('/feed', (_req, reply) => reply.sse(events));
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      return { app, url: url.replace('localhost', '127.0.0.1') };
    };
    const first = await start();
    const second = await start();
    try {
      const [leaving, staying] = await Promise.all([
        rawClient(`${first.url}/feed`, { read: true }),
        rawClient(`${second.url}/feed`, { read: true }),
      ]);
      await waitFor(() => events.observers.length === 2, 5000, 'both subscriptions');
      await first.app.close();
      await leaving.done;
      events.next({ data: 'still here' });
      await waitFor(() => staying.text.includes('data: still here\n\n'), 5000, "the other app's event");
      expect(staying.closed).toBe(false);
      staying.destroy();
    } finally {
      await second.app.close();
    }
    expect(logged).toEqual([]);
  });

  it("keeps a stream open past the route's handlerTimeout, which is for replies Fastify sends", async () => {
    const events = new Subject<MessageEvent>();
    const logged: string[] = [];
    const app = Fastify({
      handlerTimeout: 1000,
      logger: { level: 'error', stream: fastifyLogStream(logged) },
    });
    await app.register(rxsse);
    app.get('/feed', (_req, reply) => reply.sse(events.pipe(startWith({ data: 'first' }))));
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      // Fastify arms the handler's timer when the request arrives: fake time from before it.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const client = await rawClient(`${url}/feed`, { read: true });
      try {
        while (!client.text.includes('data: first\n\n')) await once(client.socket, 'data');
        vi.advanceTimersByTime(5000);
      } finally {
        vi.useRealTimers();
      }
      events.next({ data: 'later' });
      await waitFor(() => client.text.includes('data: later\n\n') || client.closed, 5000, 'the later event');
      expect(client.closed).toBe(false);
      expect(client.text).not.toContain('FST_ERR');
      client.destroy();
    } finally {
      await app.close();
    }
    expect(logged).toEqual([]);
  });

  it('turns away a stream request that comes once the streams ended, while the app still closes', async () => {
    const app = Fastify({ return503OnClosing: false });
    await app.register(rxsse, { shutdown: { retry: 5000 } });
    app.get('/feed', (_req, reply) => reply.sse(concat(of({ data: 'hi' }), NEVER)));
    let client: RawClient | undefined;
    let answer = '';
    // Registered after the plugin, so it runs once the plugin's hook ended the streams.
    app.addHook('preClose', async () => {
      const kept = client!;
      await waitFor(() => kept.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the first stream');
      const before = kept.text.length;
      kept.socket.write(httpRequest('GET', '/feed'));
      await waitFor(() => kept.closed || kept.text.slice(before).includes('data: hi'), 5000, 'the answer');
      answer = kept.text.slice(before);
      kept.destroy();
    });
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    client = await rawClient(`${url}/feed`, { read: true });
    await waitFor(() => client!.text.includes('data: hi'), 5000, 'the stream');
    await app.close();
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(answer).toContain('retry: 5000');
    expect(answer).not.toContain('data: hi');
  });
});
