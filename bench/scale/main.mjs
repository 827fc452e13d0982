// Orchestrates the scale suite: for every phase and contender, a fresh server child and a fresh client
// child (see server.mjs, client.mjs), driven over IPC. Prints progress to stderr and the results as
// JSON to the file named by the first argument (or to stdout). Run by suites/scale.mjs; standalone:
//
//   node scale/main.mjs [out.json]
//
// Environment (for profiling and quick looks; the suite uses the defaults):
//   SCALE_PHASES=idle,churn,fanout   phases to run          SCALE_KINDS=http,rxsse-express,...
//   SCALE_CONNECTIONS=10000          idle connections       SCALE_HEARTBEAT=2000 (ms)
//   SCALE_FANOUT_ROUNDS=2            fan-out rounds (the report keeps each contender's best)
//   SCALE_SERVER_ARGS="--cpu-prof"   extra node flags for the server children

import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fdLimit, killAll, sleep, startChild } from './proc.mjs';

const env = process.env;
const config = {
  connections: Number(env.SCALE_CONNECTIONS ?? 10_000),
  heartbeat: Number(env.SCALE_HEARTBEAT ?? 2_000),
  heartbeatRounds: 4,
  churnCycles: Number(env.SCALE_CHURN ?? 10_000),
  churnConcurrency: 50,
  fanoutClients: Number(env.SCALE_FANOUT_CLIENTS ?? 5_000),
  fanoutEvents: Number(env.SCALE_FANOUT_EVENTS ?? 200),
  fanoutRate: Number(env.SCALE_FANOUT_RATE ?? 50),
  limit: fdLimit(),
};
const phases = (env.SCALE_PHASES ?? 'idle,churn,fanout').split(',');
const only = env.SCALE_KINDS?.split(',');
const serverArgs = env.SCALE_SERVER_ARGS?.split(' ').filter(Boolean) ?? [];
const kinds = (list) => (only ? list.filter((kind) => only.includes(kind)) : list);

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length === 0
    ? Number.NaN
    : sorted.length % 2
      ? sorted[mid]
      : (sorted[mid - 1] + sorted[mid]) / 2;
};
const log = (line) => process.stderr.write(`[scale] ${line}\n`);
const deadline = Date.now() + 7 * 60_000;

/** Polls `check()` until it returns true; throws after `ms`. */
async function until(check, ms, what) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** One fresh server (KIND) and one fresh client process; both are stopped whatever happens. */
async function withPair(kind, fn) {
  if (Date.now() > deadline) throw new Error('time budget of the suite exhausted');
  let server;
  let client;
  try {
    const start = () =>
      startChild('server', [kind], {
        limit: config.limit,
        nodeArgs: serverArgs,
        env: { SCALE_HEARTBEAT: String(config.heartbeat) },
      });
    // One retry: a package being rebuilt meanwhile (its dist/ briefly gone) fails the first import.
    server = await start().catch(async (error) => {
      log(`${kind}: server did not start (${error.message}); retrying once`);
      await sleep(3_000);
      return start();
    });
    client = await startChild('client', [], { limit: config.limit });
    return await fn(server, client, server.info.port);
  } finally {
    await client?.stop();
    await server?.stop();
  }
}

const streamsAre = (server, n) => async () => (await server.request('count')).streams === n;
const socketsAre = (server, n) => async () => (await server.request('count')).sockets === n;

