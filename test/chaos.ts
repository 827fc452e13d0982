import { getHeapSpaceStatistics } from 'node:v8';
import {
  type CloseReason,
  heartbeatCount,
  type MessageEvent,
  type StreamOptions,
  type StreamStats,
} from '@rxsse/core';
import { concat, from, interval, map, NEVER, range, throwError, timer } from 'rxjs';
import { mergeMap } from 'rxjs/operators';
import { expect, it } from 'vitest';
import { httpRequest, type RawClient, rawRequests, sleep, waitFor } from './support/clients.js';
import { gc } from './support/gc.js';
import type { AdapterHarness, TestRoute, TransportTraits } from './support/harness.js';
import { recordUnhandledRejections } from './support/warnings.js';

/** A small seeded PRNG (mulberry32): the same seed replays the same attack. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * Heap in use after full GCs, without the spaces of compiled code and its metadata (code and, on
 * newer V8, trusted spaces): what V8 compiles as code paths get hot is not a leak.
 */
async function heapAfterGc(): Promise<number> {
  // Between collections, let pending finalizers, sockets' close callbacks and V8's concurrent
  // sweeping finish, or the figure counts garbage already found.
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  let used = 0;
  for (const space of getHeapSpaceStatistics()) {
    if (!/code|trusted/.test(space.space_name)) used += space.space_used_size;
  }
  return used;
}

/** What one round records: every open and close of every stream, and every error reported. */
class Ledger {
  opened = 0;
  readonly closes = new Map<StreamStats, CloseReason[]>();
  readonly errors: unknown[] = [];
  readonly options: StreamOptions = {
    maxQueueBytes: 64 * 1024,
    stallTimeout: 300,
    heartbeat: 50,
    metrics: {
      opened: () => this.opened++,
      wrote: () => {},
      heartbeat: () => {},
      dropped: () => {},
      closed: () => {},
    },
    onError: (error) => this.errors.push(error),
    onClose: (reason, stats) => this.closes.set(stats, [...(this.closes.get(stats) ?? []), reason]),
  };
}

function routes(ledger: Ledger, random: () => number): TestRoute[] {
  const kib = 'k'.repeat(1024);
  const options = ledger.options;
  return [
    { path: '/ticks', options, events: () => interval(5).pipe(map((n) => ({ id: String(n), data: { n } }))) },
    { path: '/burst', options, events: () => range(0, 5000).pipe(map(() => ({ data: kib }))) },
    {
      path: '/bad',
      options,
      events: () => concat(from([{ data: 'ok' }, { data: 'x', id: 'a\nb' }, { data: 'ok' }]), NEVER),
    },
    {
      path: '/fail',
      options,
      events: () =>
        timer(Math.floor(random() * 50)).pipe(mergeMap(() => throwError(() => new Error('source failed')))),
    },
    {
      path: '/iterate',
      options,
      events: () => {
        const fails = random() < 0.5;
        let n = 0;
        const iterator: AsyncIterableIterator<MessageEvent> = {
          async next() {
            await sleep(2);
            return { done: false, value: { data: String(n++) } };
          },
          async return() {
            if (fails) throw new Error('cleanup failed');
            return { done: true, value: undefined };
          },
          [Symbol.asyncIterator]() {
            return this;
          },
        };
        return iterator;
      },
    },
  ];
}

/** How long each round of attacks lasts. */
const ROUND_MS = 2500;

const PATHS = ['/ticks', '/burst', '/bad', '/fail', '/iterate'];

/** One client doing one random hostile thing, then going away. */
async function attack(url: string, random: () => number, traits: TransportTraits): Promise<void> {
  const path = PATHS[Math.floor(random() * PATHS.length)]!;
  let kind = Math.floor(random() * 7);
  // Pipelined streams on a server that never tells of their disconnect would only end at shutdown.
  if (kind === 0 && traits.missesQueuedDisconnects) kind = 2;
  const wait = Math.floor(random() * 150);
  let client: RawClient;
  if (kind === 0) client = await rawRequests(url, [httpRequest('GET', path), httpRequest('GET', path)]);
  else if (kind === 1) client = await rawRequests(url, [httpRequest('HEAD', path), httpRequest('GET', path)]);
  else client = await rawRequests(url, [httpRequest('GET', path)], kind !== 2);
  await sleep(wait);
  if (kind === 3) client.socket.resetAndDestroy();
  else if (kind === 4) {
    client.socket.end(); // half-close: the server may still write
    await sleep(wait);
    client.destroy();
  } else if (kind === 5) {
    client.socket.pause(); // a slow reader
    await sleep(wait);
    client.socket.resume();
    client.destroy();
  } else client.destroy();
}

