// Proof at scale: rxsse (on Express, and on bare node:http through openEventStream) against bare
// node:http holding the same connections. For every phase and contender, a fresh server child
// (server.mjs) and a fresh client child (clients.mjs), both with a raised `ulimit -n`.

import { loadavg } from 'node:os';
import { fdLimit, startChild } from '../lib/child.mjs';
import * as h from '../lib/harness.mjs';

/** SCALE_* (SCALE_FANOUT_CLIENTS=...): the suite's sizes, and the phases and kinds that run. */
const config = h.knobs('SCALE', {
  phases: ['idle', 'churn', 'fanout'],
  kinds: ['http', 'express', 'rxsse-node', 'rxsse-express'],
  connections: 10_000,
  heartbeat: 2_000,
  churn: 10_000,
  fanoutClients: 5_000,
  fanoutEvents: 200,
  fanoutRate: 50,
  fanoutRounds: 2,
  serverArgs: '', // extra node flags for the server children, say `--cpu-prof`
});
const HEARTBEAT_ROUNDS = 4;
const BUDGET = 7 * 60_000;

export const description = [
  'rxsse on Express and on node:http (`openEventStream`) against bare node:http holding the same',
  'connections, each server in its own process (`node --expose-gc`), the clients (node:http, one more',
  'process) on 127.0.0.1. Heartbeat 2,000 ms. Heap and RSS after full GCs. Event-loop blocks: the',
  "main thread's CPU time between 1 ms samples (Linux schedstat), so another process cannot inflate",
  'them, and the wall-clock `monitorEventLoopDelay` besides; GC pauses count in both. Both cores are',
  'shared by server and clients: the fan-out figures are those of this machine as a whole.',
].join('\n');

export const summary = () =>
  'one run per phase and contender (fan-out: rounds in alternating order, the best shown)';

const log = h.progress('scale');

/** A fresh server of `kind` and a fresh client process for `fn`; both stopped whatever happens. */
async function withPair(kind, fn) {
  if (Date.now() > config.deadline) throw new Error('time budget of the suite exhausted');
  const { limit, heartbeat } = config;
  const execArgv = config.serverArgs.split(' ').filter(Boolean);
  const url = (file) => new URL(file, import.meta.url);
  let server;
  let client;
  try {
    const env = { SCALE_HEARTBEAT: String(heartbeat) };
    server = await startChild(url('./server.mjs'), { args: [kind], limit, execArgv, env });
    client = await startChild(url('./clients.mjs'), { limit });
    /** Waits until the server counts `n` of `key` (sockets, streams). */
    const counted = (key, n, what) =>
      h.until(async () => (await server.request('count'))[key] === n, 10_000, what);
    return await fn({ server, client, port: server.info.port, counted });
  } finally {
    await client?.stop();
    await server?.stop();
  }
}

/** Idle memory of N connections, then the event loop while heartbeats go out. */
const idle = (kind) =>
  withPair(kind, async ({ server, client, port, counted }) => {
    const n = config.connections;
    // Warm-up: the first requests compile the handler and grow pools; they are not per-connection.
    await client.request('churn', { port, path: '/sse', cycles: 200, concurrency: 50 });
    await counted('sockets', 0, 'warm-up connections to close');
    const before = await server.request('memory');
    const open = await client.request('open', { port, path: '/sse', count: n });
    if (open.opened !== n) throw new Error(`opened ${open.opened} of ${n} (${open.failed} failed)`);
    await counted('streams', n, `${n} streams`);
    const after = await server.request('memory');
    const perConnection = (key) => (after[key] - before[key]) / n;
    const row = { kind, connectMs: open.ms, heap: perConnection('heapUsed'), rss: perConnection('rss') };
    if (kind !== 'express') {
      await client.request('mark');
      await server.request('loopStart');
      // A little over the rounds, so the last round's maximum is read before the stop.
      await h.sleep(config.heartbeat * HEARTBEAT_ROUNDS + 300);
      row.loop = await server.request('loopStop');
      row.received = await client.request('stats');
    }
    await client.request('closeAll');
    log(`idle ${kind}: ${Math.round(row.heap)} B heap per connection`);
    return row;
  });

