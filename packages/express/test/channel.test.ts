import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ChannelEngine, createChannel, memoryEngine } from '@rxsse/core/channel';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/clients.js';
import { sse } from '../src/index.js';

/** A memory engine whose history reads after the first wait until released, counting what it does. */
function slowEngine() {
  const inner = memoryEngine({ maxEvents: 5000, maxBytes: 1 << 24 });
  let reads = 0;
  let listening = 0;
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const engine: ChannelEngine = {
    ...inner,
    async read(topic, afterId, limit) {
      reads++;
      if (reads > 1) await released;
      return inner.read(topic, afterId, limit);
    },
    async listen(topic, listener) {
      const unlisten = await inner.listen(topic, listener);
      listening++;
      return () => {
        listening--;
        unlisten();
      };
    },
  };
  return {
    engine,
    release,
    get reads() {
      return reads;
    },
    get listening() {
      return listening;
    },
  };
}

describe('express: a channel whose client leaves while its history is read', () => {
  it('releases its live listener at once, reads no more pages, counts no replay, and closes as the client left', async () => {
    const slow = slowEngine();
    const outcomes: string[] = [];
    const chat = createChannel(slow.engine, 'chat', {
      maxReplay: { events: 2000, bytes: 1 << 24 },
      onReplay: (outcome) => outcomes.push(outcome),
    });
    const first = await chat.publish({ data: 'first' });
    // Three pages (of 500 events) after the client's id.
    for (let i = 0; i < 1200; i++) await chat.publish({ data: `event ${i}` });
    const closes: string[] = [];
    const app = express();
    app.get(
      '/chat',
      sse((_req, context) => chat.subscribe(context), { onClose: (reason) => closes.push(reason) }),
    );
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const request = http.get({
        port,
        host: '127.0.0.1',
        path: '/chat',
        headers: { 'last-event-id': first },
      });
      request.on('error', () => {});
      await waitFor(() => slow.reads === 2 && slow.listening === 1, 5000, 'the second page read');
      request.destroy();
      await waitFor(() => closes.length === 1, 2000, 'the stream to close');
      expect(closes).toEqual(['client']);
      expect(slow.listening).toBe(0);
      // The page the engine answers late is the last one it is asked for.
      slow.release();
      await new Promise((resolve) => setImmediate(resolve));
      expect(slow.reads).toBe(2);
      expect(outcomes).toEqual([]);
    } finally {
      slow.release();
      server.closeAllConnections();
      server.close();
    }
  });
});
