// The one SSE client of the suites, over node:http (llhttp parses the response and its chunked
// framing natively) on 127.0.0.1. Throughput counts events with a byte scan: eventsource-parser
// (2-4 M events/s here) would cost more than some servers and cap what is measured.

import { request } from 'node:http';
import { connect } from 'node:net';
import { createParser } from 'eventsource-parser';
import { median, timeout, until } from './harness.mjs';

/** Counts complete events in a byte stream, across chunks, in `reader.count` (bytes: `reader.bytes`). */
export function countEvents() {
  let lineStart = true;
  let hasData = false;
  const reader = (chunk) => {
    reader.bytes += chunk.length;
    let count = reader.count;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 10) {
        if (lineStart && chunk[i] === 100) hasData = true;
        lineStart = false;
        continue;
      }
      if (lineStart && hasData) count++;
      if (lineStart) hasData = false;
      lineStart = true;
    }
    reader.count = count;
  };
  return Object.assign(reader, { count: 0, bytes: 0 });
}

/** Parses the body with eventsource-parser, for latency: `at` is the chunk's performance.now(). */
export function parseEvents(onEvent) {
  let at = 0;
  const parser = createParser({ onEvent: (event) => onEvent(event, at) });
  const decoder = new TextDecoder();
  return (chunk) => {
    at = performance.now();
    parser.feed(decoder.decode(chunk, { stream: true }));
  };
}

/**
 * Opens `GET path`: `read(chunk)` gets the body, then `onChunk()` runs. `response` resolves on a
 * 200's headers (rejects on another status); `closed` resolves when the response ends or drops.
 */
export function open(port, path, { read = countEvents(), onChunk = () => {} } = {}) {
  const headers = { accept: 'text/event-stream' };
  const req = request({ host: '127.0.0.1', port, path, agent: false, headers });
  const closed = new Promise((resolve) => req.once('close', resolve));
  const response = new Promise((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      if (res.statusCode !== 200) reject(new Error(`${path}: HTTP ${res.statusCode}`));
      res.on('error', () => {});
      res.on('data', (chunk) => {
        read(chunk);
        onChunk();
      });
      resolve(res);
    });
  });
  response.catch(() => {});
  req.end();
  return { read, response, closed, close: () => req.destroy() };
}

/** Reads `path` until `n` events arrived or the response ended; resolves to the reader. */
export async function readEvents(port, path, n, ms = 30_000) {
  let client;
  const enough = new Promise((resolve) => {
    client = open(port, path, { onChunk: () => client.read.count >= n && resolve() });
  });
  try {
    const limit = timeout(ms, `${path}: neither ${n} events nor an end after ${ms} ms`);
    await Promise.race([client.response, limit]);
    await Promise.race([enough, client.closed, limit]);
    return client.read;
  } finally {
    client.close();
  }
}

/**
 * Burst: events/s until the n-th event of `/burst?n=` arrived, the median of three runs after three
 * warm-up ones; body bytes per event. One warm-up is not enough: V8 drops code that the first
 * stream's end invalidates (rxjs's `range` completing, say) and compiles it again in the next burst.
 */
export async function measureBurst(port, n) {
  const rates = [];
  let bytesPerEvent = 0;
  for (let i = 0; i < 6; i++) {
    const start = performance.now();
    const read = await readEvents(port, `/burst?n=${n}`, n, 60_000);
    if (read.count < n) throw new Error(`the response ended after ${read.count} of ${n} events`);
    if (i >= 3) rates.push(n / ((performance.now() - start) / 1000));
    bytesPerEvent = read.bytes / read.count;
  }
  return { burst: median(rates), bytesPerEvent };
}

/**
 * Fan-out: `clients` connections to /fanout; once the server (a stream-suite child) counts them all,
 * it emits `warmup`, then `events` events, `batch` per macrotask: deliveries/s until the last arrived.
 */
export async function measureFanout(server, { clients, warmup, events, batch }) {
  let onChunk = () => {};
  const list = Array.from({ length: clients }, (_, i) =>
    open(server.info.port, '/fanout', { onChunk: () => onChunk(i) }),
  );
  const measure = async (count) => {
    const ms = 60_000;
    const targets = list.map((client) => client.read.count + count);
    let remaining = clients;
    const last = new Promise((resolve) => {
      onChunk = (i) => {
        if (list[i].read.count < targets[i]) return;
        targets[i] = Number.POSITIVE_INFINITY;
        if (--remaining === 0) resolve(performance.now());
      };
    });
    const limit = timeout(ms, `not every client had ${count} events after ${ms} ms`);
    const start = performance.now();
    await Promise.race([server.request('emit', { count, batch }, ms), limit]);
    const seconds = ((await Promise.race([last, limit])) - start) / 1000;
    return (clients * count) / seconds;
  };
  try {
    // Some contenders send their headers only with the first event: ask the server instead.
    const subscribed = async () => (await server.request('subscribers')) >= clients;
    await until(subscribed, 30_000, `${clients} subscribers`, 20);
    await measure(warmup);
    return await measure(events);
  } finally {
    for (const client of list) client.close();
  }
}

/** A client that sends its GET and never reads (a paused raw socket): the server's writes back up. */
export function stalledClient(port, path) {
  const socket = connect({ host: '127.0.0.1', port });
  socket.pause();
  socket.on('error', () => {});
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
  return { close: () => socket.destroy() };
}