/** 1 + 2: memory of N idle connections, then the event loop while heartbeats go out. */
async function idle(kind) {
  return withPair(kind, async (server, client, port) => {
    const n = config.connections;
    // Warm-up: the first requests compile the handler and grow pools; they are not per-connection.
    await client.request('churn', { port, path: '/sse', cycles: 200, concurrency: 50 });
    await until(socketsAre(server, 0), 10_000, 'warm-up connections to close');
    const before = await server.request('memory');
    const open = await client.request('open', { port, path: '/sse', count: n, concurrency: 200 });
    if (open.opened !== n) throw new Error(`${kind}: opened ${open.opened} of ${n} (${open.failed} failed)`);
    await until(streamsAre(server, n), 10_000, `${n} streams`);
    const after = await server.request('memory');
    const result = {
      kind,
      connectMs: open.ms,
      heapPerConnection: (after.memory.heapUsed - before.memory.heapUsed) / n,
      rssPerConnection: (after.memory.rss - before.memory.rss) / n,
      externalPerConnection: (after.memory.external - before.memory.external) / n,
      before: before.memory,
      after: after.memory,
    };
    log(
      `${kind}: ${n} idle in ${open.ms.toFixed(0)} ms; heap ${result.heapPerConnection.toFixed(0)} B/conn, rss ${result.rssPerConnection.toFixed(0)} B/conn`,
    );
    if (kind !== 'express') {
      await client.request('mark');
      await server.request('loopStart');
      // A little over N rounds, so the N-th round's maximum is read before the stop.
      await sleep(config.heartbeat * config.heartbeatRounds + 300);
      result.loop = await server.request('loopStop');
      result.received = await client.request('stats');
      result.loop.roundMaxMedian = median(result.loop.roundMax);
      result.loop.cpuRoundMaxMedian = median(result.loop.cpuRoundMax);
      log(
        `${kind}: heartbeats: longest block per round ${result.loop.roundMax.map((x) => x.toFixed(1)).join(', ')} ms (CPU ${result.loop.cpuRoundMax.map((x) => x.toFixed(1)).join(', ')} ms), longest GC ${result.loop.gc.max.toFixed(1)} ms, p99 ${result.loop.p99.toFixed(1)} ms, elu ${(result.loop.elu * 100).toFixed(1)}%, busiest 100 ms slot ${result.received.busiestSlot} chunks`,
      );
    }
    await client.request('closeAll');
    return result;
  });
}

/** 3: connect/disconnect cycles, then everything a leak would leave behind. */
async function churn(kind) {
  return withPair(kind, async (server, client, port) => {
    const { churnCycles: cycles, churnConcurrency: concurrency } = config;
    await client.request('churn', { port, path: '/churn', cycles: 500, concurrency });
    await until(socketsAre(server, 0), 10_000, 'warm-up connections to close');
    const before = await server.request('resources');
    const run = await client.request('churn', { port, path: '/churn', cycles, concurrency });
    await until(socketsAre(server, 0), 10_000, 'churned connections to close');
    const after = await server.request('resources');
    const listenerDelta = {};
    for (const key of new Set([...Object.keys(before.listeners), ...Object.keys(after.listeners)])) {
      const delta = (after.listeners[key] ?? 0) - (before.listeners[key] ?? 0);
      if (delta !== 0) listenerDelta[key] = delta;
    }
    const result = {
      kind,
      cycles: run.cycles,
      failed: run.failed,
      seconds: run.ms / 1000,
      subscribed: after.subscriptions.total - before.subscriptions.total,
      liveSubscriptions: after.subscriptions.live,
      heartbeatTargets: after.heartbeatTargets,
      openStreams: after.openStreams,
      streams: after.streams,
      listenerDelta,
      timeoutDelta: after.timeouts - before.timeouts,
      heapDelta: after.memory.heapUsed - before.memory.heapUsed,
      rssDelta: after.memory.rss - before.memory.rss,
      active: after.active,
    };
    log(
      `${kind}: ${cycles} cycles in ${result.seconds.toFixed(1)} s (${run.failed} failed); live subs ${result.liveSubscriptions}, heap ${(result.heapDelta / 1024).toFixed(0)} KiB`,
    );
    return result;
  });
}

