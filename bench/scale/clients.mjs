// The scale suite's clients, all in one child process: idle ones counting chunks (heartbeats) per
// 100 ms, and churn.

import { serveParent } from '../lib/child.mjs';
import { open } from '../lib/client.mjs';
import { sleep } from '../lib/harness.mjs';

const port = Number(process.argv[2]);
let slots;

function onChunk() {
  if (!slots) return;
  const slot = Math.floor((performance.timeOrigin + performance.now()) / 100);
  slots.set(slot, (slots.get(slot) ?? 0) + 1);
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
  open: ({ path, count }) => timed(count, 200, () => open(port, path, { onChunk }).response),
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
});
