// Whole servers, measured from the outside: rxsse on each adapter against a hand-written node:http
// baseline, a hand-written batching reference and the SSE libraries people would otherwise use.
// Every server runs in a child process of its own (servers/*.mjs, one per contender), so its RSS
// is its own and the clients, here in this process, load the other core. See README.md.
//
// Environment knobs (for profiling and quick looks; a normal run needs none):
//   STREAM_CONTENDERS=raw,rxsse-express   only these contenders (names of servers/*.mjs)
//   STREAM_WORKLOADS=burst,fanout         only these workloads (burst, fanout, stall)
//   STREAM_CPU_PROF=DIR                   start every server with --cpu-prof, profiles into DIR
//   STREAM_STALL_TRIALS=N                 stalled-client trials per contender (default 3)

import { readFileSync } from 'node:fs';
import { startServer } from '../lib/child.mjs';
import { median, rate, ratio, table } from '../lib/harness.mjs';
import { connectFanout, measureBurst, readEvents, stalledClient } from '../lib/sse-client.mjs';

const BURST_EVENTS = 100_000;
const FANOUT_CLIENTS = 500;
const FANOUT_EVENTS = 2_000;
/** Fan-out events the Subject emits per macrotask. */
const FANOUT_BATCH = 100;
/** Fan-out warm-up on the same connections, before the measured emission. */
const FANOUT_WARMUP = 200;
const STALL_EVENTS = 200_000;
/** Events the warm-up client reads from the stall route before the baseline (~20 MiB). */
const STALL_WARMUP = 20_000;
/** Idle time between the warm-up and the baseline, for V8's memory reducer to run. */
const STALL_SETTLE = 12_000;
const STALL_SAMPLES = [5_000, 15_000];
/**
 * Stalled-client trials per contender, each on a fresh server; the table shows their medians. One
 * trial's RSS at +5 s moves by a few MiB with the allocator's state alone (see README.md).
 */
const STALL_TRIALS = 3;
const MiB = 1024 * 1024;
/** rxsse's default maxQueueBytes. */
const CAP = MiB;
const GOAL_BURST = 2.0;
const GOAL_FANOUT = 2.0;
const GOAL_STALL = CAP + MiB;
/** rxsse on NestJS against Nest's own `@Sse()` on the same platform, burst and fan-out. */
const GOAL_VERSUS_SSE = 10;

/** The installed version of a bench dependency (read from disk: not every package exports it). */
const version = (name) =>
  JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;

const CONTENDERS = [
  { name: 'rxsse-express', label: `rxsse · Express ${version('express')}`, rxsse: true },
  { name: 'rxsse-fastify', label: `rxsse · Fastify ${version('fastify')}`, rxsse: true },
  { name: 'rxsse-koa', label: `rxsse · Koa ${version('koa')}`, rxsse: true },
  { name: 'raw', label: 'node:http, one write per event (baseline)' },
  { name: 'batching', label: 'node:http, one write per tick (reference)' },
  { name: 'chunks', label: 'node:http, 64 KiB chunks sent at once (reference)' },
  {
    name: 'rxsse-nest-express',
    label: `rxsse · NestJS ${version('@nestjs/core')} @RxSse (platform-express)`,
    rxsse: true,
    versus: 'nest',
  },
  {
    name: 'rxsse-nest-fastify',
    label: `rxsse · NestJS ${version('@nestjs/core')} @RxSse (platform-fastify)`,
    rxsse: true,
    versus: 'nest-fastify',
  },
  { name: 'nest', label: `NestJS ${version('@nestjs/core')} @Sse (platform-express)` },
  { name: 'nest-fastify', label: `NestJS ${version('@nestjs/core')} @Sse (platform-fastify)` },
  {
    name: 'rxsse-hono',
    label: `rxsse · Hono ${version('hono')} (@rxsse/web on @hono/node-server ${version('@hono/node-server')})`,
    rxsse: true,
    versus: 'hono',
    versusGoal: 1,
  },
  {
    name: 'hono',
    label: `Hono ${version('hono')} streamSSE (@hono/node-server ${version('@hono/node-server')})`,
  },
  { name: 'better-sse', label: `better-sse ${version('better-sse')} (Express ${version('express')})` },
  { name: 'fastify-sse', label: `@fastify/sse ${version('@fastify/sse')} (Fastify ${version('fastify')})` },
];
const BASELINE = 'raw';

