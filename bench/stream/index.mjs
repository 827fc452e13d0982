import { readFileSync } from 'node:fs';
import { serverCpu, startChild } from '../lib/child.mjs';
import { measureBurst, measureFanout, readEvents, stalledClient } from '../lib/client.mjs';
import * as h from '../lib/harness.mjs';

/** For quick looks: contenders by name (default: all), workloads. */
const KNOBS = h.knobs('STREAM', { contenders: [], workloads: ['burst', 'fanout', 'stall'], stallTrials: 3 });
const BURST = 100_000;
const FANOUT = { clients: 500, events: 2_000, warmup: 200, batch: 100 };
/** Stalled client: 1 KiB events; the warm-up read before the baseline (~20 MiB); RSS samples (ms). */
const STALL = { events: 200_000, warmup: 20_000, settle: 12_000, samples: [5_000, 15_000] };
const MiB = 1024 * 1024;
/** rxsse's default maxQueueBytes + 1 MiB. */
const GOAL_STALL = 2 * MiB;
const GOAL_RAW = 2;

const version = (name) =>
  JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
const [express, fastify, nest] = ['express', 'fastify', '@nestjs/core'].map(version);
const hono = `Hono ${version('hono')}`;
const bun = `Bun ${version('bun')}`;
const honoServer = `@hono/node-server ${version('@hono/node-server')}`;
const nestJs = (platform, flavour) => {
  const label = flavour === 'rxsse' ? `rxsse · NestJS ${nest} @RxSse` : `NestJS ${nest} @Sse`;
  return { label: `${label} (platform-${platform})`, server: ['nest', platform, flavour] };
};

// `server`: its file in servers/ and arguments (default: the name); `bun`: run by Bun, no stalled
// client. Every `rxsse-*` contender has the raw and stall goals; any must beat each `versus` peer by
// its factor.
const CONTENDERS = [
  { name: 'rxsse-express', label: `rxsse · Express ${express}` },
  { name: 'rxsse-fastify', label: `rxsse · Fastify ${fastify}` },
  { name: 'rxsse-koa', label: `rxsse · Koa ${version('koa')}` },
  { name: 'raw', label: 'node:http, one write per event (baseline)' },
  { name: 'batching', label: 'node:http, one write per tick (reference)' },
  { name: 'chunks', label: 'node:http, 64 KiB chunks sent at once (reference)', server: ['batching', 65536] },
  { name: 'rxsse-nest-express', ...nestJs('express', 'rxsse'), versus: { nest: 10 } },
  { name: 'rxsse-nest-fastify', ...nestJs('fastify', 'rxsse'), versus: { 'nest-fastify': 10 } },
  { name: 'nest', ...nestJs('express', 'sse') },
  { name: 'nest-fastify', ...nestJs('fastify', 'sse') },
  { name: 'rxsse-hono', label: `rxsse · ${hono} (@rxsse/web on ${honoServer})`, versus: { hono: 1 } },
  { name: 'hono', label: `${hono} streamSSE (${honoServer})` },
  { name: 'better-sse', label: `better-sse ${version('better-sse')} (Express ${express})` },
  { name: 'fastify-sse', label: `@fastify/sse ${version('@fastify/sse')} (Fastify ${fastify})` },
  { name: 'bun-rxsse', label: `rxsse · ${bun} (@rxsse/web on Bun.serve)`, versus: { 'bun-hand': 0.9 } },
  { name: 'bun-hand', label: `${bun}, a hand-written Bun.serve stream (one enqueue per event)` },
].map((c) => (c.name.startsWith('bun-') ? { ...c, bun: true, server: ['bun', c.name.slice(4)] } : c));

export const description = `Whole servers, one child process each, clients in the parent. **burst**: 100,000 small
events emitted at once to one client, events/s until the last arrives (median of 3 runs after 3 warm-up runs). **fan-out**: 500 clients × 2,000
events of one Subject (100 per macrotask), deliveries/s. **stalled**: 200,000 × 1 KiB events to a socket
that never reads: the server's RSS growth after 5 s and 15 s over a warmed-up, settled baseline (after
full GCs; median of the trials, each on a fresh server), and whether the server closed it. ×raw: median
over rounds of the ratio to the raw baseline in the same round. B/event: body bytes per burst event.
Burst routes raise their queue caps above the burst (64 Mi); every other route runs on defaults. The
Bun contenders run burst and fan-out only.`;

export const defaults = { rounds: 3 };

export const summary = ({ rounds }) =>
  `${rounds} interleaved rounds of burst and fan-out per contender (fresh server each round, warm-up runs ` +
  'first); the stalled client in interleaved trials, each on a fresh server; medians shown';

const log = h.progress('stream');
const mib = (bytes) =>
  Number.isFinite(bytes) ? `${bytes >= 0 ? '+' : ''}${(bytes / MiB).toFixed(1)} MiB` : '–';
const seconds = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

function start({ name, server = [name], bun = false }) {
  // @fastify/sse adds listeners per pending write: MaxListenersExceededWarning floods stderr.
  const execArgv = ['--no-warnings'];
  const [file, ...args] = server.map(String);
  const url = new URL(`./servers/${file}.mjs`, import.meta.url);
  return startChild(url, { args, execArgv, bun, cpu: serverCpu });
}

async function throughput(server, workloads) {
  const result = { burst: Number.NaN, fanout: Number.NaN, errors: [] };
  try {
    if (workloads.includes('burst')) Object.assign(result, await measureBurst(server.info.port, BURST));
  } catch (error) {
    result.errors.push(`burst: ${error.message}`);
  }
  try {
    if (workloads.includes('fanout')) result.fanout = await measureFanout(server, FANOUT);
  } catch (error) {
    result.errors.push(`fan-out: ${error.message}`);
  } finally {
    await server.stop();
  }
  return result;
}