/** Connect/disconnect cycles, then everything a leak would leave behind. */
const churn = (kind) =>
  withPair(kind, async ({ server, client, port, counted }) => {
    const cycle = async (cycles) => {
      const run = await client.request('churn', { port, path: '/churn', cycles, concurrency: 50 });
      await counted('sockets', 0, 'churned connections to close');
      return run;
    };
    await cycle(500);
    const before = await server.request('resources');
    const run = await cycle(config.churn);
    const after = await server.request('resources');
    const keys = new Set([...Object.keys(before.listeners), ...Object.keys(after.listeners)]);
    const added = [...keys].map((key) =>
      Math.abs((after.listeners[key] ?? 0) - (before.listeners[key] ?? 0)),
    );
    log(`churn ${kind}: ${run.failed} failed, ${after.live} live subscriptions`);
    return {
      ...after,
      kind,
      seconds: run.ms / 1000,
      failed: run.failed,
      subscribed: after.total - before.total,
      listeners: added.reduce((sum, n) => sum + n, 0),
      timeouts: (after.active.Timeout ?? 0) - (before.active.Timeout ?? 0),
      heapDelta: after.memory.heapUsed - before.memory.heapUsed,
      rssDelta: after.memory.rss - before.memory.rss,
    };
  });

/** One Subject, many clients, timestamped events. */
const fanout = (kind) =>
  withPair(kind, async ({ server, client, port, counted }) => {
    const { fanoutClients: n, fanoutEvents: events, fanoutRate: rate } = config;
    const open = await client.request('open', { port, path: '/fanout', count: n });
    if (open.opened !== n) throw new Error(`opened ${open.opened} of ${n}`);
    await counted('streams', n, `${n} streams`);
    await h.sleep(200);
    await client.request('fanoutArm', { expected: n * events });
    // The server's CPU time until the last delivery: unlike deliveries/s, another process on the
    // machine cannot make it look worse.
    const cpuBefore = await server.request('cpu');
    const sent = await server.request('fanout', { events, rate });
    const got = await client.request('fanoutWait');
    const cpuAfter = await server.request('cpu');
    const seconds = (got.lastReceive - sent.first) / 1000;
    await client.request('closeAll');
    const cpu = ((cpuAfter.main - cpuBefore.main) * 1000) / got.deliveries;
    const perSecond = got.deliveries / seconds;
    log(`fanout ${kind}: ${Math.round(perSecond)}/s, ${cpu.toFixed(1)} µs per delivery`);
    return {
      ...got,
      kind,
      seconds,
      perSecond,
      cpu,
      expected: n * events,
      serverElu: sent.elu,
      clientElu: got.elu,
    };
  });

const PLAN = {
  idle: [idle, ['http', 'express', 'rxsse-node', 'rxsse-express']],
  churn: [churn, ['http', 'rxsse-node', 'rxsse-express']],
  fanout: [fanout, ['http', 'express', 'rxsse-node', 'rxsse-express']],
};

export async function run() {
  config.limit = fdLimit();
  // A client and a server each hold every connection: both need a descriptor per connection.
  config.connections = Math.min(config.connections, config.limit - 256);
  config.fanoutClients = Math.min(config.fanoutClients, config.limit - 256);
  const results = { idle: [], churn: [], fanout: [], errors: [], load: [loadavg()[0]] };
  const started = Date.now();
  config.deadline = started + BUDGET;
  for (const phase of config.phases) {
    const [measure, all] = PLAN[phase];
    const list = all.filter((kind) => config.kinds.includes(kind));
    const rounds = phase === 'fanout' ? config.fanoutRounds : 1;
    // Rounds alternate the order, so a busy spell of the machine hits every contender alike; extra
    // rounds only while the time budget allows one more run of the slowest so far.
    const order = Array.from({ length: rounds }, (_, r) => (r % 2 ? [...list].reverse() : list)).flat();
    let longest = 0;
    for (const [i, kind] of order.entries()) {
      if (i >= list.length && Date.now() + longest * 1.2 > config.deadline) break;
      const begun = Date.now();
      try {
        results[phase].push(await measure(kind));
      } catch (error) {
        log(`${phase} ${kind} failed: ${error.stack ?? error}`);
        results.errors.push(`${phase} ${kind}: ${error.message ?? error}`);
      }
      longest = Math.max(longest, Date.now() - begun);
    }
  }
  results.seconds = (Date.now() - started) / 1000;
  results.load.push(loadavg()[0]);
  return report(results);
}

const KB = 1024;
const int = (x) => Math.round(x).toLocaleString('en-US');
const ms = (x) => `${x.toFixed(1)} ms`;
const bytes = (x) => `${int(x)} B`;
const signed = (x) => `${x >= 0 ? '+' : '−'}${int(Math.abs(x))} B`;
const kib = (x) => `${x >= 0 ? '+' : '−'}${int(Math.abs(x) / KB)} KiB`;
const pct = (x) => `${(x * 100).toFixed(0)}%`;
const list = (values, cell = (x) => x.toFixed(1)) => values.map(cell).join(', ');
const CONTENDERS = ['rxsse-express', 'rxsse-node'];
const SHORT = { 'rxsse-express': 'Express', 'rxsse-node': 'node:http' };
const LABEL = { ...SHORT, express: 'Express alone', http: 'bare node:http' };
const label = (kind) => (SHORT[kind] ? `rxsse on ${LABEL[kind]}` : LABEL[kind]);