export const description = [
  'Whole servers, one child process each; the clients live in the parent (node:http, and a byte scan',
  'that counts events). **burst**: 100,000 small events emitted at once to one client, events/s until',
  `the last one arrives. **fan-out**: ${FANOUT_CLIENTS} clients × ${FANOUT_EVENTS.toLocaleString('en-US')} events from one shared rxjs Subject (${FANOUT_BATCH}`,
  'per macrotask), deliveries/s until the last client has its last event. **stalled**: 200,000 × 1 KiB',
  "events (1,000 per macrotask) to a raw socket that never reads: growth of the server's RSS 5 s and",
  '15 s after it connected (full GC before each sample; the baseline is taken on a warmed-up, settled',
  `server; median of ${STALL_TRIALS} trials, each on a fresh server) and whether the server closed the connection.`,
  '×raw: median over rounds of the ratio to the',
  'raw baseline in the same round. B/event: body bytes per burst event. The burst routes raise their',
  'queue caps above the burst (rxsse `maxQueueBytes`, NestJS `maxPendingDataLength`: 64 Mi; the',
  'two references likewise); every other route runs on defaults.',
].join('\n');

export const defaults = { rounds: 3 };

export const summary = ({ rounds }) =>
  `${rounds} interleaved rounds of burst and fan-out per contender (fresh server each round, one warm-up ` +
  'run each); the stalled client in interleaved trials, each on a fresh server; medians shown';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const progress = (line) => process.stderr.write(`  stream: ${line}\n`);
const list = (value) => value?.split(',').map((s) => s.trim());

function options() {
  const only = list(process.env.STREAM_CONTENDERS);
  const workloads = list(process.env.STREAM_WORKLOADS) ?? ['burst', 'fanout', 'stall'];
  const dir = process.env.STREAM_CPU_PROF;
  return {
    contenders: only ? CONTENDERS.filter((c) => only.includes(c.name)) : CONTENDERS,
    workloads: new Set(workloads),
    execArgv: ['--no-warnings', ...(dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [])],
    stallTrials: Number(process.env.STREAM_STALL_TRIALS ?? STALL_TRIALS),
  };
}

/** One round of burst and fan-out on a fresh server: a warm-up run of each, then the measured one. */
async function throughput(contender, { workloads, execArgv }) {
  const server = await startServer(contender.name, { execArgv });
  const result = { burst: Number.NaN, fanout: Number.NaN, bytesPerEvent: Number.NaN, errors: [] };
  try {
    if (workloads.has('burst')) {
      try {
        await measureBurst(server.port, BURST_EVENTS);
        const burst = await measureBurst(server.port, BURST_EVENTS);
        result.burst = burst.rate;
        result.bytesPerEvent = burst.bytesPerEvent;
      } catch (error) {
        result.errors.push(`burst: ${error.message}`);
      }
    }
    if (workloads.has('fanout')) {
      let clients;
      try {
        clients = await connectFanout(server, FANOUT_CLIENTS);
        await clients.measure(FANOUT_WARMUP, FANOUT_BATCH);
        result.fanout = await clients.measure(FANOUT_EVENTS, FANOUT_BATCH);
      } catch (error) {
        result.errors.push(`fan-out: ${error.message}`);
      } finally {
        clients?.close();
      }
    }
  } finally {
    await server.stop();
  }
  return result;
}

/**
 * The stalled client: RSS growth at each of STALL_SAMPLES, and whether the server closed it.
 *
 * RSS is what the allocator holds, not what the server keeps, so the baseline is taken on a warm,
 * settled server: first the same route read by a client that keeps up (or until the server drops
 * it), so the heap and malloc arenas have grown to this traffic; then STALL_SETTLE ms, so V8's
 * memory reducer, which shrinks the heap ~8 s after allocation stops, has run. Without both, a
 * server that keeps nothing shows anywhere from -13 to +13 MiB. Every sample follows a full GC.
 */
