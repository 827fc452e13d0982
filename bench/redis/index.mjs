import { readEvents } from '../lib/client.mjs';
import { median, rate, table } from '../lib/harness.mjs';
import { bounded, measureLoad, ms, startApp } from './load.mjs';
import { startRedis } from './redis-server.mjs';

const MEMORY = { name: 'memory' };
const PER_TOPIC = { name: 'per topic' };
const PARTITIONED = { name: 'partitioned (16)', partitions: 16 };
const CLUSTER = { name: 'cluster, partitioned (16)', partitions: 16 };
/** Rooms: 1,000 clients in 10 rooms, on Redis or in memory, events of ~120 bytes. */
const ROOMS = [1000, 100].flatMap((r) =>
  [MEMORY, PER_TOPIC].map((mode) => ({ mode, rate: r, topics: 10, size: 100 })),
);
// Topics: 1,000 publishes/s, but 100/s at 100 topics: there each event reaches 100 connections, and
// 100,000 deliveries/s is more than 2 cores carry over HTTP with Redis on them too.
const TOPICS = [
  { topics: 100, rate: 100 },
  { topics: 10_000, rate: 1000 },
  { topics: 100_000, rate: 1000 },
];
const REPLAY = { topic: 'replay', count: 20_000, size: 200 };

export const description = [
  'SSE clients over HTTP/1.1 on 127.0.0.1 from one client process (node:http, eventsource-parser), on',
  'app processes of node:http + @rxsse/node (`GET /topic/:name` from `createChannel`). **Rooms**: 1,000',
  'clients in 10 rooms, events of ~120 bytes, on two apps that each publish half (memory: on one app,',
  'which an in-memory channel cannot leave). **Topics**: N clients (`--events`, 10,000) over 3 apps,',
  'connection c on topic c × topics / N, a fourth app publishing uniformly over all the topics (most',
  'have no listener, as in real use), the live path per topic or partitioned, last on a 3-master,',
  '3-replica Redis Cluster (6 redis-servers on this box). Latency: the publisher stamps the monotonic',
  'clock when it calls `append`, the client reads it on arrival; 1 s warm-up, 4 s measured; every',
  'connection must get every event of its topic once, in order. Redis commands/s: `INFO commandstats`',
  'over the window (the XADDs inside the publish script are Redis calls, not round trips: shown',
  'apart); Redis CPU: `INFO cpu` user+sys, masters only. **Replay**: one client resumes from the first',
  'of 20,000 events of 200 bytes, median of the rounds (the in-memory ring hands out the same objects',
  'again, so after the first round their bytes come from the encoder cache; Redis builds new ones per',
  'read). **Memory per event**: after storing those 20,000 events.',
].join('\n');

export const defaults = { rounds: 3, events: 10_000 };

export const summary = ({ rounds, events }) =>
  `one run per row, ${rate(events)} connections on topics (--events); replay: median of ${rounds} rounds; needs redis-server and built packages`;

