import { fdLimit, startChild } from '../lib/child.mjs';
import { rate, table } from '../lib/harness.mjs';
import { bounded, loadCells, lossCell, measureLoad, ms } from '../lib/redis-load.mjs';
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

/** One measured run: fresh apps and publisher on `redis`; everything stopped after. */
async function measure(redis, { mode, topics, rate: publishRate, clients }) {
  await redis.flush();
  const env = { ...redis.env, ...(mode.partitions ? { PARTITIONS: String(mode.partitions) } : {}) };
  const app = new URL('../lib/redis-app.mjs', import.meta.url);
  const started = await Promise.all(
    Array.from({ length: APPS + 1 }, () => startChild(app, { env, limit: fdLimit() })),
  );
  const [apps, publisher] = [started.slice(0, APPS), started[APPS]];
  let cpuBefore = 0;
  const window = {
    start: async () => {
      await redis.resetStats();
      cpuBefore = (await redis.stats()).cpu;
    },
    end: async (seconds) => ({ ...(await redis.stats()), seconds }),
  };
  try {
    const load = { rate: publishRate, topics, clients, prefix: 'user-', warmupMs: 1000, measureMs: 4000 };
    const r = await measureLoad({ apps, publishers: [publisher], window, ...load });
    const { calls, keys, seconds } = r.during;
    const cpu = r.during.cpu - cpuBefore;
    const inScript = 2 * ((calls.eval ?? 0) + (calls.evalsha ?? 0));
    const rss = await Promise.all(apps.map(async (a) => (await a.request('memory')).rss / 2 ** 20));
    return {
      ...r,
      mode: mode.name,
      topics,
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

/** Every run and mode on one Redis, then the partitioned path on a Redis Cluster. */
async function measureAll(clients) {
  const cluster = { name: 'cluster, partitioned (16)', partitions: 16 };
  const plan = [
    [{}, RUNS.flatMap((load) => MODES.map((mode) => ({ ...load, mode })))],
    [{ cluster: true }, RUNS.slice(1).map((load) => ({ ...load, mode: cluster }))],
  ];
  const results = [];
  for (const [where, runs] of plan) {
    const redis = await startRedis(where);
    try {
      for (const load of runs) results.push(await measure(redis, { ...load, clients }));
    } finally {
      redis.stop();
    }
  }
  return results;
}

function report(results) {
  const rows = results.map((r) => [
    ...[r.mode, rate(r.topics), rate(r.listened), ...loadCells(r)],
    ...[rate(r.commandsPerSecond), rate(r.inScriptPerSecond), `${Math.round(r.redisCpu * 100)} %`],
    ...[Math.round(r.cpuPerDelivery), r.rss.map(Math.round).join(' / '), lossCell(r)],
  ]);
  const headers = ['live path', 'topics', 'listened', 'publishes/s', 'deliveries/s', 'p50 ms', 'p99 ms'];
  headers.push('max ms', 'Redis cmds/s', 'XADD in script/s', 'Redis CPU', 'Redis CPU µs/delivery');
  headers.push('app RSS MB', 'lost / twice / failed');
  const spread = results
    .filter((r) => r.keys.length > 1)
    .map((r) => `${rate(r.topics)} topics: ${r.keys.map(rate).join(' / ')} keys`);
  const markdown = `${table(headers, rows)}\n\nKeys per cluster master (DBSIZE): ${spread.join('; ')}.`;
  const goals = results
    .filter((r) => r.mode !== 'per topic')
    .flatMap((r) => {
      const name = `${r.mode}, ${rate(r.topics)} topics`;
      const once = r.missing + r.extra + r.disorder + r.failed === 0;
      const lost = `${r.missing} lost, ${r.extra + r.disorder} twice or out of order, ${r.failed} failed`;
      return [
        { name: `${name}: p99 ≤ 50 ms`, pass: r.p99 <= 50, actual: `${ms(r.p99)} ms` },
        { name: `${name}: every event once`, pass: once, actual: lost },
      ];
    });
  return { markdown, goals };
}

export const run = ({ events }) => bounded(() => measureAll(events), 420_000, report);
