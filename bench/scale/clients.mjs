// The scale suite's clients, all in one child process: idle ones, and churn.

import { serveParent } from '../lib/child.mjs';
import { open } from '../lib/client.mjs';

const port = Number(process.argv[2]);

/** `task()` `count` times, `concurrency` at a time: resolves to how many failed. */
async function repeat(count, concurrency, task) {
  let started = 0;
  let failed = 0;
  const worker = async () => {
    while (started++ < count) await task().catch(() => failed++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return failed;
}

serveParent({
  open: ({ path, count }) => repeat(count, 200, () => open(port, path).response),
  churn: ({ path, cycles }) =>
    repeat(cycles, 50, async () => {
      const client = open(port, path);
      await client.response;
      client.close();
      await client.closed;
    }),
});
