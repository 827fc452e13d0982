// The redis suite's measurements, run in a process of their own (suites/redis.mjs spawns it and
// reads the JSON it prints last). It starts its own redis-server on a free loopback port and its
// own app instances (redis-bench-server.mjs), is its own SSE clients, and kills everything it
// started on the way out, whatever happens. Usage: node --expose-gc redis-bench-run.mjs [rounds].

import { execFile, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const CLIENTS = 1000;
const ROOMS = 10;
/** Events/s published in total: the load asked for, and a light one to show the floor. */
const RATES = [1000, 100];
const PAYLOAD = 100;
const WARMUP_MS = 2000;
const MEASURE_MS = 5000;
const REPLAY_EVENTS = 20_000;
const REPLAY_PAYLOAD = 200;
const ROUNDS = Math.max(1, Number(process.argv[2] ?? 5));
const DEADLINE_MS = 150_000;

const children = new Set();
const tempDirs = [];
function cleanup() {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
// Bounded whatever happens: a stuck run reports nothing rather than running on.
setTimeout(() => {
  console.error(`redis bench: over ${DEADLINE_MS / 1000} s, giving up`);
  process.exit(1);
}, DEADLINE_MS).unref();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Number(process.hrtime.bigint());

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

/** One app instance, with a request/reply channel over IPC. */
async function startApp(env) {
  const child = fork(new URL('./redis-bench-server.mjs', import.meta.url), [], {
    env: { ...process.env, ...env },
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const pending = new Map();
  let next = 0;
  const port = await new Promise((resolve, reject) => {
    child.on('message', (message) => {
      if (message.type === 'ready') resolve(message.port);
      else if (message.type === 'reply') {
        const { resolve: done, reject: fail } = pending.get(message.id);
        pending.delete(message.id);
        if (message.error) fail(new Error(message.error));
        else done(message.result);
      }
    });
    child.once('exit', () => reject(new Error('app exited')));
  });
  return {
    port,
    call(command, args) {
      const id = next++;
      child.send({ id, command, args });
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    },
    async stop() {
      child.disconnect();
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
      children.delete(child);
    },
  };
}

/**
 * An SSE client over node:http. `onChunk(text, at)` gets each decoded chunk and its arrival time
 * (monotonic ns): events that arrive together were written together.
 */
function openClient(port, path, headers, onChunk) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (text) => onChunk(text, now()));
      res.on('error', () => {});
      resolve({ close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Publish-to-deliver latency at CLIENTS clients over `apps`, `rate` events/s published across them. */
async function latency(apps, rate) {
  console.error(`redis bench: latency, ${apps.length} instance(s), ${rate} events/s`);
  let recording = false;
  const samples = [];
  let delivered = 0;
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const app = apps[i % apps.length];
    const room = `room-${i % ROOMS}`;
    let partial = '';
    clients.push(
      openClient(app.port, `/events?room=${room}`, {}, (text, at) => {
        const blocks = (partial + text).split('\n\n');
        partial = blocks.pop();
        if (!recording) return;
        for (const block of blocks) {
          const start = block.indexOf('data: t=');
          if (start < 0) continue;
          const stamp = Number(block.slice(start + 8, block.indexOf(';', start)));
          samples.push((at - stamp) / 1e6);
          delivered++;
        }
      }),
    );
    // Connect in small batches: a thousand SYNs at once overflows the accept backlog.
    if (i % 100 === 99) await Promise.all(clients.slice(i - 99));
  }
  const open = await Promise.all(clients);
  const rooms = Array.from({ length: ROOMS }, (_, i) => `room-${i}`);
  const publishing = apps.map((app) =>
    app.call('publishAtRate', { rate: rate / apps.length, rooms, ms: WARMUP_MS + MEASURE_MS, size: PAYLOAD }),
  );
  await sleep(WARMUP_MS);
  recording = true;
  const measuredFrom = now();
  await sleep(MEASURE_MS);
  recording = false;
  const seconds = (now() - measuredFrom) / 1e9;
  const published = await Promise.all(publishing);
  for (const client of open) client.close();
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? Number.NaN;
  return {
    clients: CLIENTS,
    rooms: ROOMS,
    rate: published.reduce((sum, p) => sum + p.published / p.seconds, 0),
    failed: published.reduce((sum, p) => sum + p.failed, 0),
    deliveriesPerSecond: delivered / seconds,
    p50: at(0.5),
    p99: at(0.99),
    max: samples.at(-1) ?? Number.NaN,
  };
}

/** Stores REPLAY_EVENTS events in `room` through `app`; resolves to the first id. */
async function prefill(app, room) {
  return (await app.call('prefill', { room, count: REPLAY_EVENTS, size: REPLAY_PAYLOAD })).first;
}

/** Replay throughput: a client resumes from `first`, the first of REPLAY_EVENTS, timed to the last. */
async function replay(replayApp, room, first) {
  console.error('redis bench: replay');
  const rates = [];
  let bytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    let count = 0;
    let received = 0;
    let done;
    const finished = new Promise((resolve) => {
      done = resolve;
    });
    const start = now();
    // An event ends with a blank line, which may straddle two chunks.
    let endedWithNewline = false;
    const client = await openClient(
      replayApp.port,
      `/replay?room=${room}`,
      { 'last-event-id': first },
      (text, at) => {
        received += Buffer.byteLength(text);
        if (endedWithNewline && text[0] === '\n') count++;
        let i = text.indexOf('\n\n');
        while (i >= 0) {
          count++;
          i = text.indexOf('\n\n', i + 2);
        }
        endedWithNewline = text.endsWith('\n');
        if (count >= REPLAY_EVENTS - 1) done(at);
      },
    );
    const timer = setTimeout(() => done(Number.NaN), 30_000);
    const end = await finished;
    clearTimeout(timer);
    if (Number.isNaN(end)) throw new Error(`replay stalled at ${count} of ${REPLAY_EVENTS - 1} events`);
    client.close();
    rates.push((REPLAY_EVENTS - 1) / ((end - start) / 1e9));
    bytes = received;
  }
  const firstRound = rates[0];
  rates.sort((a, b) => a - b);
  return {
    events: REPLAY_EVENTS - 1,
    bytes,
    perSecond: rates[rates.length >> 1],
    firstRound,
    rounds: ROUNDS,
  };
}

const results = {};
try {
  const redis = await startRedis();

  // Redis: two instances on one Redis.
  const redisApps = [
    await startApp({ ENGINE: 'redis', REDIS_URL: redis.url }),
    await startApp({ ENGINE: 'redis', REDIS_URL: redis.url }),
  ];
  results.redisLatency = [];
  for (const rate of RATES) results.redisLatency.push(await latency(redisApps, rate));
  const usedBefore = Number((await redis.cli('INFO', 'memory')).match(/used_memory:(\d+)/)[1]);
  const redisFirst = await prefill(redisApps[0], 'replay');
  const usedAfter = Number((await redis.cli('INFO', 'memory')).match(/used_memory:(\d+)/)[1]);
  // Written through one instance, replayed through the other: the events come from Redis.
  results.redisReplay = await replay(redisApps[1], 'replay', redisFirst);
  const usage = Number(await redis.cli('MEMORY', 'USAGE', 'sse:{replay}', 'SAMPLES', '0'));
  const length = Number(await redis.cli('XLEN', 'sse:{replay}'));
  results.redisMemory = {
    perEventKey: usage / length,
    perEventInfo: (usedAfter - usedBefore) / length,
    length,
  };
  await Promise.all(redisApps.map((app) => app.stop()));

  // Memory: one instance (an in-memory channel cannot span two), same clients and rate.
  const memoryApp = await startApp({ ENGINE: 'memory' });
  results.memoryLatency = [];
  for (const rate of RATES) results.memoryLatency.push(await latency([memoryApp], rate));
  const heapBefore = await memoryApp.call('heapUsed');
  const memoryFirst = await prefill(memoryApp, 'replay');
  const heapAfter = await memoryApp.call('heapUsed');
  results.memoryReplay = await replay(memoryApp, 'replay', memoryFirst);
  results.memoryMemory = { perEventHeap: (heapAfter - heapBefore) / REPLAY_EVENTS };
  await memoryApp.stop();

  results.shape = { CLIENTS, ROOMS, RATES, PAYLOAD, WARMUP_MS, MEASURE_MS, REPLAY_EVENTS, REPLAY_PAYLOAD };
  console.log(JSON.stringify(results));
  process.exit(0);
} catch (error) {
  console.error(error);
  process.exit(1);
}
