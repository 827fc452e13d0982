// Per-user topics on @rxsse/redis over real SSE connections: the live path per topic (the default)
// against the partitioned one (`partitions: 16`), at 100, 10,000 and 100,000 topics on one Redis,
// then the partitioned path on a 3-master, 3-replica Redis Cluster. It starts its own Redis, 3 app
// processes, a publisher and a client process (lib/redis-*.mjs), and stops them all, bounded in time.

import { fdLimit, startChild } from '../lib/child.mjs';
import { rate, table } from '../lib/harness.mjs';
import { bounded, measureLoad } from '../lib/redis-load.mjs';
import { startRedis } from '../lib/redis-server.mjs';

const APPS = 3;
// 1,000 publishes/s, but 100/s at 100 topics: there each event reaches 100 connections, and
// 100,000 deliveries/s is more than 2 cores carry over HTTP with Redis on them too.
const RUNS = [
  { topics: 100, rate: 100 },
  { topics: 10_000, rate: 1000 },
  { topics: 100_000, rate: 1000 },
];
const MODES = [
  { name: 'per topic', partitions: 0 },
  { name: 'partitioned (16)', partitions: 16 },
];
const WARMUP_MS = 1000;
const MEASURE_MS = 4000;
const DEADLINE_MS = 420_000;

export const description = [
  'N SSE connections (`--events`, 10,000) over HTTP/1.1 on 127.0.0.1, spread over 3 app processes',
  '(node:http + @rxsse/node, `GET /topic/:name` from `createChannel` on `redisEngine`), from one client',
  'process (node:http, no keep-alive agent, eventsource-parser); connection c on topic c × topics / N.',
  'A fourth process publishes uniformly over all the topics (most have no listener, as in real use).',
  'Latency: the publisher stamps the monotonic clock when it calls `append`, the client reads it on',
  'arrival. 1 s warm-up, 4 s measured. Every connection must get every event of its topic once, in',
  'order. Redis commands/s: `INFO commandstats` over the window (the XADDs inside the publish script',
  'are Redis calls, not round trips: shown apart). Redis CPU: `INFO cpu` user+sys, masters only.',
  'Last, the partitioned path on a 3-master, 3-replica Redis Cluster (6 redis-servers on this box).',
].join('\n');

export const defaults = { rounds: 1, events: 10_000 };

export function summary({ events }) {
  return `one run per topic count and mode; ${rate(events)} connections (--events); needs redis-server and built packages`;
}

const ms = (value) => (value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US'));

/** One measured run: fresh apps, publisher and clients on `redis`; everything stopped after. */
async function measure(redis, { mode, topics, rate: publishRate, clients }) {
  await redis.flush();
  const env = { REDIS_URL: redis.url, ...(mode.cluster ? { REDIS_CLUSTER: redis.rootNodes.join(',') } : {}) };
  if (mode.partitions) env.PARTITIONS = String(mode.partitions);
  const app = new URL('../lib/redis-app.mjs', import.meta.url);
  const started = await Promise.all([
    ...Array.from({ length: APPS + 1 }, () => startChild(app, { env, limit: fdLimit() })),
    startChild(new URL('../lib/redis-clients.mjs', import.meta.url), { limit: fdLimit() }),
  ]);
  const [apps, [publisher, client]] = [started.slice(0, APPS), started.slice(APPS)];
  const topicOf = (c) => `user-${topics >= clients ? Math.floor((c * topics) / clients) : c % topics}`;
  const targets = Array.from({ length: clients }, (_, c) => {
    const topic = topicOf(c);
    return { port: apps[c % APPS].info.port, path: `/topic/${topic}`, topic };
  });
  let cpuBefore = 0;
  const window = {
    start: async () => {
      await redis.resetStats();
      cpuBefore = (await redis.stats()).cpu;
    },
    end: async (seconds) => ({ ...(await redis.stats()), seconds }),
  };
  try {
    const load = { rate: publishRate, topics, prefix: 'user-', warmupMs: WARMUP_MS, measureMs: MEASURE_MS };
    const r = await measureLoad({ apps, publishers: [publisher], client, targets, window, ...load });
    const { calls, keys, seconds } = r.during;
    const cpu = r.during.cpu - cpuBefore;
    const inScript = 2 * ((calls.eval ?? 0) + (calls.evalsha ?? 0));
    const rss = await Promise.all(apps.map(async (a) => (await a.request('memory')).rss / 2 ** 20));
    return {
      ...r,
      mode: mode.name,
      topics,
      listened: new Set(targets.map((t) => t.topic)).size,
      commandsPerSecond: (Object.values(calls).reduce((a, b) => a + b, 0) - inScript) / seconds,
      inScriptPerSecond: inScript / seconds,
      redisCpu: cpu / seconds,
      cpuPerDelivery: (cpu * 1e6) / r.deliveries,
      keys,
      rss,
    };
  } finally {
    await Promise.all(started.map((child) => child.stop()));
  }
}

async function measureAll(clients) {
  const results = [];
  const single = await startRedis();
  try {
    for (const { topics, rate: r } of RUNS)
      for (const mode of MODES) results.push(await measure(single, { mode, topics, rate: r, clients }));
  } finally {
    single.stop();
  }
  const cluster = await startRedis({ cluster: true });
  try {
    const mode = { name: 'cluster, partitioned (16)', cluster: true };
    for (const { topics, rate: r } of RUNS.slice(1))
      results.push(await measure(cluster, { mode, topics, rate: r, clients }));
  } finally {
    cluster.stop();
  }
  return results;
}

export async function run({ events }) {
  let results;
  try {
    results = await bounded(() => measureAll(events), DEADLINE_MS);
  } catch (error) {
    return { markdown: `_not run: ${error.message} (redis-server installed, packages built?)_`, goals: [] };
  }
  const rows = results.map((r) => [
    ...[r.mode, rate(r.topics), rate(r.listened), rate(r.rate), rate(r.deliveriesPerSecond)],
    ...[ms(r.p50), ms(r.p99), ms(r.max), rate(r.commandsPerSecond), rate(r.inScriptPerSecond)],
    ...[`${Math.round(r.redisCpu * 100)} %`, Math.round(r.cpuPerDelivery), r.rss.map(Math.round).join(' / ')],
    `${r.missing} / ${r.extra + r.disorder} / ${r.failed}`,
  ]);
  const headers =
    'live path|topics|listened|publishes/s|deliveries/s|p50 ms|p99 ms|max ms|Redis cmds/s|'.split('|');
  headers.push(
    ...'XADD in script/s|Redis CPU|Redis CPU µs/delivery|app RSS MB|lost / twice / failed'.split('|'),
  );
  const spread = results
    .filter((r) => r.keys.length > 1)
    .map((r) => `${rate(r.topics)} topics: ${r.keys.map(rate).join(' / ')} keys`);
  const markdown = `${table(headers.filter(Boolean), rows)}\n\nKeys per cluster master (DBSIZE): ${spread.join('; ')}.`;
  const goals = results
    .filter((r) => r.mode !== 'per topic')
    .flatMap((r) => [
      {
        name: `${r.mode}, ${rate(r.topics)} topics: p99 ≤ 50 ms`,
        pass: r.p99 <= 50,
        actual: `${ms(r.p99)} ms`,
      },
      {
        name: `${r.mode}, ${rate(r.topics)} topics: every event once`,
        pass: r.missing + r.extra + r.disorder + r.failed === 0,
        actual: `${r.missing} lost, ${r.extra + r.disorder} twice or out of order, ${r.failed} failed`,
      },
    ]);
  return { markdown, goals };
}
