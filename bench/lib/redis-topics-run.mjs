// The redis-topics suite's measurements, in a process of their own (suites/redis-topics.mjs spawns
// it and reads the JSON it prints last). Per-user topics: CLIENTS subscriptions over 3 app processes
// (redis-topics-app.mjs), PUBLISH_RATE events/s spread uniformly over TOPICS topics, published from
// this process; the engine's live path per topic (the default) against the partitioned one. It starts
// its own redis-server on a free loopback port and kills everything it started on the way out.
// Usage: node redis-topics-run.mjs [clients].

import { execFile, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { redisEngine } from '@rxsse/redis';

const CLIENTS = Math.max(3, Number(process.argv[2] ?? 10_000));
const APPS = 3;
const TOPIC_COUNTS = [100, 10_000, 100_000];
const MODES = [
  { name: 'per topic', partitions: 0 },
  { name: 'partitioned (16)', partitions: 16 },
];
const PUBLISH_RATE = 1000;
const WARMUP_MS = 1000;
const MEASURE_MS = 4000;
const DRAIN_MS = 1500;
const BUCKET_MS = 0.1;
const DEADLINE_MS = 240_000;

const children = new Set();
const tempDirs = [];
function cleanup() {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
// Bounded whatever happens: a stuck run reports nothing rather than running on.
setTimeout(() => {
  console.error(`redis-topics bench: over ${DEADLINE_MS / 1000} s, giving up`);
  process.exit(1);
}, DEADLINE_MS).unref();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const clock = () => performance.timeOrigin + performance.now();

async function freePort() {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rxsse-bench-redis-'));
  tempDirs.push(dir);
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  let output = '';
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', () => reject(new Error(`redis-server exited:\n${output}`)));
  });
  const cli = (...command) =>
    promisify(execFile)('redis-cli', ['-p', String(port), ...command]).then(({ stdout }) => stdout.trim());
  return { url: `redis://127.0.0.1:${port}`, cli };
}

/** `INFO <section>` as name → value. */
async function info(cli, section) {
  const fields = {};
  for (const line of (await cli('INFO', section)).split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return fields;
}

/** Calls per command from `INFO commandstats`. */
async function commandCalls(cli) {
  const calls = {};
  for (const [name, value] of Object.entries(await info(cli, 'commandstats')))
    calls[name.replace('cmdstat_', '')] = Number(/calls=(\d+)/.exec(value)[1]);
  return calls;
}

const cpuSeconds = (fields) => Number(fields.used_cpu_user) + Number(fields.used_cpu_sys);

/** Waits for the next message of `type` from `child`. */
function next(child, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`app exited with ${code} waiting for ${type}`)));
  });
}

/** Sends `message` to every app and waits for each one's `reply`. */
function askAll(apps, message, reply) {
  return Promise.all(
    apps.map((app, i) => {
      const answer = next(app, reply);
      app.send(typeof message === 'function' ? message(i) : message);
      return answer;
    }),
  );
}