/** A details table: one row per kind present in `phase`, one column per `[header, cell]`. */
const details = (phase, kinds, title, columns) =>
  h.table(
    [title, ...columns.map(([header]) => header)],
    kinds
      .filter((kind) => phase[kind])
      .map((kind) => [label(kind), ...columns.map(([, cell]) => cell(phase[kind]))]),
  );

/** The main table: one row per measure, a cell per contender and the baseline, and the goals. */
function summaryTable() {
  const rows = [];
  const goals = [];
  /** `cell` per contender and the baseline (`baseCell`, if it differs); goals when `pass` is given. */
  const line = (measure, goal, phase, cell, pass, baseCell = cell) => {
    const cells = CONTENDERS.map((kind) => (phase[kind] ? cell(phase[kind]) : 'n/a'));
    const verdicts = CONTENDERS.map((kind) => (!phase[kind] ? 'n/a' : pass?.(phase[kind]) ? 'PASS' : 'MISS'));
    const base = phase.http ? baseCell(phase.http) : 'n/a';
    rows.push([measure, goal, ...cells, base, goal === 'info' ? 'info' : verdicts.join(' / ')]);
    if (goal === 'info') return;
    for (const [i, kind] of CONTENDERS.entries()) {
      const name = `scale: ${measure} (${SHORT[kind]})`;
      if (phase[kind]) goals.push({ name, pass: verdicts[i] === 'PASS', actual: cells[i] });
    }
  };
  const info = (measure, phase, cell, baseCell) => line(measure, 'info', phase, cell, undefined, baseCell);
  const headers = ['measure', 'goal', 'rxsse on Express', 'rxsse on node:http', 'bare node:http'];
  const markdown = () => h.table([...headers, 'result (Express / node:http)'], rows);
  return { line, info, goals, markdown };
}

