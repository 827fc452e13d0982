// The measuring clients of the stream suite. They must cost little and the same for every
// contender: node:http (llhttp parses the response and its chunked framing natively), then a byte
// scan that counts events: blank lines closing a block that had a line starting with `d` (`data:`).
// Comments, `retry:` blocks and the lone newline some servers send first are not events.

import { request } from 'node:http';
import { connect } from 'node:net';

/** Counts complete events in a byte stream, across chunk boundaries. */
export class EventCounter {
  count = 0;
  bytes = 0;
  #lineStart = true;
  #hasData = false;

  feed(chunk) {
    this.bytes += chunk.length;
    let count = this.count;
    let lineStart = this.#lineStart;
    let hasData = this.#hasData;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === 10) {
        if (lineStart) {
          if (hasData) count++;
          hasData = false;
        }
        lineStart = true;
      } else {
        if (lineStart && byte === 100) hasData = true;
        lineStart = false;
      }
    }
    this.count = count;
    this.#lineStart = lineStart;
    this.#hasData = hasData;
  }
}

/**
 * One SSE client on 127.0.0.1:port/path. `onEvents(count)` runs after every chunk; `close()` drops
 * the connection. `response` resolves when the status line and headers arrived.
 */
export function openClient(port, path, onEvents = () => {}) {
  const counter = new EventCounter();
  const req = request({
    host: '127.0.0.1',
    port,
    path,
    agent: false,
    headers: { accept: 'text/event-stream' },
  });
  const response = new Promise((resolve, reject) => {
    req.once('response', (res) => {
      if (res.statusCode !== 200) reject(new Error(`${path}: HTTP ${res.statusCode}`));
      res.on('data', (chunk) => {
        counter.feed(chunk);
        onEvents(counter.count);
      });
      res.on('error', () => {});
      resolve(res);
    });
    req.once('error', reject);
  });
  // A client closed before its response came has nobody waiting on `response`.
  response.catch(() => {});
  req.end();
  return { counter, response, close: () => req.destroy() };
}

/** Rejects after `ms` with `message`; the timer is cleared by calling the returned cancel. */
export function deadline(ms, message) {
  let timer;
  const promise = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * Burst: one client asks for `n` events; events/s from sending the request until the n-th event
 * arrived, measured here, at the client, and the body bytes per event it took.
 */
export async function measureBurst(port, n, timeout = 60_000) {
  const start = performance.now();
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  const client = openClient(port, `/burst?n=${n}`, (count) => {
    if (count >= n) done(performance.now());
  });
  const limit = deadline(timeout, `fewer than ${n} events after ${timeout} ms`);
  try {
    const end = await Promise.race([finished, limit.promise, client.response.then(() => finished)]);
    return { rate: n / ((end - start) / 1000), bytesPerEvent: client.counter.bytes / client.counter.count };
  } finally {
    limit.cancel();
    client.close();
  }
}

/**
 * Reads `path` until `n` events arrived or the server ended or dropped the response (whichever
 * comes first), then closes. Resolves with the events read.
 */
export async function readEvents(port, path, n, timeout = 30_000) {
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  const client = openClient(port, path, (count) => {
    if (count >= n) done();
  });
  const limit = deadline(timeout, `${path}: neither ${n} events nor an end after ${timeout} ms`);
  try {
    const res = await Promise.race([client.response, limit.promise]);
    res.once('close', done);
    await Promise.race([finished, limit.promise]);
    return client.counter.count;
  } finally {
    limit.cancel();
    client.close();
  }
}

/** Fan-out: opens `clients` connections to /fanout and resolves once the server counts them all. */
export async function connectFanout(server, clients, timeout = 30_000) {
  const list = [];
  // Per client: the count that completes the current measurement, and what to call when reached.
  const targets = new Array(clients).fill(Number.POSITIVE_INFINITY);
  let onReached = () => {};
  for (let i = 0; i < clients; i++) {
    list.push(
      openClient(server.port, '/fanout', (count) => {
        if (count >= targets[i]) {
          targets[i] = Number.POSITIVE_INFINITY;
          onReached();
        }
      }),
    );
  }
  const until = performance.now() + timeout;
  // Headers may come only with the first event (for some contenders), so ask the server instead.
  while ((await server.request('subscribers')) < clients) {
    if (performance.now() > until) {
      for (const client of list) client.close();
      throw new Error(`fewer than ${clients} subscribers after ${timeout} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    /**
     * Has the server emit `count` events (`batch` per macrotask) and resolves with deliveries/s:
     * clients x count / the time from the command until the last client had its last event.
     */
    async measure(count, batch, limit = 60_000) {
      let remaining = list.length;
      const finished = new Promise((resolve) => {
        onReached = () => {
          if (--remaining === 0) resolve(performance.now());
        };
      });
      for (let i = 0; i < list.length; i++) targets[i] = list[i].counter.count + count;
      const timer = deadline(limit, `not every client had ${count} events after ${limit} ms`);
      const start = performance.now();
      try {
        await Promise.race([server.request('emit', { count, batch }, limit), timer.promise]);
        const end = await Promise.race([finished, timer.promise]);
        return (list.length * count) / ((end - start) / 1000);
      } finally {
        timer.cancel();
        targets.fill(Number.POSITIVE_INFINITY);
        onReached = () => {};
      }
    },
    close() {
      for (const client of list) client.close();
    },
  };
}

/**
 * A client that sends its GET and never reads: a raw TCP socket, paused before it connects, so
 * the kernel buffers fill and the server's writes start returning false.
 */
export function stalledClient(port, path) {
  const socket = connect({ host: '127.0.0.1', port });
  socket.pause();
  socket.on('error', () => {});
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
  return { close: () => socket.destroy() };
}
