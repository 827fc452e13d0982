import { readEvents } from '../lib/client.mjs';
import { median, rate, table } from '../lib/harness.mjs';
import { bounded, loadCells, lossCell, measureLoad, startApp } from '../lib/redis-load.mjs';
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

/** `rounds` times, a client resumes from `first`, the first of the topic `replay`. */
async function replay(app, first, rounds) {
  const rates = [];
  let bytes = 0;
  for (let round = 0; round < rounds; round++) {
    const start = performance.now();
    const path = `/topic/replay?replay&lastEventId=${first}`;
    const read = await readEvents(app.info.port, path, REPLAY_EVENTS - 1);
    if (read.count < REPLAY_EVENTS - 1) throw new Error(`the replay ended after ${read.count} events`);
    rates.push((REPLAY_EVENTS - 1) / ((performance.now() - start) / 1000));
    bytes = read.bytes;
  }
  const megabytes = ((median(rates) * bytes) / (REPLAY_EVENTS - 1) / 1e6).toFixed(1);
  return [rate(REPLAY_EVENTS - 1), rate(rates[0]), rate(median(rates)), megabytes];
}

/** Latency at each of RATES on `apps`, then the memory (`used()`) and replay of REPLAY_EVENTS. */
async function measureEngine(apps, used, rounds) {
  const latency = [];
  for (const r of RATES) latency.push(await measureLoad({ apps, rate: r, ...LOAD }));
  const before = await used();
  const first = await apps[0].request('prefill', PREFILL);
  const grown = (await used()) - before;
  return { instances: apps.length, latency, grown, replay: await replay(apps.at(-1), first, rounds) };
}

async function measureAll(rounds) {
  const redis = await startRedis();
  const apps = await Promise.all([redis.env(), redis.env(), { ENGINE: 'memory' }].map(startApp));
  try {
    const usedMemory = async () => Number((await redis.fields('INFO', 'memory')).used_memory);
    // Written through one instance, replayed through the other: the events come from Redis.
    const onRedis = await measureEngine(apps.slice(0, 2), usedMemory, rounds);
    const length = Number(await redis.cli('XLEN', 'sse:{replay}'));
    const usage = Number(await redis.cli('MEMORY', 'USAGE', 'sse:{replay}', 'SAMPLES', '0'));
    const heap = async () => (await apps[2].request('memory')).heapUsed;
    const inMemory = await measureEngine(apps.slice(2), heap, rounds);
    const memory = [
      ['redis', Math.round(usage / length), '`MEMORY USAGE` of the stream / `XLEN`'],
      ['redis', Math.round(onRedis.grown / length), '`INFO memory` used_memory delta / events'],
      ['memory', Math.round(inMemory.grown / REPLAY_EVENTS), 'V8 heap delta (after gc) / events'],
    ];
    return { engines: { redis: onRedis, memory: inMemory }, memory };
  } finally {
    await Promise.all(apps.map((app) => app.stop()));
    redis.stop();
  }
}

function report(r) {
  const engines = Object.entries(r.engines);
  const latencyRows = RATES.flatMap((_, i) =>
    engines.map(([engine, e]) => [engine, e.instances, ...loadCells(e.latency[i]), lossCell(e.latency[i])]),
  );
  const replayRows = engines.map(([engine, e]) => [engine, ...e.replay]);
  const headers = (names) => names.split('|');
  const latency = 'engine|instances|published ev/s|deliveries/s|p50 ms|p99 ms|max ms|lost / twice / failed';
  const markdown = [
    `**Publish-to-deliver latency** (${rate(LOAD.clients)} clients)\n`,
    table(headers(latency), latencyRows),
    `\n**Replay** (one client resumes ${rate(REPLAY_EVENTS - 1)} events of ${REPLAY_PAYLOAD} bytes)\n`,
    table(headers('engine|events|first round ev/s|median ev/s|median MB/s (wire)'), replayRows),
    `\n**Memory per stored event** (${REPLAY_PAYLOAD}-byte payloads)\n`,
    table(headers('engine|bytes/event|measured as'), r.memory),
  ].join('\n');
  return { markdown, goals: [] };
}

export const run = ({ rounds }) => bounded(240_000, async () => report(await measureAll(rounds)));