/** The markdown tables and goals of one run. */
function report(results) {
  const by = (rows) => Object.fromEntries(rows.map((row) => [row.kind, row]));
  const [idle, churn] = [by(results.idle), by(results.churn)];
  // Fan-out: each contender's best round stands for it; CPU per delivery is the least of the rounds.
  const rounds = (kind) => results.fanout.filter((row) => row.kind === kind);
  const fan = by([...results.fanout].sort((a, b) => a.perSecond - b.perSecond));
  const cpu = (kind) => Math.min(...rounds(kind).map((r) => r.cpu));
  const { line, info, goals, markdown } = summaryTable();
  const versus = (row, text, base) => (row.kind === 'http' ? text : `${text} (${base})`);

  const n = int(config.connections);
  const bare = idle.http;
  if (bare) {
    // rxsse on Express is measured against Express alone: what Express costs is no SSE library's to save.
    const floor = (row) => (row.kind === 'rxsse-express' && idle.express) || bare;
    const express = (row) =>
      floor(row) === bare ? '' : `; ${signed(row.heap - floor(row).heap)} over Express alone`;
    const heap = (row) => versus(row, bytes(row.heap), `${signed(row.heap - bare.heap)}${express(row)}`);
    const pass = (row) => row.heap - floor(row).heap <= KB;
    line(`heap per idle connection (${n})`, '≤ +1 KB over the same server without rxsse', idle, heap, pass);
    const rss = (row) => versus(row, bytes(row.rss), signed(row.rss - bare.rss));
    info(`RSS per idle connection (${n})`, idle, rss);
  }
  const hb = Object.fromEntries(Object.entries(idle).filter(([, row]) => row.loop));
  const at = `heartbeats at ${n}`;
  /** A cell that shows `value(row)` in ms, and its test against `limit`. */
  const within = (value, limit) => [(row) => ms(value(row)), (row) => value(row) <= limit];
  const round = `longest block per ${config.heartbeat} ms round, main-thread CPU (median of rounds)`;
  line(`${at}: ${round}`, '≤ 5 ms', hb, ...within((row) => h.median(row.loop.cpuRoundMax), 5));
  const wall = (row) => `${ms(h.median(row.loop.roundMax))} (${ms(row.loop.max)})`;
  info(`${at}: the same in wall-clock time (median of rounds; max)`, hb, wall);
  line(`${at}: p99 event-loop delay`, '≤ 10 ms', hb, ...within((row) => row.loop.p99, 10));
  info(`${at}: event-loop utilization`, hb, (row) => `${(row.loop.elu * 100).toFixed(1)}%`);

  const cycles = `churn ${int(config.churn)}`;
  const subscriptions = (row) => `${row.live} of ${int(row.subscribed)}`;
  const clean = (row) => row.live === 0 && row.subscribed === config.churn;
  line(`${cycles}: live subscriptions after`, '0', churn, subscriptions, clean, () => 'n/a');
  const registrations = (row) => `${row.heartbeats}, ${row.openStreams}`;
  const unregistered = (row) => row.heartbeats === 0 && row.openStreams === 0;
  const open = (row) => `${row.streams} open responses`;
  line(
    `${cycles}: heartbeat registrations, openStreams after`,
    '0, 0',
    churn,
    registrations,
    unregistered,
    open,
  );
  const none = (key) => [(row) => `${row[key]}`, (row) => row[key] === 0];
  line(`${cycles}: server + process listeners added`, '0', churn, ...none('listeners'));
  line(`${cycles}: active 'Timeout's added`, '0', churn, ...none('timeouts'));
  const heapDelta = [(row) => kib(row.heapDelta), (row) => row.heapDelta <= KB * KB];
  line(`${cycles}: heap after − before (after GC)`, '≤ 1 MB', churn, ...heapDelta);

  const fanTitle = `fan-out ${int(config.fanoutClients)} × ${config.fanoutEvents} events (${config.fanoutRate}/s asked)`;
  const perSecond = (row) => `${int(row.perSecond)}/s`;
  const fanRatio = (row) => (row.perSecond / fan.http?.perSecond).toFixed(2);
  info(`${fanTitle}: deliveries/s`, fan, (row) => versus(row, perSecond(row), `${fanRatio(row)}x`));
  info(`${fanTitle}: p99 publish-to-receive`, fan, (row) => ms(row.p99));
  const cpuCell = (row) =>
    versus(row, `${cpu(row.kind).toFixed(1)} µs`, `${(cpu(row.kind) / cpu('http')).toFixed(2)}x`);
  info(`${fanTitle}: server main-thread CPU per delivery`, fan, cpuCell);

  const [before, after] = results.load.map((x) => x.toFixed(1));
  const header = `${h.environment()} · fd limit ${config.limit} · ${Math.round(results.seconds)} s · load average ${before} → ${after}`;
  const kinds = ['rxsse-express', 'rxsse-node', 'express', 'http'];
  const watched = (key, cell) => (row) => (row[key] ? cell(row[key]) : 'n/a');
  const tables = [
    markdown(),
    details(idle, kinds, `idle ${n}`, [
      ['connect all', (row) => ms(row.connectMs)],
      ['heap/conn', (row) => bytes(row.heap)],
      ['RSS/conn', (row) => bytes(row.rss)],
      ['longest block per round, CPU (ms)', watched('loop', (loop) => list(loop.cpuRoundMax))],
      ['wall clock (ms)', watched('loop', (loop) => list(loop.roundMax))],
      ['longest GC', watched('loop', (loop) => ms(loop.gc.max))],
      ['heartbeats in busiest 100 ms', watched('received', (received) => int(received.busiestSlot))],
      ['heartbeats received', watched('received', (received) => int(received.chunks))],
    ]),
    details(fan, kinds, 'fan-out (best round)', [
      ['delivered', (row) => `${int(row.deliveries)} / ${int(row.expected)}`],
      ['publish → last receive', (row) => `${row.seconds.toFixed(1)} s`],
      ['deliveries/s', perSecond],
      ['all rounds (/s)', (row) => list(rounds(row.kind), (r) => int(r.perSecond))],
      ['server CPU per delivery, all rounds (µs)', (row) => list(rounds(row.kind).map((r) => r.cpu))],
      ...['p50', 'p99', 'max'].map((key) => [key, (row) => ms(row[key])]),
      ['server ELU', (row) => pct(row.serverElu)],
      ['client ELU', (row) => pct(row.clientElu)],
    ]),
    details(churn, ['rxsse-express', 'rxsse-node', 'http'], 'churn', [
      ['time', (row) => `${row.seconds.toFixed(1)} s`],
      ['failed', (row) => String(row.failed)],
      ['heap after − before', (row) => kib(row.heapDelta)],
      ['RSS after − before', (row) => kib(row.rssDelta)],
      ['active resources after', (row) => list(Object.entries(row.active), (entry) => entry.join(' '))],
    ]),
  ];
  for (const error of results.errors) goals.push({ name: `scale: ${error}`, pass: false, actual: 'failed' });
  const errors = results.errors.length > 0 ? `\n\nErrors: ${results.errors.join('; ')}` : '';
  return { markdown: `${header}\n\n${tables.join('\n\n')}${errors}`, goals };
}
