import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamGroup } from '@rxsse/core';
import compression from 'compression';
import express from 'express';
import { concat, from, interval, map, mergeMap, NEVER, Observable, range, take } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { rawClient, readUntil, waitFor } from '../../../test/support/clients.js';
import { type Nginx, startNginx } from '../../../test/support/nginx.js';
import { notingMetrics } from '../../../test/support/recording.js';
import { closeStreamsOnServerClose, sse } from '../src/index.js';

/** A stream that sends one small event and then stays open. */
const oneEventThenOpen = () => concat(from([{ data: 'hello' }]), NEVER);

describe('express in production setups', () => {
  const app = express();
  // Compression middleware in front of everything, as many apps have it.
  app.use(compression());
  app.get('/sse', sse(oneEventThenOpen));
  // 64 MiB, 1 MiB a millisecond, for a client that reads nothing: more than the sockets between it
  // and the app hold, and a queue that grows only while the path back to the client is full.
  const mebibyte = Array.from({ length: 1024 }, () => ({ data: 'x'.repeat(1016) }));
  const flood = () =>
    concat(
      interval(1).pipe(
        take(64),
        mergeMap(() => mebibyte),
      ),
      NEVER,
    );
  const slow = { maxQueueBytes: 128 << 20, heartbeat: false, stallTimeout: false } as const;
  const streamed = new StreamGroup();
  let bufferedEvents = 0;
  app.get('/flood', sse(flood, { ...slow, group: streamed }));
  app.get(
    '/flood-buffered',
    sse(flood, {
      ...slow,
      headers: { 'x-accel-buffering': null },
      metrics: {
        ...notingMetrics(() => {}),
        wrote: (events) => {
          bufferedEvents += events;
        },
      },
    }),
  );
  const server = app.listen(0, '127.0.0.1');
  closeStreamsOnServerClose(server);
  const listening = once(server, 'listening');
  let url = '';
  let nginx: Nginx;

  beforeAll(async () => {
    await listening;
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    nginx = await startNginx(url);
  });
  afterAll(async () => {
    await nginx?.stop();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is not buffered by compression middleware (Cache-Control: no-transform)', async () => {
    const response = await fetch(`${url}/sse`, { headers: { 'accept-encoding': 'gzip' } });
    expect(response.headers.get('content-encoding')).toBeNull();
    await response.body?.cancel();
    expect(await readUntil(`${url}/sse`, (text) => text.includes('\n\n'), 5000)).toBe('data: hello\n\n');
  });

  it('streams live through nginx as a reverse proxy with its default buffering', async () => {
    const response = await fetch(`${nginx.url}/sse`);
    // nginx consumes X-Accel-Buffering itself; the event still arrives while the stream is open.
    expect(response.headers.get('x-accel-buffering')).toBeNull();
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    await response.body?.cancel();
    expect(await readUntil(`${nginx.url}/sse`, (text) => text.includes('\n\n'), 5000)).toBe(
      'data: hello\n\n',
    );
  });

  it("hands a slow client's backpressure back through nginx, whose buffering would take it all in", async () => {
    const clients = [await rawClient(`${nginx.url}/flood`, { read: false })];
    onTestFinished(() => {
      for (const client of clients) client.destroy();
    });
    // Streamed: what the client has not taken waits in the stream's queue, under its cap.
    await waitFor(() => streamed.queuedBytes > 8 << 20, 10_000, 'the backpressure to reach the stream');
    // Without the header nginx buffers the body on disk: the stream hands it all over, for no one yet.
    clients.push(await rawClient(`${nginx.url}/flood-buffered`, { read: false }));
    await waitFor(() => bufferedEvents === 64 * 1024, 10_000, 'every event handed over');
  });
});

describe('express in production setups: a route that lets compression compress it', () => {
  it('delivers each event at once, not when zlib has gathered enough (a Cache-Control without no-transform)', async () => {
    const app = express();
    app.use(compression());
    app.get('/sse', sse(oneEventThenOpen, { headers: { 'cache-control': 'no-cache' } }));
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`;
      const response = await fetch(url, { headers: { 'accept-encoding': 'gzip' } });
      expect(response.headers.get('content-encoding')).toBe('gzip');
      await response.body?.cancel();
      expect(await readUntil(url, (text) => text.includes('\n\n'), 5000)).toBe('data: hello\n\n');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('express in production setups: closing the server', () => {
  it('lets a stream that ended by itself finish flushing behind compression middleware', async () => {
    // ~16 MiB, more than loopback's socket buffers take: most of it waits in the server.
    const count = 16_000;
    const payload = 'x'.repeat(1024);
    const app = express();
    app.use(compression());
    let ended = false;
    app.get(
      '/sse',
      sse(() => range(0, count).pipe(map((i) => ({ id: String(i), data: payload }))), {
        maxQueueBytes: 64 * 1024 * 1024,
        onClose: () => {
          ended = true;
        },
      }),
    );
    const server = app.listen(0, '127.0.0.1');
    closeStreamsOnServerClose(server);
    await once(server, 'listening');
    const client = await rawClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`, {
      read: false,
    });
    await waitFor(() => ended, 5000, 'the stream to end');
    const closed = new Promise((resolve) => server.close(resolve));
    client.resume();
    await client.done;
    await closed;
    expect(client.text.split('\ndata: ').length - 1).toBe(count);
    expect(client.text).toContain(`id: ${count - 1}\ndata: ${payload}\n\n`);
  });
});

describe("express in production setups: Node's timeouts", () => {
  it('cuts a stream quiet for longer than server.timeout, as a client close, its source released', async () => {
    const reasons: string[] = [];
    let released = false;
    const app = express();
    app.get(
      '/sse',
      sse(() => new Observable<never>(() => () => (released = true)), {
        heartbeat: false,
        onClose: (reason) => reasons.push(reason),
      }),
    );
    const server = app.listen(0, '127.0.0.1');
    server.timeout = 200;
    await once(server, 'listening');
    try {
      const client = await rawClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`, {
        read: true,
      });
      await waitFor(() => reasons.length > 0, 5000, 'the stream to close');
      await client.done;
      expect(reasons).toEqual(['client']);
      expect(released).toBe(true);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('never cuts a stream whose request has arrived at requestTimeout or headersTimeout', async () => {
    const reasons: string[] = [];
    const app = express();
    app.get(
      '/sse',
      sse(() => NEVER, { heartbeat: 50, onClose: (reason) => reasons.push(reason) }),
    );
    // Node checks both timeouts every connectionsCheckingInterval (30 s by default).
    const server = createServer(
      { requestTimeout: 200, headersTimeout: 100, connectionsCheckingInterval: 20 },
      app,
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const client = await rawClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`, {
        read: true,
      });
      // Ten heartbeats of 50 ms: well past both timeouts.
      await waitFor(() => client.text.split(':\n').length > 10 || client.closed, 10_000, 'ten heartbeats');
      expect(client.closed).toBe(false);
      expect(reasons).toEqual([]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
