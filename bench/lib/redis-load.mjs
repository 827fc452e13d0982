// The load both redis suites measure: SSE connections opened and subscribed, events published at a
// rate over a set of topics, a window measured, then every connection checked for its topic's events.

import { fdLimit, killAll, startChild } from './child.mjs';
import { rate as perSecond, sleep, until } from './harness.mjs';

const sum = (values) => values.reduce((a, b) => a + b, 0);

export const startApp = (env) =>
  startChild(new URL('./redis-app.mjs', import.meta.url), { env, limit: fdLimit() });

/**
 * `clients` SSE connections from a client process (lib/redis-clients.mjs), connection c on
 * `apps[c % apps.length]` and topic `<prefix><c % topics>`, or with more topics than connections,
 * on topics spread evenly over all. `publishers` (apps too) share `rate` events/s over the `topics`
 * topics. `probe()` runs at the measured window's edges, its results come back as `probes`, with the
 * client's report (latency, lost, twice), the window's seconds, the publish rate and failed publishes.
 */
export async function measureLoad({ apps, publishers = apps, clients, probe, ...load }) {
  const { rate, topics, prefix, size = 0, warmupMs, measureMs } = load;
  const topic = (c) => `${prefix}${topics >= clients ? Math.floor((c * topics) / clients) : c % topics}`;
  const port = (c) => apps[c % apps.length].info.port;
  const targets = Array.from({ length: clients }, (_, c) => ({ port: port(c), topic: topic(c) }));
  const subscribers = async () => sum(await Promise.all(apps.map((app) => app.request('subscribers'))));
  const client = await startChild(new URL('./redis-clients.mjs', import.meta.url), { limit: fdLimit() });
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

/** The cells both suites show of a measureLoad() result: publishes/s, deliveries/s, p50, p99, max. */
export const loadCells = (r) => [
  ...[r.rate, r.deliveries / r.seconds].map(perSecond),
  ...[r.p50, r.p99, r.max].map(ms),
];

/** Whether every connection got its topic's events once: lost / twice or out of order / failed. */
export const lossCell = (r) => `${r.missing} / ${r.extra + r.disorder} / ${r.failed}`;

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
