// The load both redis suites measure: SSE connections opened and subscribed, events published at a
// rate over a set of topics, a window measured, then every connection checked for its topic's events.

import { killAll } from './child.mjs';
import { sleep, until } from './harness.mjs';

const sum = (values) => values.reduce((a, b) => a + b, 0);

/**
 * `client` (lib/redis-clients.mjs) opens `targets` ({ port, path, topic }) on `apps`
 * (lib/redis-app.mjs); `publishers` (app processes too) share `rate` events/s over `topics` topics
 * `<prefix><n>`. `window.start()` and `window.end(seconds)` run at the measured window's edges; what
 * `end` returns comes back as `during`. Resolves to the client's report (latency, lost, twice) with
 * the publish rate, failed publishes and deliveries/s.
 */
export async function measureLoad({ apps, publishers, client, targets, window = {}, ...load }) {
  const { rate, topics, prefix, size = 0, warmupMs, measureMs } = load;
  const subscribers = async () => sum(await Promise.all(apps.map((app) => app.request('subscribers'))));
  await client.request('connect', { targets });
  await until(
    async () => (await subscribers()) === targets.length,
    60_000,
    'every connection subscribed',
    50,
  );
  const args = { rate: rate / publishers.length, ms: warmupMs + measureMs + 500, topics, prefix, size };
  const publishing = Promise.all(publishers.map((p, i) => p.request('publish', { ...args, seed: i + 1 })));
  await sleep(warmupMs);
  await client.request('measure', { on: true });
  await window.start?.();
  const from = performance.now();
  await sleep(measureMs);
  const seconds = (performance.now() - from) / 1000;
  const during = await window.end?.(seconds);
  await client.request('measure', { on: false });
  const results = await publishing;
  await sleep(1500); // the last events reach the clients
  const stored = {};
  for (const r of results)
    for (const [topic, n] of Object.entries(r.stored)) stored[topic] = (stored[topic] ?? 0) + n;
  const report = await client.request('report', { stored });
  await client.request('close');
  await until(async () => (await subscribers()) === 0, 10_000, 'every connection closed', 50);
  return {
    ...report,
    during,
    rate: sum(results.map((r) => r.published / r.seconds)),
    failed: sum(results.map((r) => r.failed)),
    deliveriesPerSecond: report.deliveries / seconds,
  };
}

/** `work()`, or after `ms` every child killed and an error: a suite never runs on unbounded. */
export async function bounded(work, ms) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`over ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work(), expired]);
  } catch (error) {
    killAll();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