async function stalled(contender, { execArgv }) {
  const server = await startServer(contender.name, { execArgv });
  let client;
  try {
    await readEvents(server.port, `/stall?n=${STALL_WARMUP}`, STALL_WARMUP);
    await sleep(STALL_SETTLE);
    const earlier = await server.request('sockets');
    if (earlier.open > 0) throw new Error('the warm-up connection is still open');
    const before = await server.request('rss', { settle: 200 });
    const start = performance.now();
    client = stalledClient(server.port, `/stall?n=${STALL_EVENTS}`);
    const growth = [];
    for (const at of STALL_SAMPLES) {
      await sleep(at - (performance.now() - start));
      growth.push((await server.request('rss', { settle: 200 })) - before);
    }
    const sockets = await server.request('sockets');
    const closed = sockets.closed > earlier.closed;
    return { growth, closedAfter: closed ? sockets.lifetimes[earlier.closed] : undefined };
  } finally {
    client?.close();
    await server.stop();
  }
}

/** Medians over a contender's stalled-client trials; an error only if no trial succeeded. */
function summarizeStall(trials) {
  const ok = trials.filter((t) => !t.error);
  if (ok.length === 0) return { error: trials[0]?.error ?? 'no trial' };
  const closedAfter = ok.map((t) => t.closedAfter).filter((ms) => ms !== undefined);
  return {
    growth: STALL_SAMPLES.map((_, i) => median(ok.map((t) => t.growth[i]))),
    trials: ok.length,
    closed: closedAfter.length,
    closedAfter: closedAfter.length > 0 ? median(closedAfter) : undefined,
  };
}

const mib = (bytes) => `${bytes >= 0 ? '+' : ''}${(bytes / MiB).toFixed(1)} MiB`;
const seconds = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
const spread = (samples) => {
  const ok = samples.filter(Number.isFinite);
  return ok.length > 1 ? (Math.max(...ok) - Math.min(...ok)) / median(ok) : 0;
};

