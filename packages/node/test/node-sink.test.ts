import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { rawClient, waitFor } from '../../../test/support/clients.js';
import { NodeSink } from '../src/index.js';

const CHUNK = new Uint8Array(64 * 1024).fill(0x61);
// `Connection: close` so the client sees the end as a closed socket, not a kept-alive one.
const HEADERS = { 'content-type': 'text/event-stream', connection: 'close' };

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A real server whose one route hands its request and response to `handle`. */
async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

describe('NodeSink over node:http', () => {
  it('sends a write that fills the buffer at once, instead of holding it to the next tick', async () => {
    let seen: { writes: boolean[]; buffered: number; corked: number } | undefined;
    const url = await serve((req, res) => {
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
    const url = await serve((req, res) => {
      const sink = new NodeSink(req, res);
      sink.open(HEADERS);
      sink.onDrain(() => {
        drained = true;
        sink.end();
      });
      let written = 0;
      let ok = true;
      // 64 MiB bounds the loop: the kernel's buffers for one socket are far smaller.
      while (ok && written < 1024) {
        ok = sink.write(CHUNK);
        written++;
      }
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
    const url = await serve((req, res) => {
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
});