/** One load on fresh apps (stopped after): its row and the keys per Redis master. */
async function measure(redis, { mode, topics, rate: publishRate, clients, publisher, size = 0 }) {
  await redis.flush();
  const env = mode === MEMORY ? { ENGINE: 'memory' } : redis.env({ partitions: mode.partitions });
  const count = mode === MEMORY ? 1 : publisher ? 4 : 2;
  const children = await Promise.all(Array.from({ length: count }, () => startApp(env)));
  const apps = publisher ? children.slice(1) : children;
  try {
    const publishers = publisher ? children.slice(0, 1) : apps;
    const probe = mode === MEMORY ? undefined : redis.stats;
    const load = { rate: publishRate, topics, clients, prefix: 'user-', size };
    const r = await measureLoad({ apps, publishers, probe, ...load });
    const [before, after] = r.probes;
    const per = (count) => rate(count / r.seconds);
    // Each EVAL of the publish script runs two XADDs, which commandstats counts as calls.
    const inScript = after && 2 * (after.evals - before.evals);
    const cpu = after && after.cpu - before.cpu;
    const onRedis = after
      ? [
          per(after.commands - before.commands - inScript),
          per(inScript),
          `${Math.round((cpu * 100) / r.seconds)} %`,
          Math.round((cpu * 1e6) / r.deliveries),
        ]
      : Array(4).fill('–');
    const rss = await Promise.all(apps.map(async (app) => (await app.request('memory')).rss / 2 ** 20));
    const cells = [r.rate, r.deliveries / r.seconds].map(rate).concat([r.p50, r.p99, r.max].map(ms));
    const lost = `${r.missing} / ${r.extra + r.disorder} / ${r.failed}`;
    const row = [mode.name, apps.length, rate(topics), rate(clients), ...cells, ...onRedis];
    row.push(rss.map(Math.round).join(' / '), lost);
    return { ...r, mode, topics, row, keys: after?.keys ?? [] };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
}

/** Stores REPLAY through `writer`, then `rounds` times a client resumes from its first through `reader`. */
async function replay(writer, reader, used, rounds) {
  const before = await used();
  const first = await writer.request('prefill', REPLAY);
  const grown = (await used()) - before;
  const events = REPLAY.count - 1;
  const rates = [];
  let bytes = 0;
  for (let round = 0; round < rounds; round++) {
    const start = performance.now();
    const read = await readEvents(reader.info.port, `/topic/replay?replay&lastEventId=${first}`, events);
    if (read.count < events) throw new Error(`the replay ended after ${read.count} events`);
    rates.push(events / ((performance.now() - start) / 1000));
    bytes = read.bytes;
  }
  const wire = ((median(rates) * bytes) / events / 1e6).toFixed(1);
  return { grown, cells: [rate(events), rate(rates[0]), rate(median(rates)), wire] };
}

async function measureReplays(redis, rounds) {
  await redis.flush();
  const apps = await Promise.all([redis.env(), redis.env(), { ENGINE: 'memory' }].map(startApp));
  try {
    // Written through one app, replayed through the other: the events come from Redis.
    const usedMemory = async () => Number((await redis.fields('INFO', 'memory')).used_memory);
    const onRedis = await replay(apps[0], apps[1], usedMemory, rounds);
    const length = Number(await redis.cli('XLEN', 'sse:{replay}'));
    const usage = Number(await redis.cli('MEMORY', 'USAGE', 'sse:{replay}', 'SAMPLES', '0'));
    const heap = async () => (await apps[2].request('memory')).heapUsed;
    const inMemory = await replay(apps[2], apps[2], heap, rounds);
    return {
      replays: [
        ['redis', ...onRedis.cells],
        ['memory', ...inMemory.cells],
      ],
      memory: [
        ['redis', Math.round(usage / length), '`MEMORY USAGE` of the stream / `XLEN`'],
        ['redis', Math.round(onRedis.grown / length), '`INFO memory` used_memory delta / events'],
        ['memory', Math.round(inMemory.grown / REPLAY.count), 'V8 heap delta (after gc) / events'],
      ],
    };
  } finally {
    await Promise.all(apps.map((app) => app.stop()));
  }
}

async function measureAll({ rounds, events: clients }) {
  const results = [];
  let replays;
  for (const cluster of [false, true]) {
    const redis = await startRedis({ cluster });
    try {
      const runs = cluster
        ? TOPICS.slice(1).map((load) => ({ ...load, mode: CLUSTER }))
        : [
            ...ROOMS.map((load) => ({ ...load, clients: 1000 })),
            ...TOPICS.flatMap((load) => [PER_TOPIC, PARTITIONED].map((mode) => ({ ...load, mode }))),
          ];
      for (const run of runs)
        results.push(await measure(redis, { clients, publisher: !run.clients, ...run }));
      replays ??= await measureReplays(redis, rounds);
    } finally {
      redis.stop();
    }
  }
  return { results, ...replays };
}

function report({ results, replays, memory }) {
  const headers = (names) => names.split('|');
  const live =
    'live path|apps|topics|clients|publishes/s|deliveries/s|p50 ms|p99 ms|max ms|Redis cmds/s|' +
    'XADD in script/s|Redis CPU|Redis CPU µs/delivery|app RSS MB|lost / twice / failed';
  const spread = results
    .filter((r) => r.keys.length > 1)
    .map((r) => `${rate(r.topics)} topics: ${r.keys.map(rate).join(' / ')} keys`);
  const markdown = [
    table(
      headers(live),
      results.map((r) => r.row),
    ),
    `\nKeys per cluster master (DBSIZE): ${spread.join('; ')}.\n`,
    `**Replay** (one client resumes ${rate(REPLAY.count - 1)} events of ${REPLAY.size} bytes)\n`,
    table(headers('engine|events|first round ev/s|median ev/s|median MB/s (wire)'), replays),
    `\n**Memory per stored event** (${REPLAY.size}-byte payloads)\n`,
    table(headers('engine|bytes/event|measured as'), memory),
  ].join('\n');
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

export const run = (options) => bounded(540_000, async () => report(await measureAll(options)));
