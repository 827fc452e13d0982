import { loadavg } from 'node:os';
import { fdLimit, startChild } from '../lib/child.mjs';
import * as h from '../lib/harness.mjs';

const config = h.knobs('SCALE', {
  phases: ['idle', 'churn'],
  kinds: ['http', 'express', 'rxsse-node', 'rxsse-express'],
  connections: 10_000,
  heartbeat: 2_000,
  churn: 10_000,
});

export const description = [
  'rxsse on Express and on node:http (`openEventStream`) against bare node:http holding the same',
  'connections, each server in its own process (`node --expose-gc`), the clients (node:http, one more',
  'process) on 127.0.0.1. Heartbeat 2,000 ms. Heap and RSS after full GCs. Event-loop blocks: the',
  "main thread's CPU time between 1 ms samples (Linux schedstat), so another process cannot inflate",
  'them, and the wall-clock `monitorEventLoopDelay` besides; GC pauses count in both. Fan-out is the',
  "stream suite's.",
].join('\n');

export const summary = () => 'one run per phase and contender';

const log = h.progress('scale');

async function withPair(kind, fn) {
  if (Date.now() > config.deadline) throw new Error('time budget of the suite exhausted');
  const { limit } = config;
  let server;
  let client;
  try {
    // The server reads SCALE_HEARTBEAT from the environment it inherits.
    server = await startChild(new URL('./server.mjs', import.meta.url), { args: [kind], limit });
    const args = [String(server.info.port)];
    client = await startChild(new URL('./clients.mjs', import.meta.url), { args, limit });
    const connect = async (path, n) => {
      const failed = await client.request('open', { path, count: n });
      if (failed > 0) throw new Error(`${failed} of ${n} connections failed`);
      await h.until(async () => (await server.request('streams')) === n, 10_000, `${n} streams`);
    };
    const cycle = async (path, cycles) => {
      const failed = await client.request('churn', { path, cycles });
      await h.until(async () => (await server.request('sockets')) === 0, 10_000, 'sockets to close');
      return failed;
    };
    return await fn({ server, connect, cycle });
  } finally {
    await client?.stop();
    await server?.stop();
  }
}

const idle = (kind) =>
  withPair(kind, async ({ server, connect, cycle }) => {
    const n = config.connections;
    // Warm-up: the first requests compile the handler and grow pools; they are not per-connection.
    await cycle('/sse', 200);
    const before = await server.request('memory');
    await connect('/sse', n);
    const after = await server.request('memory');
    const perConnection = (key) => (after[key] - before[key]) / n;
    const row = { kind, heap: perConnection('heapUsed'), rss: perConnection('rss') };
    // Four rounds and a little, so the last round's maximum is read before the stop.
    if (kind !== 'express') row.loop = await server.request('watchLoop', { ms: config.heartbeat * 4 + 300 });
    log(`idle ${kind}: ${Math.round(row.heap)} B heap per connection`);
    return row;
  });

const churn = (kind) =>
  withPair(kind, async ({ server, cycle }) => {
    await cycle('/churn', 500);
    const before = await server.request('resources');
    const failed = await cycle('/churn', config.churn);
    const after = await server.request('resources');
    const added = (counts, key) => (after[counts][key] ?? 0) - (before[counts][key] ?? 0);
    const listeners = Object.keys({ ...before.listeners, ...after.listeners });
    log(`churn ${kind}: ${failed} failed, ${after.live} live subscriptions`);
    return {
      ...after,
      kind,
      subscribed: after.total - before.total,
      listeners: listeners.reduce((sum, key) => sum + Math.abs(added('listeners', key)), 0),
      timeouts: added('active', 'Timeout'),
      heapDelta: after.memory.heapUsed - before.memory.heapUsed,
    };
  });

export async function run() {
  config.limit = fdLimit();
  // A client and a server each hold every connection: both need a descriptor per connection.
  config.connections = Math.min(config.connections, config.limit - 256);
  const results = { idle: [], churn: [], errors: [] };
  const [started, load] = [Date.now(), loadavg()[0].toFixed(1)];
  config.deadline = started + 7 * 60_000;
  for (const phase of config.phases) {
    const measure = { idle, churn }[phase];
    // Express alone opens no stream that could leak: churn leaves it out.
    for (const kind of config.kinds.filter((kind) => phase !== 'churn' || kind !== 'express')) {
      try {
        results[phase].push(await measure(kind));
      } catch (error) {
        log(`${phase} ${kind} failed: ${error.stack ?? error}`);
        results.errors.push(`${phase} ${kind}: ${error.message ?? error}`);
      }
    }
  }
  const seconds = Math.round((Date.now() - started) / 1000);
  const after = loadavg()[0].toFixed(1);
  return report(results, `fd limit ${config.limit} · ${seconds} s · load average ${load} → ${after}`);
}

