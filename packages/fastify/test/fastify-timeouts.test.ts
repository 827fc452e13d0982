import type { StreamOptions } from '@rxsse/core';
import Fastify from 'fastify';
import { NEVER } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { rawClient, waitFor } from '../../../test/support/clients.js';
import { fastifyLogStream } from '../../../test/support/logged.js';
import { neverYielding, recording } from '../../../test/support/recording.js';
import { rxsse } from '../src/index.js';

describe("fastify reply.sse() and Fastify's handlerTimeout", () => {
  it('counts no stream, and subscribes no source, when handlerTimeout answered before the producer settled', async () => {
    const logged: string[] = [];
    const { options, closes } = recording();
    const app = Fastify({ handlerTimeout: 1, logger: { level: 'error', stream: fastifyLogStream(logged) } });
    await app.register(rxsse, options);
    let resolveSource!: () => void;
    const producing = new Promise<void>((resolve) => (resolveSource = resolve));
    let subscribed = 0;
    const held = neverYielding();
    const settled: Promise<unknown>[] = [];
    app.get('/observable', (_req, reply) => {
      const streaming = reply.sse(async () => {
        await producing;
        return {
          subscribe: () => {
            subscribed++;
            return { unsubscribe() {} };
          },
        } as never;
      });
      settled.push(streaming);
      return streaming;
    });
    app.get('/iterator', (_req, reply) => {
      const streaming = reply.sse(async () => {
        await producing;
        return held.iterator as never;
      });
      settled.push(streaming);
      return streaming;
    });
    // A producer that gave its own signal to a fetch fails with its abort once Fastify answered.
    app.get('/signal', (_req, reply) => {
      const streaming = reply.sse(
        ({ signal }) =>
          new Promise<never>((_resolve, reject) =>
            signal.addEventListener('abort', () => reject(signal.reason)),
          ),
      );
      settled.push(streaming);
      return streaming;
    });
    // A failure of the producer's own after the timeout is still logged.
    app.get('/failing', (_req, reply) => {
      const streaming = reply.sse(async () => {
        await producing;
        throw new Error('the database is down');
      });
      settled.push(streaming);
      return streaming;
    });
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      for (const path of ['/observable', '/iterator', '/signal', '/failing']) {
        const response = await fetch(`${url}${path}`);
        await response.arrayBuffer();
        expect(response.status).toBe(503);
      }
      resolveSource();
      await waitFor(() => settled.length === 4, 5000, 'the four routes');
      await Promise.all(settled);
      await waitFor(held.returned, 5000, 'the iterator returned');
      expect(subscribed).toBe(0);
      expect(closes.map(({ reason }) => reason)).toEqual([]);
      // Fastify logged its own timeout once a request; rxsse adds only the producer's own failure.
      const ours = logged.filter((line) => line.includes('rxsse'));
      expect(ours).toHaveLength(1);
      expect(ours[0]).toContain('the database is down');
    } finally {
      await app.close();
    }
  });

  it('runs no producer and counts no stream when the route calls reply.sse() once handlerTimeout answered', async () => {
    const logged: string[] = [];
    const { options, closes } = recording();
    const app = Fastify({ handlerTimeout: 1, logger: { level: 'error', stream: fastifyLogStream(logged) } });
    await app.register(rxsse, options);
    let release!: () => void;
    const late = new Promise<void>((resolve) => (release = resolve));
    let produced = 0;
    let streaming: Promise<void> | undefined;
    app.get('/sse', async (_req, reply) => {
      await late;
      streaming = reply.sse(() => {
        produced++;
        return NEVER;
      });
      return streaming;
    });
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      const response = await fetch(`${url}/sse`);
      await response.arrayBuffer();
      expect(response.status).toBe(503);
      release();
      await waitFor(() => streaming !== undefined, 5000, 'the route to call reply.sse()');
      await streaming;
      expect(produced).toBe(0);
      expect(closes.map(({ reason }) => reason)).toEqual([]);
      expect(logged.filter((line) => line.includes('rxsse'))).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('leaves the answer standing while an async onSend hook holds it, when the producer settles meanwhile', async () => {
    const logged: string[] = [];
    const { options, closes } = recording();
    const { app, held, release, settle, producing, produce } = await heldTimeoutAnswers(options, logged);
    app.get('/observable', (_req, reply) => reply.sse(produce));
    app.get('/failing', (_req, reply) =>
      reply.sse(async () => {
        await producing;
        throw new Error('the database is down');
      }),
    );
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      const clients = [
        await rawClient(`${url}/observable`, { read: true }),
        await rawClient(`${url}/failing`, { read: true }),
      ];
      await waitFor(() => held.entered === 2, 5000, 'both answers in the onSend hook');
      settle();
      // Once every promise callback the producers' settling queued has run.
      await new Promise((resolve) => setImmediate(resolve));
      release();
      for (const client of clients) {
        await waitFor(() => client.text.endsWith('}') || client.closed, 5000, "Fastify's answer");
        expect(client.text).toMatch(/^HTTP\/1\.1 503 /);
        expect(client.text).not.toContain('text/event-stream');
        client.destroy();
      }
      expect(held.subscribed).toBe(0);
      expect(closes.map(({ reason }) => reason)).toEqual([]);
      expect(logged.filter((line) => !line.includes('timed out'))).toEqual([
        'rxsse: event stream failed Error: the database is down',
      ]);
    } finally {
      await app.close();
    }
  });

  it('settles reply.sse() when its client left while an onSend hook held the answer to the timeout', async () => {
    const { options, closes } = recording();
    const { app, held, release, settle, produce } = await heldTimeoutAnswers(options);
    let closed = false;
    let settled = false;
    app.get('/sse', (_req, reply) => {
      reply.raw.once('close', () => (closed = true));
      const streaming = reply.sse(produce);
      void streaming.then(() => (settled = true));
      return streaming;
    });
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      const client = await rawClient(`${url}/sse`, { read: true });
      await waitFor(() => held.entered === 1, 5000, 'the answer in the onSend hook');
      client.destroy();
      await waitFor(() => closed, 5000, 'the response to close');
      // Closed, never ended: the answer it waited for will never go out.
      settle();
      await waitFor(() => settled, 5000, 'reply.sse() to settle');
      expect(held.subscribed).toBe(0);
      // No answer reached it: counted as any request whose client left while its handler ran.
      expect(closes.map(({ reason }) => reason)).toEqual(['client']);
    } finally {
      release();
      await app.close();
    }
  });

  it("cuts a stream quiet for longer than Fastify's connectionTimeout as a client close: Node drops the socket", async () => {
    const { options, closes } = recording({ heartbeat: false });
    const app = Fastify({ connectionTimeout: 200 });
    await app.register(rxsse, options);
    app.get('/sse', (_req, reply) => reply.sse(NEVER));
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    try {
      const client = await rawClient(`${url}/sse`, { read: true });
      await waitFor(() => closes.length > 0, 5000, 'the stream to close');
      await client.done;
      expect(closes.map(({ reason }) => reason)).toEqual(['client']);
    } finally {
      await app.close();
    }
  });
});

/**
 * An app whose handlerTimeout (1 ms) answers every route, with an onSend hook that holds each
 * answer until `release()` (Fastify writes it only once its onSend hooks ran), and `produce`, a
 * producer that settles at `settle()` with a source counting its subscriptions (`held.subscribed`).
 */
async function heldTimeoutAnswers(options: StreamOptions, logged?: string[]) {
  const logger = logged ? { level: 'warn', stream: fastifyLogStream(logged) } : false;
  const app = Fastify({ handlerTimeout: 1, logger });
  await app.register(rxsse, options);
  const held = { entered: 0, subscribed: 0 };
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  app.addHook('onSend', async (_req, _reply, payload) => {
    held.entered++;
    await released;
    return payload;
  });
  let settle!: () => void;
  const producing = new Promise<void>((resolve) => (settle = resolve));
  const source = {
    subscribe: () => {
      held.subscribed++;
      return { unsubscribe() {} };
    },
  } as never;
  const produce = async () => {
    await producing;
    return source;
  };
  return { app, held, release, settle, producing, produce };
}