/** 4: one Subject, many clients, timestamped events. */
async function fanout(kind) {
  return withPair(kind, async (server, client, port) => {
    const { fanoutClients: n, fanoutEvents: events, fanoutRate: rate } = config;
    const open = await client.request('open', { port, path: '/fanout', count: n, concurrency: 200 });
    if (open.opened !== n) throw new Error(`${kind}: opened ${open.opened} of ${n}`);
    await until(streamsAre(server, n), 10_000, `${n} streams`);
    await sleep(200);
    await client.request('fanoutArm', { expected: n * events });
    // The server's CPU time over the whole fan-out, until the last delivery arrived: unlike
    // deliveries/s, another process on the machine cannot make it look worse.
    const cpuBefore = await server.request('cpu');
    const sent = await server.request('fanout', { events, rate });
    const got = await client.request('fanoutWait', {});
    const cpuAfter = await server.request('cpu');
    const seconds = (got.lastReceive - sent.first) / 1000;
    const result = {
      kind,
      clients: n,
      events,
      rate,
      publishSeconds: (sent.last - sent.first) / 1000,
      seconds,
      deliveries: got.deliveries,
      expected: n * events,
      deliveriesPerSecond: got.deliveries / seconds,
      p50: got.p50,
      p99: got.p99,
      max: got.max,
      fewestPerClient: got.fewestPerClient,
      serverCpuPerDelivery: ((cpuAfter.main - cpuBefore.main) * 1000) / got.deliveries,
      serverProcessCpuPerDelivery: ((cpuAfter.process - cpuBefore.process) * 1000) / got.deliveries,
      serverElu: sent.elu,
      serverLoopMax: sent.loopMax,
      clientElu: got.elu,
    };
    log(
      `${kind}: ${got.deliveries}/${n * events} deliveries in ${seconds.toFixed(1)} s, ${Math.round(result.deliveriesPerSecond)}/s, p99 ${got.p99.toFixed(1)} ms; server CPU ${result.serverCpuPerDelivery.toFixed(2)} µs/delivery, elu ${(sent.elu * 100).toFixed(0)}%, client elu ${(got.elu * 100).toFixed(0)}%`,
    );
    await client.request('closeAll');
    return result;
  });
}

const started = Date.now();
const results = {
  load: { before: loadavg()[0] },
  env: {
    date: new Date().toISOString().slice(0, 10),
    node: process.version,
    cpu: `${cpus()[0]?.model ?? 'unknown'} (${cpus().length} threads)`,
    platform: `${process.platform}-${process.arch}`,
  },
  config,
  idle: [],
  churn: [],
  fanout: [],
  errors: [],
};
const plan = {
  idle: [idle, kinds(['http', 'express', 'rxsse-node', 'rxsse-express'])],
  churn: [churn, kinds(['http', 'rxsse-node', 'rxsse-express'])],
  // Fan-out is timed: two rounds, and the report keeps each contender's better one.
  fanout: [
    fanout,
    kinds(['http', 'express', 'rxsse-node', 'rxsse-express']),
    Number(env.SCALE_FANOUT_ROUNDS ?? 2),
  ],
};
log(`fd limit ${config.limit}; phases ${phases.join(', ')}`);
// A client and a server each hold every connection: both need a descriptor per connection.
const most = Math.max(config.connections, config.fanoutClients);
if (config.limit < most + 256) {
  const fit = config.limit - 256;
  log(`ulimit -Hn is ${config.limit}: scaling ${most} connections down to ${fit}`);
  config.connections = Math.min(config.connections, fit);
  config.fanoutClients = Math.min(config.fanoutClients, fit);
}
try {
  for (const phase of phases) {
    const [run, list, rounds = 1] = plan[phase];
    // Rounds alternate the order, so a busy spell of the machine hits every contender alike.
    const order = Array.from({ length: rounds }, (_, round) =>
      round % 2 ? [...list].reverse() : list,
    ).flat();
    let longest = 0;
    for (const [i, kind] of order.entries()) {
      // Extra rounds only while the time budget allows one more run of the slowest seen so far.
      if (i >= list.length && Date.now() + longest * 1.2 > deadline) {
        log(`${phase}: skipping the rest of round ${Math.floor(i / list.length) + 1} (time budget)`);
        break;
      }
      const begun = Date.now();
      try {
        results[phase].push({ ...(await run(kind)), round: Math.floor(i / list.length) });
      } catch (error) {
        log(`${phase} ${kind} failed: ${error.stack ?? error}`);
        results.errors.push(`${phase} ${kind}: ${error.message ?? error}`);
      }
      longest = Math.max(longest, Date.now() - begun);
    }
  }
} finally {
  killAll();
}
results.seconds = (Date.now() - started) / 1000;
results.load.after = loadavg()[0];
log(`done in ${results.seconds.toFixed(0)} s`);
const json = JSON.stringify(results, null, 2);
if (process.argv[2]) writeFileSync(process.argv[2], json);
else console.log(json);
process.exit(0);
