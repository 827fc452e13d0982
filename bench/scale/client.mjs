// The clients of the scale suite, all in this one process: raw TCP sockets that send
// `GET <path> HTTP/1.1`, wait for the status line, then read and discard (counting bytes and the
// 100 ms slot each chunk arrived in) or, for fan-out, parse the publish timestamp of every event.

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { serve } from './proc.mjs';

const now = () => performance.timeOrigin + performance.now();
const request = (path) =>
  Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);

let sockets = [];
const counters = { bytes: 0, chunks: 0, errors: 0, closedByServer: 0 };
/** Chunks received per 100 ms slot since `mark` (heartbeats arrive one per socket per chunk). */
let slots = new Map();
let recordSlots = false;
let fan;

function onData(socket, chunk) {
  counters.bytes += chunk.length;
  counters.chunks++;
  if (recordSlots) {
    const slot = Math.floor(now() / 100);
    slots.set(slot, (slots.get(slot) ?? 0) + 1);
  }
  if (fan) fan.parse(socket, chunk);
}

/** Opens one connection and resolves once the status line came back (200 expected). */
function connect(port, path, keep) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let opened = false;
    socket.once('connect', () => socket.write(request(path)));
    socket.on('data', (chunk) => {
      if (!opened) {
        opened = true;
        if (chunk.toString('latin1', 0, 12) !== 'HTTP/1.1 200') {
          socket.destroy();
          reject(new Error(`unexpected response: ${chunk.toString('latin1', 0, 40)}`));
          return;
        }
        resolve(socket);
        // The rest of the first chunk (headers, maybe a first event) is not counted.
        return;
      }
      if (keep) onData(socket, chunk);
    });
    socket.on('error', (error) => {
      counters.errors++;
      if (!opened) reject(error);
    });
    socket.on('close', () => {
      if (opened && !socket.closingOnPurpose) counters.closedByServer++;
    });
  });
}

/** Runs `task(i)` for i < total, at most `concurrency` at a time. */
async function pool(total, concurrency, task) {
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      try {
        await task(i);
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return failed;
}

function closeAll() {
  const closing = sockets.map(
    (socket) =>
      new Promise((resolve) => {
        socket.closingOnPurpose = true;
        if (socket.destroyed) resolve();
        else socket.once('close', resolve).destroy();
      }),
  );
  sockets = [];
  return Promise.all(closing);
}

/** Parses `data: {"t":<ms>,"n":<i>}` events and records publish-to-receive latency. */
function fanoutRecorder(expected) {
  const latencies = new Float64Array(expected);
  const pattern = /data: \{"t":([\d.]+),"n":(\d+)\}\n\n/g;
  const perSocket = new Map();
  const elu = performance.eventLoopUtilization();
  const state = { count: 0, expected, first: Number.POSITIVE_INFINITY, last: 0, done: undefined };
  state.parse = (socket, chunk) => {
    const at = now();
    const text = (socket.tail ?? '') + chunk.toString('latin1');
    pattern.lastIndex = 0;
    let end = 0;
    let got = 0;
    for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
      if (state.count < expected) latencies[state.count] = at - Number(match[1]);
      state.count++;
      got++;
      end = pattern.lastIndex;
    }
    const tail = text.slice(end);
    socket.tail = tail.length > 256 ? tail.slice(-256) : tail;
    if (got > 0) {
      perSocket.set(socket, (perSocket.get(socket) ?? 0) + got);
      if (at < state.first) state.first = at;
      state.last = at;
    }
    if (state.count >= expected) state.done?.();
  };
  state.summary = () => {
    const n = Math.min(state.count, expected);
    const sorted = latencies.subarray(0, n).sort();
    const pct = (p) => (n === 0 ? Number.NaN : sorted[Math.min(n - 1, Math.floor((p / 100) * n))]);
    let min = Number.POSITIVE_INFINITY;
    for (const socket of sockets) min = Math.min(min, perSocket.get(socket) ?? 0);
    return {
      deliveries: state.count,
      firstReceive: state.first,
      lastReceive: state.last,
      p50: pct(50),
      p99: pct(99),
      max: n === 0 ? Number.NaN : sorted[n - 1],
      fewestPerClient: min,
      elu: performance.eventLoopUtilization(elu).utilization,
    };
  };
  return state;
}

serve(
  {
    open: async ({ port, path, count, concurrency = 200 }) => {
      const start = performance.now();
      const failed = await pool(count, concurrency, async () => {
        sockets.push(await connect(port, path, true));
      });
      return { opened: sockets.length, failed, ms: performance.now() - start };
    },
    mark: () => {
      Object.assign(counters, { bytes: 0, chunks: 0 });
      slots = new Map();
      recordSlots = true;
      return { at: now() };
    },
    stats: () => {
      recordSlots = false;
      // Drop the first and last (partial) slots; the busiest slot is the largest heartbeat batch.
      const counts = [...slots.entries()].sort((a, b) => a[0] - b[0]).map((entry) => entry[1]);
      const inner = counts.slice(1, -1);
      return {
        ...counters,
        open: sockets.filter((s) => !s.destroyed).length,
        busiestSlot: Math.max(0, ...inner),
        activeSlots: inner.filter((c) => c > 0).length,
        slots: inner.length,
      };
    },
    closeAll: async () => {
      const start = performance.now();
      await closeAll();
      return { ms: performance.now() - start };
    },
    churn: async ({ port, path, cycles, concurrency }) => {
      const start = performance.now();
      const failed = await pool(cycles, concurrency, async () => {
        const socket = await connect(port, path, false);
        socket.closingOnPurpose = true;
        await new Promise((resolve) => socket.once('close', resolve).destroy());
      });
      return { cycles, failed, ms: performance.now() - start };
    },
    fanoutArm: ({ expected }) => {
      fan = fanoutRecorder(expected);
      return true;
    },
    fanoutWait: ({ quietMs = 3_000, maxMs = 90_000 }) =>
      new Promise((resolve) => {
        const start = performance.now();
        let seen = -1;
        const finish = () => {
          clearInterval(timer);
          fan.done = undefined;
          resolve({ ...fan.summary(), waitedMs: performance.now() - start });
        };
        // Ends when every delivery arrived, or when nothing arrived for `quietMs`.
        const timer = setInterval(() => {
          if (fan.count === seen || performance.now() - start > maxMs) finish();
          seen = fan.count;
        }, quietMs);
        fan.done = finish;
        if (fan.count >= fan.expected) finish();
      }),
  },
  { pid: process.pid },
);
