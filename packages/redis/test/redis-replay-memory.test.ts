// What an open subscription keeps once its replay is written: nothing of the replayed events.
import { request } from 'node:http';
import { getHeapSpaceStatistics } from 'node:v8';
import { type ChannelEngine, createChannel } from '@rxsse/core/channel';
import { until } from '@rxsse/core/testing';
import { createParser } from 'eventsource-parser';
import { describe, expect, it } from 'vitest';
import { gc } from '../../../test/support/gc.js';
import { redisEngine } from '../src/index.js';
import { startStreamServer } from './support/stream-server.js';
import { useRedis } from './support/use-redis.js';

const EVENTS = 950;
const CONNECTIONS = 20;

const redis = useRedis();

/**
 * Heap in use for data after full collections, once it stops shrinking: compiled code is left out,
 * since what the JIT optimizes meanwhile says nothing about what a connection keeps.
 */
async function settledHeap(): Promise<number> {
  let last = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    const used = getHeapSpaceStatistics()
      .filter((space) => !space.space_name.startsWith('code'))
      .reduce((sum, space) => sum + space.space_used_size, 0);
    if (used >= last * 0.999) return used;
    last = used;
  }
  return last;
}

/** An SSE client that only counts the events it parses, so it keeps nothing itself. */
function countingClient(url: string, lastEventId: string) {
  const state = { events: 0, close: () => {} };
  const parser = createParser({
    onEvent() {
      state.events++;
    },
  });
  const req = request(url, { headers: { 'last-event-id': lastEventId } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => parser.feed(chunk));
  });
  req.on('error', () => {});
  req.end();
  state.close = () => req.destroy();
  return state;
}

/** Heap retained per open connection after each replayed `EVENTS` events over a real server. */
async function retainedPerConnection(engine: ChannelEngine): Promise<number> {
  const channel = createChannel(engine, 'replay');
  const first = await channel.publish({ data: 'first' });
  // About 300 bytes each: ~285 KB of replay per connection, within the default maxReplay.
  for (let i = 0; i < EVENTS; i++) await channel.publish({ data: { i, text: 'x'.repeat(280) } });
  const server = await startStreamServer((context) => channel.subscribe(context), { heartbeat: 60_000 });
  // One connection first, so lazily created modules and pools are in the baseline.
  const warm = countingClient(server.url, first);
  await until(() => warm.events === EVENTS, 'the warm-up replay');
  const before = await settledHeap();
  const clients = Array.from({ length: CONNECTIONS }, () => countingClient(server.url, first));
  await until(() => clients.every((c) => c.events === EVENTS), 'every replay');
  const after = await settledHeap();
  for (const client of [warm, ...clients]) client.close();
  await server.close();
  await engine.close();
  return (after - before) / CONNECTIONS;
}

describe('an open Redis subscription after its replay', () => {
  it('keeps no replayed event: heap per connection stays small', async () => {
    const perConnection = await retainedPerConnection(redisEngine({ url: redis.server.url, blockMs: 100 }));
    expect(perConnection, `${Math.round(perConnection / 1024)} KB per connection`).toBeLessThan(50 * 1024);
  });
});