export async function run({ rounds }) {
  const { contenders, workloads, execArgv, stallTrials } = options();
  const samples = Object.fromEntries(
    contenders.map((c) => [c.name, { burst: [], fanout: [], bytesPerEvent: Number.NaN, errors: [] }]),
  );
  if (workloads.has('burst') || workloads.has('fanout')) {
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < contenders.length; k++) {
        const contender = contenders[(round + k) % contenders.length];
        const r = await throughput(contender, { workloads, execArgv });
        const s = samples[contender.name];
        s.burst.push(r.burst);
        s.fanout.push(r.fanout);
        s.errors.push(...r.errors);
        if (Number.isFinite(r.bytesPerEvent)) s.bytesPerEvent = r.bytesPerEvent;
        progress(
          `round ${round + 1}/${rounds} ${contender.name}: burst ${rate(r.burst)} ev/s, fan-out ${rate(r.fanout)} deliveries/s${r.errors.length ? ` (${r.errors.join('; ')})` : ''}`,
        );
      }
    }
  }
  const stalls = {};
  if (workloads.has('stall')) {
    const trials = Object.fromEntries(contenders.map((c) => [c.name, []]));
    for (let trial = 0; trial < stallTrials; trial++) {
      for (let k = 0; k < contenders.length; k++) {
        const contender = contenders[(trial + k) % contenders.length];
        let s;
        try {
          s = await stalled(contender, { execArgv });
        } catch (error) {
          s = { error: error.message };
        }
        trials[contender.name].push(s);
        progress(
          `stalled ${trial + 1}/${stallTrials} ${contender.name}: ${s.error ?? `${s.growth.map(mib).join(' / ')}, closed ${s.closedAfter === undefined ? 'no' : `after ${seconds(s.closedAfter)}`}`}`,
        );
      }
    }
    for (const contender of contenders) stalls[contender.name] = summarizeStall(trials[contender.name]);
  }

  const base = samples[BASELINE];
  const summaryOf = (name, key, against = base) => {
    const values = samples[name]?.[key] ?? [];
    const ok = values.filter(Number.isFinite);
    if (ok.length === 0) return { median: Number.NaN, ratio: Number.NaN, spread: 0 };
    // Paired: each round's rate over the baseline's in the same round (see lib/harness.mjs).
    const ratios = against ? values.map((v, round) => v / against[key][round]).filter(Number.isFinite) : [];
    return {
      median: median(ok),
      ratio: ratios.length > 0 ? median(ratios) : Number.NaN,
      spread: spread(values),
    };
  };

  const rows = [];
  const goals = [];
  const cell = (value, format) => (Number.isFinite(value) ? format(value) : '–');
  for (const contender of contenders) {
    const burst = summaryOf(contender.name, 'burst');
    const fan = summaryOf(contender.name, 'fanout');
    const stall = stalls[contender.name];
    const stallCells = !stall
      ? ['–', '–', '–']
      : stall.error
        ? ['error', 'error', 'error']
        : [
            mib(stall.growth[0]),
            mib(stall.growth[1]),
            stall.closed === stall.trials
              ? `yes, after ${seconds(stall.closedAfter)}`
              : stall.closed === 0
                ? 'no'
                : `${stall.closed} of ${stall.trials} trials`,
          ];
    rows.push([
      contender.label,
      cell(samples[contender.name].bytesPerEvent, (b) => b.toFixed(0)),
      cell(burst.median, rate),
      contender.name === BASELINE ? '1.00x' : cell(burst.ratio, ratio),
      cell(fan.median, rate),
      contender.name === BASELINE ? '1.00x' : cell(fan.ratio, ratio),
      ...stallCells,
    ]);
    if (!contender.rxsse) continue;
    if (workloads.has('burst') && base) {
      goals.push({
        name: `stream: burst ${contender.name} >= ${GOAL_BURST}x raw`,
        pass: burst.ratio >= GOAL_BURST,
        actual: cell(burst.ratio, ratio),
      });
    }
    if (workloads.has('fanout') && base) {
      goals.push({
        name: `stream: fan-out ${contender.name} >= ${GOAL_FANOUT}x raw`,
        pass: fan.ratio >= GOAL_FANOUT,
        actual: cell(fan.ratio, ratio),
      });
    }
    const versus = contender.versus && samples[contender.versus];
    if (versus) {
      for (const [key, workload] of [
        ['burst', 'burst'],
        ['fanout', 'fan-out'],
      ]) {
        if (!workloads.has(key)) continue;
        const paired = summaryOf(contender.name, key, versus).ratio;
        const goal = contender.versusGoal ?? GOAL_VERSUS_SSE;
        goals.push({
          name: `stream: ${workload} ${contender.name} >= ${goal}x ${contender.versus}`,
          pass: paired >= goal,
          actual: cell(paired, ratio),
        });
      }
    }
    if (stall) {
      const worst = stall.error ? Number.NaN : Math.max(...stall.growth);
      goals.push({
        name: `stream: stalled ${contender.name} RSS growth <= cap + 1 MiB (${mib(GOAL_STALL)})`,
        pass: worst <= GOAL_STALL,
        actual: stall.error ? 'error' : mib(worst),
      });
    }
  }

  const markdown = [
    table(
      [
        'contender',
        'B/event',
        'burst ev/s',
        '×raw',
        'fan-out deliveries/s',
        '×raw',
        'stalled RSS +5 s',
        '+15 s',
        'closed the stalled client?',
      ],
      rows,
    ),
    '',
    `Spread ((max − min) / median over rounds), burst / fan-out: ${contenders
      .map((c) => {
        const s = samples[c.name];
        return `${c.name} ${Math.round(100 * spread(s.burst))}% / ${Math.round(100 * spread(s.fanout))}%`;
      })
      .join(', ')}.`,
    ...contenders
      .filter((c) => samples[c.name].errors.length > 0)
      .map((c) => `\nErrors, ${c.name}: ${samples[c.name].errors.join('; ')}`),
  ].join('\n');
  return { markdown, goals };
}