async function runOnce(redis, mode, topicCount) {
  await redis.cli('FLUSHALL');
  const script = fileURLToPath(new URL('./redis-topics-app.mjs', import.meta.url));
  const env = { ...process.env, REDIS_URL: redis.url, PARTITIONS: String(mode.partitions) };
  const apps = Array.from({ length: APPS }, () => fork(script, [], { env, stdio: 'inherit' }));
  for (const app of apps) children.add(app);
  await Promise.all(apps.map((app) => next(app, 'ready')));
  // Client c's topic: spread evenly over the topics, one per topic when there are more topics.
  const topicOf = (c) => (topicCount >= CLIENTS ? Math.floor((c * topicCount) / CLIENTS) : c % topicCount);
  const perApp = apps.map(() => []);
  for (let c = 0; c < CLIENTS; c++) perApp[c % APPS].push(topicOf(c));
  const subscribeStart = clock();
  await askAll(apps, (i) => ({ type: 'subscribe', topics: perApp[i] }), 'subscribed');
  const subscribeMs = clock() - subscribeStart;

  const publisher = redisEngine({
    url: redis.url,
    ...(mode.partitions ? { partitions: mode.partitions } : {}),
  });
  const published = new Uint32Array(topicCount);
  let sent = 0;
  let failed = 0;
  let seq = 0;
  // A seeded generator: every run publishes to the same topics in the same order.
  let seed = 0x2545f491;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const start = clock();
  const pending = new Set();
  const ticker = setInterval(() => {
    const due = Math.floor(((clock() - start) * PUBLISH_RATE) / 1000) - sent;
    for (let i = 0; i < due; i++, sent++) {
      const topic = Math.floor(random() * topicCount);
      const append = publisher.append(`user-${topic}`, { data: { t: clock(), s: seq++ } }).then(
        () => {
          published[topic]++;
        },
        () => {
          failed++;
        },
      );
      pending.add(append);
      append.finally(() => pending.delete(append));
    }
  }, 5);

  await sleep(WARMUP_MS);
  await askAll(apps, { type: 'measure', on: true }, 'measuring');
  await redis.cli('CONFIG', 'RESETSTAT');
  const cpuBefore = cpuSeconds(await info(redis.cli, 'cpu'));
  const measureStart = clock();
  const sentBefore = sent;
  await sleep(MEASURE_MS);
  const calls = await commandCalls(redis.cli);
  const cpu = cpuSeconds(await info(redis.cli, 'cpu')) - cpuBefore;
  const measuredMs = clock() - measureStart;
  const publishedInWindow = sent - sentBefore;
  await askAll(apps, { type: 'measure', on: false }, 'measuring');
  clearInterval(ticker);
  await Promise.all(pending);
  await sleep(DRAIN_MS);
  const memory = Number((await info(redis.cli, 'memory')).used_memory);

  const reports = await askAll(apps, { type: 'report', published: Array.from(published) }, 'report');
  await publisher.close();
  for (const app of apps) children.delete(app);

  const histogram = new Uint32Array(reports[0].histogram.length);
  for (const report of reports)
    report.histogram.forEach((n, i) => {
      histogram[i] += n;
    });
  const deliveries = reports.reduce((sum, r) => sum + r.deliveries, 0);
  const quantile = (q) => {
    let seen = 0;
    for (let i = 0; i < histogram.length; i++) {
      seen += histogram[i];
      if (seen >= q * deliveries) return i * BUCKET_MS;
    }
    return Number.NaN;
  };
  let max = 0;
  histogram.forEach((n, i) => {
    if (n > 0) max = i * BUCKET_MS;
  });
  const totalCalls = Object.values(calls).reduce((sum, n) => sum + n, 0);
  return {
    mode: mode.name,
    topics: topicCount,
    clients: CLIENTS,
    listenedTopics: new Set(Array.from({ length: CLIENTS }, (_, c) => topicOf(c))).size,
    subscribeMs,
    measuredMs,
    publishedPerSecond: (publishedInWindow * 1000) / measuredMs,
    deliveriesPerSecond: (deliveries * 1000) / measuredMs,
    p50: quantile(0.5),
    p99: quantile(0.99),
    max,
    commandsPerSecond: (totalCalls * 1000) / measuredMs,
    commands: calls,
    redisCpuPercent: (cpu * 100_000) / measuredMs,
    redisCpuUsPerDelivery: deliveries > 0 ? (cpu * 1e6) / deliveries : Number.NaN,
    redisMemoryMb: memory / 2 ** 20,
    failedPublishes: failed,
    missing: reports.reduce((sum, r) => sum + r.missing, 0),
    extra: reports.reduce((sum, r) => sum + r.extra, 0),
    repeated: reports.reduce((sum, r) => sum + r.repeated, 0),
  };
}

const redis = await startRedis();
const results = [];
for (const topics of TOPIC_COUNTS)
  for (const mode of MODES) {
    const result = await runOnce(redis, mode, topics);
    console.error(JSON.stringify({ ...result, commands: undefined }));
    results.push(result);
  }
console.log(JSON.stringify({ shape: { CLIENTS, APPS, PUBLISH_RATE, MEASURE_MS }, results }));
process.exit(0);