/**
 * A bounded random mix of connects, pipelined requests, HEAD, resets, half-closes, slow and
 * stalled readers, bad messages, failing sources and iterators, then a shutdown with readers
 * connected. Afterwards: every stream closed exactly once (and, before the shutdown, on its own),
 * nothing left registered, no unhandled rejection, and the heap back within 1 MB of where it was. Set CHAOS_SEED to replay a failure.
 */
export function chaosTest(harness: AdapterHarness): void {
  const seed = Number(process.env.CHAOS_SEED) || Math.floor(Math.random() * 2 ** 31);
  it(`keeps every invariant under a random mix of attacks (seed ${seed})`, async () => {
    const { rejections, stop } = recordUnhandledRejections();
    try {
      // A first round as long warms up the code paths: the heap comparison is to measure leaks,
      // not the optimized code V8 compiles for them (most of a first round's growth).
      await round(harness, seeded(seed ^ 0x5eed), ROUND_MS);
      const baseline = await heapAfterGc();
      const result = await round(harness, seeded(seed), ROUND_MS);
      const grown = (await heapAfterGc()) - baseline;
      const context = `seed ${seed}`;
      expect(result.opened, context).toBeGreaterThan(50);
      expect(result.leftOpen, context).toBe(0);
      expect(result.closed, context).toBe(result.opened);
      expect(result.closedTwice, context).toEqual([]);
      expect(heartbeatCount(), context).toBe(0);
      expect(rejections, context).toEqual([]);
      expect(grown, context).toBeLessThan(1024 * 1024);
    } finally {
      stop();
    }
  });
}

interface RoundResult {
  opened: number;
  /** Streams still open once every attacking client had gone. */
  leftOpen: number;
  closed: number;
  /** The reasons of every stream that did not close exactly once. */
  closedTwice: CloseReason[][];
}

/** Runs the attack for `ms`, then shuts the server down; keeps only counts, so nothing it made stays. */
async function round(harness: AdapterHarness, random: () => number, ms: number): Promise<RoundResult> {
  const ledger = new Ledger();
  const server = await harness.start(routes(ledger, random), { deadline: 500, retry: 1000, spread: 1000 });
  const until = Date.now() + ms;
  const running = new Set<Promise<void>>();
  let started = 0;
  while (Date.now() < until && started < 2000) {
    if (running.size >= 16) await Promise.race(running);
    started++;
    const one = attack(server.url, random, harness.traits ?? {})
      .catch(() => {})
      .finally(() => running.delete(one));
    running.add(one);
    await sleep(Math.floor(random() * 5));
  }
  await Promise.all(running);
  // Every client is gone: every stream must have closed on its own, none left behind (a pipelined
  // one, say) for the shutdown to find.
  let leftOpen = 0;
  await waitFor(() => ledger.closes.size === ledger.opened, 3000, 'every stream to close').catch(() => {
    leftOpen = ledger.opened - ledger.closes.size;
  });
  // A few clients are still reading when the shutdown begins.
  const readers = await Promise.all(
    [1, 2, 3].map(() => rawRequests(server.url, [httpRequest('GET', '/ticks')])),
  );
  await waitFor(() => readers.every((reader) => reader.text.includes('data:')), 5000, 'the readers');
  await server.close();
  await Promise.all(readers.map((reader) => reader.done));
  await waitFor(() => ledger.closes.size === ledger.opened, 5000, 'every close');
  server.logged.length = 0;
  const closes = [...ledger.closes.values()];
  return {
    opened: ledger.opened,
    leftOpen,
    closed: closes.length,
    closedTwice: closes.filter((reasons) => reasons.length !== 1),
  };
}
