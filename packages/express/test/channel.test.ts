import { once } from 'node:events';
import http from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { StreamGroup } from '@rxsse/core';
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

describe('express: a channel replay larger than the route queue and the socket buffers', () => {
  it('reaches a client that reads nothing at first whole, at its pace, nothing dropped or closed', async () => {
    // 16 MB of history: more than the kernel takes for a client that reads nothing.
    const engine = memoryEngine({ maxEvents: 20_000, maxBytes: 1 << 25 });
    const chat = createChannel(engine, 'chat', { maxReplay: { events: 20_000, bytes: 1 << 25 } });
    const first = await chat.publish({ data: 'first' });
    let last = first;
    for (let i = 0; i < 16_000; i++) last = await chat.publish({ data: 'x'.repeat(1000) });
    const group = new StreamGroup();
    const closes: string[] = [];
    const app = express();
    app.get(
      '/chat',
      sse((_req, context) => chat.subscribe(context), {
        group,
        heartbeat: false,
        maxQueueBytes: 64 * 1024,
        onClose: (reason) => closes.push(reason),
      }),
    );
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    try {
      socket.pause();
      socket.write(`GET /chat HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${first}\r\n\r\n`);
      await waitFor(() => group.queuedBytes > 0 || closes.length > 0, 10_000, 'the replay to back up');
      expect(closes).toEqual([]);
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        text += chunk;
      });
      socket.resume();
      await waitFor(() => text.includes(`id: ${last}\n`) || closes.length > 0, 20_000, 'the last event');
      expect(text.match(/^id: /gm)).toHaveLength(16_000);
      expect(closes).toEqual([]);
    } finally {
      socket.destroy();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('express: a channel client that resumes with a Last-Event-ID of any length or form', () => {
  const truncated = 'event: history-truncated\ndata: {"lastEventId":null,"reason":"history"}\n\n';

  /** Reads the stream until it holds `wanted`, or ends; what it read, and its headers. */
  async function readTo(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    text: { value: string },
    wanted: string,
  ) {
    const decoder = new TextDecoder();
    while (!text.value.includes(wanted)) {
      const { value, done } = await reader.read();
      if (done) return;
      text.value += decoder.decode(value, { stream: true });
    }
  }

  it('is told history is truncated, naming no id, within a small queue that closes on what it refuses', async () => {
    const chat = createChannel(memoryEngine(), 'chat');
    await chat.publish({ data: 'before' });
    const seen: (string | undefined)[] = [];
    const closes: { reason: string; refused: number }[] = [];
    const app = express();
    app.get(
      '/chat',
      sse(
        (_req, context) => {
          seen.push(
            context.lastEventId && `${context.lastEventId.slice(0, 8)}…${context.lastEventId.length}`,
          );
          return chat.subscribe(context);
        },
        {
          heartbeat: false,
          maxQueueBytes: 4096,
          onInvalidMessage: 'close',
          onClose: (reason, stats) => closes.push({ reason, refused: stats.refused }),
        },
      ),
    );
    // An app that takes large headers: a 1 MB Last-Event-ID reaches the route.
    const server = http.createServer({ maxHeaderSize: 2 << 20 }, app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/chat`;
    const long = 'x'.repeat(1 << 20);
    const odd = encodeURIComponent(`5-1\0\r\n${'y'.repeat(10_000)}`);
    const requests: [string, Record<string, string>][] = [
      [url, { 'last-event-id': long }],
      [`${url}?lastEventId=${odd}`, {}],
      // Bytes that are no UTF-8, as a header carries them.
      [url, { 'last-event-id': `\u00ff\u00fe${'z'.repeat(10_000)}` }],
      // An empty header is no id: the query's is taken.
      [`${url}?lastEventId=${odd}`, { 'last-event-id': '' }],
    ];
    try {
      for (const [at, headers] of requests) {
        const abort = new AbortController();
        const response = await fetch(at, { headers, signal: abort.signal });
        expect(response.headers.get('sse-history-truncated')).toBe('true');
        const reader = response.body!.getReader();
        const text = { value: '' };
        await readTo(reader, text, truncated);
        const id = await chat.publish({ data: 'live' });
        await readTo(reader, text, `id: ${id}\ndata: live\n\n`);
        expect(text.value).toBe(`${truncated}id: ${id}\ndata: live\n\n`);
        abort.abort();
      }
      await waitFor(() => closes.length === requests.length, 5000, 'the streams to close');
      expect(seen).toEqual([
        'xxxxxxxx…1048576',
        '5-1\0\r\nyy…10006',
        '\u00ff\u00fezzzzzz…10002',
        '5-1\0\r\nyy…10006',
      ]);
      expect(closes).toEqual(requests.map(() => ({ reason: 'client', refused: 0 })));
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
