import { OutgoingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { rawClient, waitFor } from '../../../test/support/clients.js';
import { NodeSink } from '../src/index.js';
import { serve } from './serve.js';

const CHUNK = new Uint8Array(64 * 1024).fill(0x61);
// `Connection: close` so the client sees the end as a closed socket, not a kept-alive one.
const HEADERS = { 'content-type': 'text/event-stream', connection: 'close' };

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * Opens `sink`, ends it at its first drain (after telling `drained`), and writes `chunk` until it
 * reports full: at most 64 MiB, far more than the kernel buffers for one socket.
 */
function fillUntilFull(sink: NodeSink, chunk: Uint8Array, drained: () => void) {
  sink.open(HEADERS);
  sink.onDrain(() => {
    drained();
    sink.end();
  });
  let written = 0;
  let ok = true;
  while (ok && written * chunk.length < 64 * 1024 * 1024) {
    ok = sink.write(chunk);
    written++;
  }
  return { ok, written };
}

describe('NodeSink over node:http', () => {
  it('sends a write that fills the buffer at once, instead of holding it to the next tick', async () => {
    let seen: { writes: boolean[]; buffered: number; corked: number } | undefined;
    const { url } = await serve((req, res) => {
      const sink = new NodeSink(req, res);
      sink.open(HEADERS);
      const writes = [sink.write(CHUNK), sink.write(CHUNK)];
      seen = { writes, buffered: res.socket!.writableLength, corked: res.socket!.writableCorked };
      sink.end();
    });
    const client = await rawClient(url, { read: true });
    await client.done;
    // Both chunks went to the kernel within the tick, so the transport still has room.
    expect(seen).toEqual({ writes: [true, true], buffered: 0, corked: 0 });
    expect(client.text.split('a'.repeat(64 * 1024)).length - 1).toBe(2);
  });

  it('reports full once the client stops taking bytes, and drains when it reads again', async () => {
    let result: { ok: boolean; written: number; buffered: number; mark: number } | undefined;
    let drained = false;
    const { url } = await serve((req, res) => {
      const { ok, written } = fillUntilFull(new NodeSink(req, res), CHUNK, () => {
        drained = true;
      });
      const { writableLength, writableHighWaterMark } = res.socket!;
      result = { ok, written, buffered: writableLength, mark: writableHighWaterMark };
    });
    const client = await rawClient(url, { read: false });
    await waitFor(() => result !== undefined, 5_000, 'the writes');
    expect(result!.ok).toBe(false);
    expect(result!.written).toBeLessThan(1024);
    expect(result!.buffered).toBeGreaterThanOrEqual(result!.mark);
    expect(drained).toBe(false);
    client.resume();
    await client.done;
    expect(drained).toBe(true);
    expect(client.text.length).toBeGreaterThan(result!.written * CHUNK.length);
  });

  it('leaves a replaced write, such as compression, to its own backpressure', async () => {
    let seen: { ok: boolean; corked: number } | undefined;
    const { url } = await serve((req, res) => {
      const write = res.write.bind(res) as (chunk: Uint8Array) => boolean;
      // Like a compressing middleware whose buffer is full: it says so whatever the socket holds.
      res.write = ((chunk: Uint8Array) => {
        write(chunk);
        return false;
      }) as typeof res.write;
      const sink = new NodeSink(req, res);
      sink.open(HEADERS);
      seen = { ok: sink.write(CHUNK), corked: res.socket!.writableCorked };
      sink.end();
    });
    const client = await rawClient(url, { read: true });
    await client.done;
    expect(seen).toEqual({ ok: false, corked: 1 });
  });

  it('hands every chunk to a write a middleware replaced, small chunks too', async () => {
    // A body-transforming middleware (compression, a logger) owns the body once it replaced write:
    // a chunk that went around it to the socket would be missing from what it sends, or corrupt it.
    const passed: string[] = [];
    const { url } = await serve((req, res) => {
      const write = res.write.bind(res) as (chunk: Uint8Array) => boolean;
      res.write = ((chunk: Uint8Array) => {
        passed.push(new TextDecoder().decode(chunk));
        return write(chunk);
      }) as typeof res.write;
      const sink = new NodeSink(req, res);
      sink.open(HEADERS);
      sink.write(new TextEncoder().encode('data: a\n\n'));
      sink.write(new TextEncoder().encode(':\n'));
      sink.end();
    });
    const client = await rawClient(url, { read: true });
    await client.done;
    expect(passed).toEqual(['data: a\n\n', ':\n']);
  });

  it('frames chunks on the socket itself as res.write would, also for a response with its own prototype', async () => {
    const write = vi.spyOn(OutgoingMessage.prototype, 'write');
    let calls = -1;
    const { url } = await serve((req, res) => {
      // What Express does to every response: a hidden class of its own.
      Object.setPrototypeOf(res, Object.create(Object.getPrototypeOf(res)));
      const sink = new NodeSink(req, res);
      sink.open(HEADERS);
      sink.write(new TextEncoder().encode('data: a\n\n'));
      sink.write(new Uint8Array(0));
      sink.write(new TextEncoder().encode(':\n'));
      calls = write.mock.calls.length;
      sink.end();
    });
    const client = await rawClient(url, { read: true });
    await client.done;
    expect(calls).toBe(0);
    expect(client.text.slice(client.text.indexOf('\r\n\r\n') + 4)).toBe(
      '9\r\ndata: a\n\n\r\n2\r\n:\n\r\n0\r\n\r\n',
    );
  });

  it('reports full after small chunks the client stopped taking, and drains when it reads again', async () => {
    const small = new Uint8Array(1024).fill(0x62);
    let result: { ok: boolean; written: number } | undefined;
    let drained = false;
    const { url } = await serve((req, res) => {
      result = fillUntilFull(new NodeSink(req, res), small, () => {
        drained = true;
      });
    });
    const client = await rawClient(url, { read: false });
    await waitFor(() => result !== undefined, 5_000, 'the writes');
    expect(result!.ok).toBe(false);
    expect(drained).toBe(false);
    client.resume();
    await client.done;
    expect(drained).toBe(true);
    expect(client.text.split('b'.repeat(1024)).length - 1).toBe(result!.written);
  });

  it('counts what the kernel took of a write still in progress as sent, not the whole write', async () => {
    // Far more than the kernel buffers for one socket: most of it stays in the write in progress.
    const large = new Uint8Array(32 * 1024 * 1024).fill(0x63);
    let seen: { sink: NodeSink; res: ServerResponse } | undefined;
    const { url } = await serve((req, res) => {
      const sink = new NodeSink(req, res);
      sink.open(HEADERS);
      sink.write(large);
      seen = { sink, res };
    });
    const client = await rawClient(url, { read: false });
    onTestFinished(() => client.destroy());
    await waitFor(() => seen !== undefined, 5_000, 'the write');
    const { sink, res } = seen!;
    // Node counts the write whole until the kernel took its last byte; a client that reads slowly
    // would show no progress, and be dropped as stalled.
    await waitFor(() => sink.pending() < res.writableLength, 5_000, 'the kernel to take part of the write');
    expect(sink.pending()).toBeGreaterThan(0);
  });

  it('leaves no drain listener on a socket it wrote to directly', async () => {
    let counts: { before: number; open: number; after: number } | undefined;
    const { url } = await serve((req, res) => {
      const socket = res.socket!;
      const before = socket.listenerCount('drain');
      const sink = new NodeSink(req, res);
      sink.open(HEADERS);
      sink.onDrain(() => {});
      const open = socket.listenerCount('drain');
      res.once('close', () => {
        counts = { before, open, after: socket.listenerCount('drain') };
      });
      sink.write(CHUNK);
      sink.end();
    });
    const client = await rawClient(url, { read: true });
    await client.done;
    await waitFor(() => counts !== undefined, 5_000, 'the close');
    expect(counts).toEqual({ before: counts!.before, open: counts!.before + 1, after: counts!.before });
  });
});
