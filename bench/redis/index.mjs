import { startChild } from '../lib/child.mjs';
import { readEvents } from '../lib/client.mjs';
import { median, rate, table } from '../lib/harness.mjs';
import { bounded, loadCells, lossCell, measureLoad } from '../lib/redis-load.mjs';
import { startRedis } from '../lib/redis-server.mjs';

const RATES = [1000, 100];
/** The latency load at each of RATES: 1,000 clients in 10 rooms, events of ~120 bytes. */
const LOAD = { clients: 1000, topics: 10, prefix: 'room-', size: 100, warmupMs: 2000, measureMs: 5000 };
const REPLAY_EVENTS = 20_000;
const REPLAY_PAYLOAD = 200;
const PREFILL = { topic: 'replay', count: REPLAY_EVENTS, size: REPLAY_PAYLOAD };

export const description = [
  'Publish-to-deliver latency: 1,000 SSE clients (one client process, eventsource-parser), 10 rooms of',
  '100, events of ~120 bytes stamped with the monotonic clock when `publish` is called and read on',
  'arrival; 2 s warm-up, then 5 s measured. Redis: two app processes on one local redis-server, each',
  'publishing half. Memory: one app process (an in-memory channel cannot span two). Replay: one client',
  'resumes from the first of 20,000 events of 200 bytes (`XRANGE` pages of 500 to the socket, or the',
  'ring), median of the rounds (the in-memory ring hands out the same objects again, so after the first',
  'round their bytes come from the encoder cache; Redis builds new ones per read). Memory per event:',
  'after storing those 20,000 events.',
].join('\n');

export function summary({ rounds }) {
  return `one run per load level; replay: median of ${rounds} rounds; needs redis-server and built packages`;
}

/** Replay: a client resumes from `first`, the first of REPLAY_EVENTS in `replay`; events/s per round. */
async function replay(server, first, rounds) {
  const rates = [];
  let bytes = 0;
  for (let round = 0; round < rounds; round++) {
    const start = performance.now();
    const path = `/topic/replay?replay&lastEventId=${first}`;
    const read = await readEvents(server.info.port, path, REPLAY_EVENTS - 1);
    if (read.count < REPLAY_EVENTS - 1) throw new Error(`the replay ended after ${read.count} events`);
    rates.push((REPLAY_EVENTS - 1) / ((performance.now() - start) / 1000));
    bytes = read.bytes;
  }
  return { firstRound: rates[0], perSecond: median(rates), bytesPerEvent: bytes / (REPLAY_EVENTS - 1) };
}

async function measureAll(rounds) {
  const redis = await startRedis();
  const started = [];
  const start = async (env) => {
    const child = await startChild(new URL('../lib/redis-app.mjs', import.meta.url), { env });
    started.push(child);
    return child;
  };
  try {
    const redisApps = [await start(redis.env), await start(redis.env)];
    const redisLatency = [];
    for (const r of RATES) redisLatency.push(await measureLoad({ apps: redisApps, rate: r, ...LOAD }));
    const usedMemory = async () => Number((await redis.info('memory')).used_memory);
    const before = await usedMemory();
    const first = await redisApps[0].request('prefill', PREFILL);
    const length = Number(await redis.cli('XLEN', 'sse:{replay}'));
    const redisMemory = {
      key: Number(await redis.cli('MEMORY', 'USAGE', 'sse:{replay}', 'SAMPLES', '0')) / length,
      info: ((await usedMemory()) - before) / length,
    };
    // Written through one instance, replayed through the other: the events come from Redis.
    const redisReplay = await replay(redisApps[1], first, rounds);

    const memoryApp = await start({ ENGINE: 'memory' });
    const memoryLatency = [];
    for (const r of RATES) memoryLatency.push(await measureLoad({ apps: [memoryApp], rate: r, ...LOAD }));
    const heapBefore = (await memoryApp.request('memory')).heap;
    const memoryFirst = await memoryApp.request('prefill', PREFILL);
    const heap = ((await memoryApp.request('memory')).heap - heapBefore) / REPLAY_EVENTS;
    const memoryReplay = await replay(memoryApp, memoryFirst, rounds);
    return { redisLatency, memoryLatency, redisReplay, memoryReplay, redisMemory, heap };
  } finally {
    await Promise.all(started.map((child) => child.stop()));
    redis.stop();
  }
}

function report(r) {
  const latencyRow = (engine, instances, l) => [engine, instances, ...loadCells(l), lossCell(l)];
  const latencyRows = RATES.flatMap((_, i) => [
    latencyRow('redis', 2, r.redisLatency[i]),
    latencyRow('memory', 1, r.memoryLatency[i]),
  ]);
  const replayRow = (engine, p) => {
    const megabytes = ((p.perSecond * p.bytesPerEvent) / 1e6).toFixed(1);
    return [engine, rate(REPLAY_EVENTS - 1), rate(p.firstRound), rate(p.perSecond), megabytes];
  };
  const replayRows = [replayRow('redis', r.redisReplay), replayRow('memory', r.memoryReplay)];
  const memoryRows = [
    ['redis', Math.round(r.redisMemory.key), '`MEMORY USAGE` of the stream / `XLEN`'],
    ['redis', Math.round(r.redisMemory.info), '`INFO memory` used_memory delta / events'],
    ['memory', Math.round(r.heap), 'V8 heap delta (after gc) / events'],
  ];
  const headers = (names) => names.split('|');
  const latency = 'engine|instances|published ev/s|deliveries/s|p50 ms|p99 ms|max ms|lost / twice / failed';
  const markdown = [
    `**Publish-to-deliver latency** (${rate(LOAD.clients)} clients)\n`,
    table(headers(latency), latencyRows),
    `\n**Replay** (one client resumes ${rate(REPLAY_EVENTS - 1)} events of ${REPLAY_PAYLOAD} bytes)\n`,
    table(headers('engine|events|first round ev/s|median ev/s|median MB/s (wire)'), replayRows),
    `\n**Memory per stored event** (${REPLAY_PAYLOAD}-byte payloads)\n`,
    table(headers('engine|bytes/event|measured as'), memoryRows),
  ].join('\n');
  return { markdown, goals: [] };
}

export const run = ({ rounds }) => bounded(() => measureAll(rounds), 240_000, report);
