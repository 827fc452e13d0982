// The load the redis suite measures: SSE connections opened and subscribed, events published at a
// rate over a set of topics, a window measured, then every connection checked for its topic's events.

import { fdLimit, killAll, startChild } from '../lib/child.mjs';
import { sleep, until } from '../lib/harness.mjs';

const sum = (values) => values.reduce((a, b) => a + b, 0);

export const startApp = (env) => startChild(new URL('./app.mjs', import.meta.url), { env, limit: fdLimit() });

/**
 * `clients` SSE connections from a client process (clients.mjs), connection c on
 * `apps[c % apps.length]` and topic `<prefix><c % topics>`, or with more topics than connections,
 * on topics spread evenly over all. `publishers` (apps too) share `rate` events/s over the `topics`
 * topics, events of `size` bytes. After 1 s of warm-up, 4 s are measured: `probe()` runs at their
 * edges, its results come back as `probes`, with the client's report (latency, lost, twice), the
 * window's seconds, the publish rate and failed publishes.
 */
export async function measureLoad({ apps, publishers, clients, probe, rate, topics, prefix, size }) {
  const [warmupMs, measureMs] = [1000, 4000];
  const topic = (c) => `${prefix}${topics >= clients ? Math.floor((c * topics) / clients) : c % topics}`;
  const port = (c) => apps[c % apps.length].info.port;
  const targets = Array.from({ length: clients }, (_, c) => ({ port: port(c), topic: topic(c) }));
  const subscribers = async () => sum(await Promise.all(apps.map((app) => app.request('subscribers'))));
  const client = await startChild(new URL('./clients.mjs', import.meta.url), { limit: fdLimit() });
  try {
    await client.request('connect', { targets });
    await until(async () => (await subscribers()) === clients, 60_000, 'every connection subscribed', 50);
    const args = { rate: rate / publishers.length, ms: warmupMs + measureMs + 500, topics, prefix, size };
    const publishing = Promise.all(publishers.map((p, i) => p.request('publish', { ...args, seed: i + 1 })));
    await sleep(warmupMs);
    await client.request('measure', { on: true });
    const probes = [await probe?.()];
    const from = performance.now();
    await sleep(measureMs);
    const seconds = (performance.now() - from) / 1000;
    probes.push(await probe?.());
    await client.request('measure', { on: false });
    const results = await publishing;
    await sleep(1500); // the last events reach the clients
    const report = await client.request('report', { stored: results.map((r) => r.stored) });
    await client.request('close');
    await until(async () => (await subscribers()) === 0, 10_000, 'every connection closed', 50);
    return {
      ...report,
      probes,
      seconds,
      rate: sum(results.map((r) => r.rate)),
      failed: sum(results.map((r) => r.failed)),
    };
  } finally {
    await client.stop();
  }
}

/** A latency in ms: 0.1 ms steps below 10 ms. */
export const ms = (value) => (value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US'));

/** `run()`'s `{ markdown, goals }`, or after `ms` every child killed: a suite never runs unbounded. */
export async function bounded(ms, run) {
  const expired = new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`over ${ms / 1000} s`)), ms).unref(),
  );
  try {
    return await Promise.race([run(), expired]);
  } catch (error) {
    killAll();
    return { markdown: `_not run: ${error.message} (redis-server installed, packages built?)_`, goals: [] };
  }
}
