import { rate, table } from '../lib/harness.mjs';
import { bounded, loadCells, lossCell, measureLoad, ms, startApp } from '../lib/redis-load.mjs';
import { startRedis } from '../lib/redis-server.mjs';

const APPS = 3;
// 1,000 publishes/s, but 100/s at 100 topics: there each event reaches 100 connections, and
// 100,000 deliveries/s is more than 2 cores carry over HTTP with Redis on them too.
const RUNS = [
  { topics: 100, rate: 100 },
  { topics: 10_000, rate: 1000 },
  { topics: 100_000, rate: 1000 },
];
const MODES = [{ name: 'per topic' }, { name: 'partitioned (16)', partitions: 16 }];
const CLUSTER = { name: 'cluster, partitioned (16)', partitions: 16 };

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

/** One run on fresh apps and publisher (stopped after): its row, and its keys per Redis master. */
async function measure(redis, { mode, topics, rate: publishRate, clients }) {
  await redis.flush();
  const env = redis.env({ partitions: mode.partitions });
  const [publisher, ...apps] = await Promise.all(Array.from({ length: APPS + 1 }, () => startApp(env)));
  try {
    const load = { rate: publishRate, topics, clients, prefix: 'user-', warmupMs: 1000, measureMs: 4000 };
    const r = await measureLoad({ apps, publishers: [publisher], probe: redis.stats, ...load });
    const [before, after] = r.probes;
    const cpu = after.cpu - before.cpu;
    // Each EVAL of the publish script runs two XADDs, which commandstats counts as calls.
    const inScript = 2 * (after.evals - before.evals);
    const rss = await Promise.all(apps.map(async (app) => (await app.request('memory')).rss / 2 ** 20));
    const row = [mode.name, rate(topics), rate(Math.min(topics, clients)), ...loadCells(r)];
    row.push(rate((after.commands - before.commands - inScript) / r.seconds), rate(inScript / r.seconds));
    row.push(`${Math.round((cpu / r.seconds) * 100)} %`, Math.round((cpu * 1e6) / r.deliveries));
    row.push(rss.map(Math.round).join(' / '), lossCell(r));
    return { ...r, mode, topics, row, keys: after.keys };
  } finally {
    await Promise.all([publisher, ...apps].map((child) => child.stop()));
  }
}

async function measureAll(clients) {
  const results = [];
  for (const cluster of [false, true]) {
    const redis = await startRedis({ cluster });
    try {
      for (const load of cluster ? RUNS.slice(1) : RUNS)
        for (const mode of cluster ? [CLUSTER] : MODES)
          results.push(await measure(redis, { ...load, mode, clients }));
    } finally {
      redis.stop();
    }
  }
  return results;
}

function report(results) {
  const headers = ['live path', 'topics', 'listened', 'publishes/s', 'deliveries/s', 'p50 ms', 'p99 ms'];
  headers.push('max ms', 'Redis cmds/s', 'XADD in script/s', 'Redis CPU', 'Redis CPU µs/delivery');
  headers.push('app RSS MB', 'lost / twice / failed');
  const spread = results
    .filter((r) => r.keys.length > 1)
    .map((r) => `${rate(r.topics)} topics: ${r.keys.map(rate).join(' / ')} keys`);
  const rows = results.map((r) => r.row);
  const markdown = `${table(headers, rows)}\n\nKeys per cluster master (DBSIZE): ${spread.join('; ')}.`;
  const goals = results
    .filter((r) => r.mode.partitions)
    .flatMap((r) => {
      const name = `${r.mode.name}, ${rate(r.topics)} topics`;
      const once = r.missing + r.extra + r.disorder + r.failed === 0;
      const lost = `${r.missing} lost, ${r.extra + r.disorder} twice or out of order, ${r.failed} failed`;
      return [
        { name: `${name}: p99 ≤ 50 ms`, pass: r.p99 <= 50, actual: `${ms(r.p99)} ms` },
        { name: `${name}: every event once`, pass: once, actual: lost },
      ];
    });
  return { markdown, goals };
}

export const run = ({ events }) => bounded(420_000, async () => report(await measureAll(events)));