const KB = 1024;
const ms = (x) => `${x.toFixed(1)} ms`;
const bytes = (x) => `${h.rate(x)} B`;
const signed = (x, unit = 'B') => `${x >= 0 ? '+' : '−'}${h.rate(Math.abs(x))} ${unit}`;
const kib = (x) => signed(x / KB, 'KiB');
const CONTENDERS = ['rxsse-express', 'rxsse-node'];
const SHORT = { 'rxsse-express': 'Express', 'rxsse-node': 'node:http' };
const HEADERS = [
  'measure',
  'goal',
  'rxsse on Express',
  'rxsse on node:http',
  'bare node:http',
  'result (Express / node:http)',
];

function report(results, run) {
  const by = (rows) => Object.fromEntries(rows.map((row) => [row.kind, row]));
  const [idle, churn] = [by(results.idle), by(results.churn)];
  const versus = (row, text, base) => (row.kind === 'http' ? text : `${text} (${base})`);

  const rows = [];
  const goals = [];
  /** A main-table row: `cell` per contender and the baseline (`baseCell`, if it differs). */
  const line = (measure, phase, cell, goal = 'info', pass = undefined, baseCell = cell) => {
    const cells = CONTENDERS.map((kind) => (phase[kind] ? cell(phase[kind]) : 'n/a'));
    const verdicts = CONTENDERS.map((kind) => (!phase[kind] ? 'n/a' : pass?.(phase[kind]) ? 'PASS' : 'MISS'));
    const baseline = phase.http ? baseCell(phase.http) : 'n/a';
    rows.push([measure, goal, ...cells, baseline, pass ? verdicts.join(' / ') : goal]);
    for (const [i, kind] of CONTENDERS.entries()) {
      const name = `scale: ${measure} (${SHORT[kind]})`;
      if (pass && phase[kind]) goals.push({ name, pass: verdicts[i] === 'PASS', actual: cells[i] });
    }
  };

  const n = h.rate(config.connections);
  const bare = idle.http;
  if (bare) {
    // rxsse on Express is measured against Express alone: what Express costs is no SSE library's to save.
    const floor = (row) => (row.kind === 'rxsse-express' && idle.express) || bare;
    const express = (row) =>
      floor(row) === bare ? '' : `; ${signed(row.heap - floor(row).heap)} over Express alone`;
    const heap = (row) => versus(row, bytes(row.heap), `${signed(row.heap - bare.heap)}${express(row)}`);
    const pass = (row) => row.heap - floor(row).heap <= KB;
    line(`heap per idle connection (${n})`, idle, heap, '≤ +1 KB over the same server without rxsse', pass);
    const rss = (row) => versus(row, bytes(row.rss), signed(row.rss - bare.rss));
    line(`RSS per idle connection (${n})`, idle, rss);
  }
  const at = `heartbeats at ${n}`;
  const within = (value, limit) => [(row) => ms(value(row)), `≤ ${limit} ms`, (row) => value(row) <= limit];
  const round = `longest block per ${config.heartbeat} ms round, main-thread CPU (median of rounds)`;
  line(`${at}: ${round}`, idle, ...within((row) => h.median(row.loop.cpuRoundMax), 5));
  const wall = (row) => `${ms(h.median(row.loop.roundMax))} (${ms(row.loop.max)})`;
  line(`${at}: the same in wall-clock time (median of rounds; max)`, idle, wall);
  line(`${at}: p99 event-loop delay`, idle, ...within((row) => row.loop.p99, 10));
  line(`${at}: event-loop utilization`, idle, (row) => `${(row.loop.elu * 100).toFixed(1)}%`);

  const cycles = `churn ${h.rate(config.churn)}`;
  const subscriptions = (row) => `${row.live} of ${h.rate(row.subscribed)}`;
  const clean = (row) => row.live === 0 && row.subscribed === config.churn;
  line(`${cycles}: live subscriptions after`, churn, subscriptions, '0', clean, () => 'n/a');
  const left = (row) => `${row.heartbeats}, ${row.openStreams}`;
  const unregistered = (row) => row.heartbeats === 0 && row.openStreams === 0;
  const open = (row) => `${row.streams} open responses`;
  line(`${cycles}: heartbeat registrations, openStreams after`, churn, left, '0, 0', unregistered, open);
  const none = (key) => [(row) => `${row[key]}`, '0', (row) => row[key] === 0];
  line(`${cycles}: server + process listeners added`, churn, ...none('listeners'));
  line(`${cycles}: active 'Timeout's added`, churn, ...none('timeouts'));
  const heapDelta = [(row) => kib(row.heapDelta), '≤ 1 MB', (row) => row.heapDelta <= KB * KB];
  line(`${cycles}: heap after − before (after GC)`, churn, ...heapDelta);

  for (const error of results.errors) goals.push({ name: `scale: ${error}`, pass: false, actual: 'failed' });
  const errors = results.errors.length > 0 ? `\n\nErrors: ${results.errors.join('; ')}` : '';
  return {
    markdown: `${run}\n\n${h.table(HEADERS, rows)}${errors}`,
    goals,
  };
}
