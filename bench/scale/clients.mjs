// The scale suite's clients, all in one child process: idle ones counting chunks (heartbeats) per 100 ms,
// churn, and fan-out readers turning each event's publish time `{ t }` into a publish-to-receive latency.

import { serveParent } from '../lib/child.mjs';
import { countEvents, open, parseEvents } from '../lib/client.mjs';
import { sleep } from '../lib/harness.mjs';

const port = Number(process.argv[2]);
let slots;
let fan;

function onChunk() {
  if (!slots) return;
  const slot = Math.floor((performance.timeOrigin + performance.now()) / 100);
  slots.set(slot, (slots.get(slot) ?? 0) + 1);
}

/** A fan-out delivery, recorded once `fanoutArm` ran (a latency past the array's end is dropped). */
function onEvent({ data }, at) {
  fan.last = performance.timeOrigin + at;
  fan.latencies[fan.count] = fan.last - JSON.parse(data).t;
  if (++fan.count === fan.latencies.length) fan.done?.();
}

/** `task()` `count` times, `concurrency` at a time: how many failed, and the time it all took in ms. */
async function timed(count, concurrency, task) {
  const start = performance.now();
  let started = 0;
  let failed = 0;
  const worker = async () => {
    while (started++ < count) await task().catch(() => failed++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { failed, ms: performance.now() - start };
}

serveParent({
  open: ({ path, count }) => {
    const read = () => (path === '/fanout' ? parseEvents(onEvent) : countEvents());
    return timed(count, 200, () => open(port, path, { read: read(), onChunk }).response);
  },
  /** Chunks per 100 ms slot for `ms`: all of them, and the busiest slot but the partial first and last. */
  heartbeats: async ({ ms }) => {
    slots = new Map();
    await sleep(ms);
    const counts = [...slots.values()];
    slots = undefined;
    const chunks = counts.reduce((sum, c) => sum + c, 0);
    return { busiestSlot: Math.max(0, ...counts.slice(1, -1)), chunks };
  },
  churn: ({ path, cycles }) =>
    timed(cycles, 50, async () => {
      const client = open(port, path);
      await client.response;
      client.close();
      await client.closed;
    }),
  fanoutArm: ({ expected }) => {
    const elu = performance.eventLoopUtilization();
    fan = { latencies: new Float64Array(expected), count: 0, last: 0, elu };
  },
  /** Waits for every delivery, or until none arrived for 3 s. */
  fanoutWait: async () => {
    let seen;
    while (fan.count < fan.latencies.length && fan.count !== seen) {
      seen = fan.count;
      await new Promise((resolve) => {
        fan.done = resolve;
        setTimeout(resolve, 3_000);
      });
    }
    const sorted = fan.latencies.subarray(0, fan.count).sort();
    const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
    const elu = performance.eventLoopUtilization(fan.elu).utilization;
    return { deliveries: fan.count, last: fan.last, p50: pct(0.5), p99: pct(0.99), max: pct(1), elu };
  },
});