/**
 * The stalled client: RSS growth at each sample, and when the server closed it. RSS is what the
 * allocator holds, not what the server keeps, so the baseline is taken on a warm, settled server: the
 * route read first by a client that keeps up, then STALL.settle ms for V8's memory reducer (it shrinks
 * the heap ~8 s after allocation stops). Without both, a server that keeps nothing shows ±13 MiB.
 */
async function stalled(contender) {
  const server = await start(contender);
  let client;
  try {
    await readEvents(server.info.port, `/stall?n=${STALL.warmup}`, STALL.warmup);
    await h.sleep(STALL.settle);
    const earlier = await server.request('sockets');
    if (earlier.opened > earlier.lifetimes.length) throw new Error('the warm-up connection is still open');
    const before = await server.request('rss', { settle: 200 });
    const started = performance.now();
    client = stalledClient(server.info.port, `/stall?n=${STALL.events}`);
    const growth = [];
    for (const at of STALL.samples) {
      await h.sleep(at - (performance.now() - started));
      growth.push((await server.request('rss', { settle: 200 })) - before);
    }
    return { growth, closedAfter: (await server.request('sockets')).lifetimes[earlier.lifetimes.length] };
  } catch (error) {
    return { error: error.message };
  } finally {
    client?.close();
    await server.stop();
  }
}

/** The stall cells: medians over the trials that ran, and in how many the server closed. */
function stallCells(trials) {
  const ok = trials.filter((t) => !t.error);
  if (ok.length === 0) return { cells: Array(3).fill(trials.length ? 'error' : '–'), error: trials.length };
  const growth = STALL.samples.map((_, i) => h.median(ok.map((t) => t.growth[i])));
  const closed = ok.map((t) => t.closedAfter).filter((ms) => ms !== undefined);
  let verdict = `${closed.length} of ${ok.length} trials`;
  if (closed.length === ok.length) verdict = `yes, after ${seconds(h.median(closed))}`;
  if (closed.length === 0) verdict = 'no';
  return { cells: [...growth.map(mib), verdict], worst: Math.max(...growth) };
}

export async function run({ rounds }) {
  const { workloads, stallTrials: trials, contenders: only } = KNOBS;
  const contenders = only.length > 0 ? CONTENDERS.filter((c) => only.includes(c.name)) : CONTENDERS;
  const byName = Object.fromEntries(contenders.map((c) => [c.name, c]));
  const names = contenders.map((c) => c.name);
  const timed = workloads.includes('burst') || workloads.includes('fanout') ? rounds : 0;
  const measured = await h.interleave(names, timed, async (name, round) => {
    const r = await throughput(await start(byName[name]), workloads);
    const line = `burst ${h.rate(r.burst)} ev/s, fan-out ${h.rate(r.fanout)} ${r.errors.join('; ')}`;
    log(`round ${round + 1}/${rounds} ${name}: ${line}`);
    return r;
  });
  const stalling = names.filter((name) => !byName[name].bun);
  const stalls = await h.interleave(
    stalling,
    workloads.includes('stall') ? trials : 0,
    async (name, trial) => {
      const s = await stalled(byName[name]);
      log(`stalled ${trial + 1}/${trials} ${name}: ${s.error ?? stallCells([s]).cells.join(', ')}`);
      return s;
    },
  );

  const samples = (name, key) => measured[name].map((r) => r[key]);
  const paired = (name, key, peer) =>
    !byName[peer] ? Number.NaN : name === peer ? 1 : h.pairedRatio(samples(name, key), samples(peer, key));
  const rows = [];
  const goals = [];
  const errors = [];
  for (const c of contenders) {
    const stall = stallCells(stalls[c.name] ?? []);
    const cells = (key) => [h.rate(h.median(samples(c.name, key))), h.ratio(paired(c.name, key, 'raw'))];
    const perEvent = h.rate(h.median(samples(c.name, 'bytesPerEvent')));
    rows.push([c.label, perEvent, ...cells('burst'), ...cells('fanout'), ...stall.cells]);
    const failures = measured[c.name].flatMap((r) => r.errors);
    if (failures.length > 0) errors.push(`\nErrors, ${c.name}: ${failures.join('; ')}`);
    const rxsse = c.name.startsWith('rxsse-');
    for (const [key, workload] of Object.entries({ burst: 'burst', fanout: 'fan-out' })) {
      if (!workloads.includes(key)) continue;
      for (const [peer, target] of Object.entries({ ...(rxsse && { raw: GOAL_RAW }), ...c.versus })) {
        const name = `stream: ${workload} ${c.name} >= ${target}x ${peer}`;
        if (byName[peer]) goals.push(h.atLeast(name, paired(c.name, key, peer), target));
      }
    }
    if (!rxsse || !workloads.includes('stall')) continue;
    const name = `stream: stalled ${c.name} RSS growth <= cap + 1 MiB (${mib(GOAL_STALL)})`;
    goals.push({ name, pass: stall.worst <= GOAL_STALL, actual: stall.error ? 'error' : mib(stall.worst) });
  }
  const headers = ['contender', 'B/event', 'burst ev/s', '×raw', 'fan-out deliveries/s', '×raw'];
  headers.push('stalled RSS +5 s', '+15 s', 'closed the stalled client?');
  const percent = (name, key) => `${Math.round(100 * h.spread(samples(name, key)))}%`;
  const spreads = names.map((name) => `${name} ${percent(name, 'burst')} / ${percent(name, 'fanout')}`);
  const spreadLine = `Spread ((max − min) / median over rounds), burst / fan-out: ${spreads.join(', ')}.`;
  return { markdown: [h.table(headers, rows), '', spreadLine, ...errors].join('\n'), goals };
}
