// Channels on Redis Streams (@rxsse/redis) against the in-memory channel, end to end over HTTP:
// publish-to-deliver latency with two app instances on one Redis, replay throughput, and memory
// per stored event. The work runs in its own process (lib/redis-bench-run.mjs), which starts and
// stops its own redis-server and app instances on loopback; this file only formats what it reports.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { rate, table } from '../lib/harness.mjs';

export const description = [
  'Publish-to-deliver latency: 1,000 SSE clients over node:http, 10 rooms of 100, events of ~120 bytes',
  'stamped with the monotonic clock when `publish` is called and read when the chunk reaches the client;',
  '2 s warm-up, then 5 s measured. Redis: two app processes on one local redis-server, each publishing',
  'half. Memory: one app process (an in-memory channel cannot span two). Replay: one client resumes',
  'from the first of 20,000 events of 200 bytes (`XRANGE` pages of 500 to the socket, or the ring),',
  'median of the rounds (the in-memory ring hands out the same objects again, so after the first round',
  'their bytes come from the encoder cache; Redis builds new ones per read). Memory per event: after',
  'storing those 20,000 events.',
].join('\n');

/** The run's shape, for runners that print one line above the tables. */
export function summary({ rounds }) {
  return `one run per load level; replay: median of ${rounds} rounds; needs redis-server and built packages`;
}

const ms = (value) => (value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US'));

export function run({ rounds }) {
  const script = fileURLToPath(new URL('../lib/redis-bench-run.mjs', import.meta.url));
  const child = spawnSync(process.execPath, ['--expose-gc', script, String(rounds)], {
    encoding: 'utf8',
    timeout: 170_000,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const last = child.stdout?.trim().split('\n').at(-1) ?? '';
  if (child.status !== 0 || !last.startsWith('{')) {
    const why = child.error?.message ?? `exit ${child.status ?? child.signal}`;
    return { markdown: `_not run: ${why} (is redis-server installed, and the packages built?)_`, goals: [] };
  }
  const r = JSON.parse(last);

  // Row pairs per load level: Redis, then memory at the same rate.
  const latencyRows = r.redisLatency.flatMap((redis, i) =>
    [
      ['redis', 2, redis],
      ['memory', 1, r.memoryLatency[i]],
    ].map(([engine, instances, l]) => [
      engine,
      instances,
      rate(l.rate),
      rate(l.deliveriesPerSecond),
      ms(l.p50),
      ms(l.p99),
      ms(l.max),
      l.failed,
    ]),
  );
  const mbPerSecond = (p, perSecond) => ((perSecond * p.bytes) / p.events / 1e6).toFixed(1);
  const replayRows = [
    ['redis', r.redisReplay],
    ['memory', r.memoryReplay],
  ].map(([engine, p]) => [
    engine,
    rate(p.events),
    rate(p.firstRound),
    rate(p.perSecond),
    mbPerSecond(p, p.perSecond),
  ]);
  const memoryRows = [
    ['redis', Math.round(r.redisMemory.perEventKey), '`MEMORY USAGE` of the stream / `XLEN`'],
    ['redis', Math.round(r.redisMemory.perEventInfo), '`INFO memory` used_memory delta / events'],
    ['memory', Math.round(r.memoryMemory.perEventHeap), 'V8 heap delta (after gc) / events'],
  ];

  const markdown = [
    '**Publish-to-deliver latency** (1,000 clients)',
    '',
    table(
      ['engine', 'instances', 'published ev/s', 'deliveries/s', 'p50 ms', 'p99 ms', 'max ms', 'failed'],
      latencyRows,
    ),
    '',
    `**Replay** (one client resumes ${rate(r.redisReplay.events)} events of ${r.shape.REPLAY_PAYLOAD} bytes)`,
    '',
    table(['engine', 'events', 'first round ev/s', 'median ev/s', 'median MB/s (wire)'], replayRows),
    '',
    `**Memory per stored event** (${r.shape.REPLAY_PAYLOAD}-byte payloads)`,
    '',
    table(['engine', 'bytes/event', 'measured as'], memoryRows),
  ].join('\n');
  return { markdown, goals: [] };
}
