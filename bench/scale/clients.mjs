// The scale suite's clients, all in this one child process (lib/client.mjs connections): idle ones
// that count the chunks they get per 100 ms slot (heartbeats), churn, and fan-out readers that
// parse each event's publish time `{ t }` into a publish-to-receive latency.

import { serveParent } from '../lib/child.mjs';
import { countEvents, open, parseEvents, pool } from '../lib/client.mjs';

const now = () => performance.timeOrigin + performance.now();
let clients = [];
let slots;
let fan;

function onChunk() {
  if (!slots) return;
  const slot = Math.floor(now() / 100);
  slots.set(slot, (slots.get(slot) ?? 0) + 1);
}

async function connect(port, path, read) {
  const client = open(port, path, { read, onChunk });
  await client.response;
  return client;
}

/** Publish-to-receive latencies of `expected` deliveries; `done` runs at the last. */
function recorder(expected) {
  const latencies = new Float64Array(expected);
  const state = { expected, count: 0, last: 0, elu: performance.eventLoopUtilization() };
  state.onEvent = ({ data }, at) => {
    const receivedAt = at + performance.timeOrigin;
    if (state.count < expected) latencies[state.count] = receivedAt - JSON.parse(data).t;
    state.last = receivedAt;
    if (++state.count === expected) state.done?.();
  };
  state.summary = () => {
    const n = Math.min(state.count, expected);
    const sorted = latencies.subarray(0, n).sort();
    const pct = (p) => sorted[Math.min(n - 1, Math.floor(p * n))] ?? Number.NaN;
    const elu = performance.eventLoopUtilization(state.elu).utilization;
    return {
      deliveries: state.count,
      lastReceive: state.last,
      p50: pct(0.5),
      p99: pct(0.99),
      max: pct(1),
      elu,
    };
  };
  return state;
}

serveParent({
  open: async ({ port, path, count, concurrency = 200 }) => {
    const start = performance.now();
    const read = () =>
      path === '/fanout' ? parseEvents((event, at) => fan?.onEvent(event, at)) : countEvents();
    const failed = await pool(count, concurrency, async () =>
      clients.push(await connect(port, path, read())),
    );
    return { opened: clients.length, failed, ms: performance.now() - start };
  },
  mark: () => {
    slots = new Map();
  },
  /** Chunks per 100 ms slot since `mark`, without the partial first and last slots. */
  stats: () => {
    const counts = [...slots.entries()].sort((a, b) => a[0] - b[0]).map((entry) => entry[1]);
    slots = undefined;
    const inner = counts.slice(1, -1);
    return { busiestSlot: Math.max(0, ...inner), chunks: counts.reduce((sum, c) => sum + c, 0) };
  },
  closeAll: async () => {
    for (const client of clients) client.close();
    await Promise.all(clients.map((client) => client.closed));
    clients = [];
  },
  churn: async ({ port, path, cycles, concurrency }) => {
    const start = performance.now();
    const failed = await pool(cycles, concurrency, async () => {
      const client = await connect(port, path, () => {});
      client.close();
      await client.closed;
    });
    return { cycles, failed, ms: performance.now() - start };
  },
  /** The next fan-out connections record `expected` deliveries in all. */
  fanoutArm: ({ expected }) => {
    fan = recorder(expected);
  },
  /** Resolves when every delivery arrived, or when none arrived for 3 s. */
  fanoutWait: () =>
    new Promise((resolve) => {
      let seen = -1;
      const finish = () => {
        clearInterval(timer);
        resolve(fan.summary());
      };
      const timer = setInterval(() => {
        if (fan.count === seen) finish();
        seen = fan.count;
      }, 3_000);
      fan.done = finish;
      if (fan.count >= fan.expected) finish();
    }),
});
