import {
  allStreams,
  type CloseReason,
  heartbeatCount,
  type MessageEvent,
  type StreamMetrics,
  type StreamOptions,
  type StreamStats,
} from '@rxsse/core';
import { type ChannelEngine, createChannel, memoryEngine } from '@rxsse/core/channel';
import { from, interval, map, NEVER, Observable, timer } from 'rxjs';
import { expect, it } from 'vitest';
import { httpRequest, type RawClient, rawRequests, sleep, waitFor } from './support/clients.js';
import { gc } from './support/gc.js';
import type { AdapterHarness, TestRoute } from './support/harness.js';
import { recordUnhandledRejections } from './support/warnings.js';

/** What the client of a route does: leave once the headers came, read to the end, or read nothing. */
type Client = 'leave' | 'read' | 'stall';

interface ChurnRoute {
  path: string;
  /** Why each of its streams must close. */
  reason: CloseReason;
  client: Client;
  /** Streams opened at once. */
  batch: number;
  events: Extract<TestRoute, { events: unknown }>['events'];
  options?: StreamOptions;
  /** Its handler resolves only once this opens, after its clients left: no headers to wait for. */
  gate?: Gate;
  /** How many times its handler ran. */
  calls?: number;
}

/** Every open and close, by path, and a weak reference to each closed stream's stats (which the stream holds). */
export class Ledger {
  readonly opened = new Map<string, number>();
  readonly closed = new Map<string, CloseReason[]>();
  readonly metricsClosed = new Map<string, CloseReason[]>();
  readonly stats: WeakRef<StreamStats>[] = [];
  readonly errors: string[] = [];

  /** Options that record each stream of `path`; `failing` metrics hooks throw or reject once they counted. */
  options(path: string, options: StreamOptions = {}, failing?: 'throws' | 'rejects'): StreamOptions {
    const settle = (name: string) => {
      if (failing === 'throws') throw new Error(`${name} threw`);
      if (failing === 'rejects') return Promise.reject(new Error(`${name} rejected`));
    };
    const metrics: StreamMetrics = {
      opened: () => {
        this.opened.set(path, (this.opened.get(path) ?? 0) + 1);
        return settle('opened') as undefined;
      },
      wrote: () => settle('wrote') as undefined,
      heartbeat: () => settle('heartbeat') as undefined,
      dropped: () => settle('dropped') as undefined,
      closed: (reason) => {
        this.metricsClosed.set(path, [...(this.metricsClosed.get(path) ?? []), reason]);
        return settle('closed') as undefined;
      },
    };
    return {
      heartbeat: 20,
      ...options,
      metrics,
      onError: (error) => this.errors.push(String(error)),
      onClose: (reason, stats) => {
        this.closed.set(path, [...(this.closed.get(path) ?? []), reason]);
        this.stats.push(new WeakRef(stats));
      },
    };
  }

  closes(path: string): number {
    return this.closed.get(path)?.length ?? 0;
  }
}

/** A promise the test resolves when it is ready. */
class Gate {
  open!: () => void;
  readonly promise = new Promise<void>((resolve) => (this.open = resolve));
}

/** `inner` (a memory engine by default), counting the live listeners it holds. */
export function countingEngine(inner: ChannelEngine = memoryEngine()): {
  engine: ChannelEngine;
  listening: () => number;
} {
  let listening = 0;
  const engine: ChannelEngine = {
    ...inner,
    async listen(topic, listener) {
      const unlisten = await inner.listen(topic, listener);
      listening++;
      let done = false;
      return () => {
        if (!done) listening--;
        done = true;
        unlisten();
      };
    },
  };
  return { engine, listening: () => listening };
}

function routes(ledger: Ledger, quiet: Promise<never>, engine: ChannelEngine): ChurnRoute[] {
  const chat = createChannel(engine, 'chat');
  const lateGate = new Gate();
  const big = 'b'.repeat(16 * 1024);
  const flood = () => interval(2).pipe(map(() => ({ data: big })));
  const churn: (ChurnRoute & { failing?: 'throws' | 'rejects' })[] = [
    { path: '/never', reason: 'client', client: 'leave', batch: 40, events: () => NEVER },
    {
      path: '/rejecting-metrics',
      reason: 'client',
      client: 'leave',
      batch: 10,
      events: () => NEVER,
      failing: 'rejects',
    },
    {
      path: '/throwing-metrics',
      reason: 'complete',
      client: 'read',
      batch: 10,
      events: () => from([{ data: 'a' }]),
      failing: 'throws',
    },
    { path: '/complete', reason: 'complete', client: 'read', batch: 40, events: () => from([{ data: 'a' }]) },
    {
      path: '/error',
      reason: 'error',
      client: 'read',
      batch: 20,
      events: () =>
        timer(5).pipe(
          map(() => {
            throw new Error('source failed');
          }),
        ),
    },
    {
      path: '/lifetime',
      reason: 'lifetime',
      client: 'read',
      batch: 20,
      events: () => NEVER,
      options: { maxLifetime: 50 },
    },
    {
      path: '/generator-waits',
      reason: 'client',
      client: 'leave',
      batch: 20,
      events: () =>
        (async function* () {
          yield { data: 'first' };
          await quiet;
        })(),
    },
    {
      path: '/generator-completes',
      reason: 'complete',
      client: 'read',
      batch: 20,
      events: () =>
        (async function* () {
          yield { data: 'a' };
          yield { data: 'b' };
        })(),
    },
    {
      path: '/return-throws',
      reason: 'client',
      client: 'leave',
      batch: 20,
      events: (): AsyncIterableIterator<MessageEvent> => ({
        next: () => quiet,
        return() {
          throw new Error('return() threw');
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      }),
    },
    {
      path: '/teardown-rejects',
      reason: 'client',
      client: 'leave',
      batch: 20,
      events: () =>
        new Observable<MessageEvent>((subscriber) => {
          subscriber.next({ data: 'x' });
          return () => Promise.reject(new Error('teardown rejected'));
        }),
    },
    {
      path: '/late-handler',
      reason: 'client',
      client: 'leave',
      batch: 20,
      gate: lateGate,
      // The client is gone before the handler resolves.
      events: async ({ signal }) => {
        await lateGate.promise;
        // What a handler ties to `signal` must not hold the stream either.
        signal.addEventListener('abort', () => {});
        return NEVER;
      },
    },
    {
      path: '/channel',
      reason: 'client',
      client: 'leave',
      batch: 30,
      events: (context) => chat.subscribe(context),
    },
    {
      path: '/overflow',
      reason: 'overflow',
      client: 'stall',
      batch: 5,
      events: flood,
      options: { maxQueueBytes: 256 * 1024, stallTimeout: false },
    },
    {
      path: '/stall',
      reason: 'stall',
      client: 'stall',
      batch: 5,
      events: flood,
      options: { maxQueueBytes: 64 * 1024 * 1024, onOverflow: 'drop-oldest', stallTimeout: 100 },
    },
  ];
  return churn.map((route) => {
    const counted: ChurnRoute = {
      ...route,
      calls: 0,
      events: (context) => {
        counted.calls!++;
        return route.events(context);
      },
      options: ledger.options(route.path, route.options, route.failing),
    };
    return counted;
  });
}

/** Opens `route.batch` streams, lets each end as its route says, and waits for every close. */
async function runBatch(url: string, route: ChurnRoute, ledger: Ledger): Promise<void> {
  const before = ledger.closes(route.path);
  const calls = route.calls!;
  const clients: RawClient[] = await Promise.all(
    Array.from({ length: route.batch }, () =>
      rawRequests(url, [httpRequest('GET', route.path)], route.client !== 'stall'),
    ),
  );
  try {
    if (route.client === 'leave') {
      await waitFor(
        () =>
          route.calls === calls + route.batch &&
          (route.gate !== undefined || clients.every((client) => client.text.includes('\r\n\r\n'))),
        5000,
        `${route.path} handlers`,
      );
      // Long enough for each stream to have begun and pulled or subscribed.
      await sleep(20);
      for (const client of clients) client.destroy();
      if (route.gate) {
        // Long enough for the server to see them go, where it can (not a fetch handler's bridge
        // that tells only through the body).
        await sleep(50);
        route.gate.open();
      }
    }
    await waitFor(() => ledger.closes(route.path) === before + route.batch, 10_000, `${route.path} closes`);
  } finally {
    for (const client of clients) client.destroy();
  }
}

/** How many of `refs` are still alive after full collections. */
export async function collected(refs: WeakRef<object>[]): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(10);
  }
  return refs.filter((ref) => ref.deref() !== undefined).length;
}

/**
 * Opens and closes streams of every source kind (Observable, sync and async; async generators;
 * iterators whose `return()` throws; a channel subscription) for every close reason, then shuts
 * the server down with streams open and a handler still running. Afterwards nothing of them is
 * left: every stream garbage, no heartbeat, group member, channel listener or timer, every
 * `opened` matched by one `closed` of the route's reason.
 */
export function churnTest(harness: AdapterHarness): void {
  it('leaves nothing behind once streams of every source end for every reason', async () => {
    const { rejections, stop } = recordUnhandledRejections();
    const timersBefore = activeTimers();
    const ledger = new Ledger();
    const { engine, listening } = countingEngine();
    const quiet = new Promise<never>(() => {});
    const churn = routes(ledger, quiet, engine);
    let entered = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const server = await harness.start(
      [
        ...churn,
        { path: '/shutdown', events: () => NEVER, options: ledger.options('/shutdown') },
        {
          path: '/turned-away',
          // Resolves once the shutdown began: the stream is turned away, its source never subscribed.
          events: async () => {
            entered++;
            await released;
            return NEVER;
          },
          options: ledger.options('/turned-away'),
        },
      ],
      { deadline: 1000 },
    );
    try {
      for (const route of churn) await runBatch(server.url, route, ledger);
      const open = await Promise.all(
        Array.from({ length: 10 }, () => rawRequests(server.url, [httpRequest('GET', '/shutdown')])),
      );
      const late = await rawRequests(server.url, [httpRequest('GET', '/turned-away')]);
      await waitFor(() => ledger.opened.get('/shutdown') === 10 && entered === 1, 5000, 'the open streams');
      const closing = server.close();
      await waitFor(() => ledger.closes('/shutdown') === 10, 5000, 'the shutdown');
      release();
      await closing;
      await Promise.all([...open, late].map((client) => client.done));
      server.logged.length = 0;

      const paths = [...churn.map((route) => route.path), '/shutdown', '/turned-away'];
      const expected = new Map<string, CloseReason>([
        ...churn.map((route): [string, CloseReason] => [route.path, route.reason]),
        ['/shutdown', 'shutdown'],
        ['/turned-away', 'shutdown'],
      ]);
      for (const path of paths) {
        const reasons = ledger.closed.get(path) ?? [];
        expect(new Set(reasons), path).toEqual(new Set([expected.get(path)]));
        expect(ledger.metricsClosed.get(path), path).toEqual(reasons);
        expect(ledger.opened.get(path), path).toBe(reasons.length);
      }
      expect(heartbeatCount()).toBe(0);
      expect(allStreams.size).toBe(0);
      expect(listening()).toBe(0);
      expect(await collected(ledger.stats)).toBe(0);
      expect(activeTimers()).toBeLessThanOrEqual(timersBefore);
      expect(rejections).toEqual([]);
      // What the routes fail with on purpose reached onError; nothing else did.
      const expectedErrors =
        /source failed|return\(\) threw|teardown rejected|(opened|wrote|heartbeat|dropped|closed) (threw|rejected)/;
      expect(ledger.errors.filter((error) => !expectedErrors.test(error))).toEqual([]);
      const reported = (text: string) => ledger.errors.filter((error) => error.includes(text)).length;
      expect([reported('source failed'), reported('return() threw'), reported('teardown rejected')]).toEqual([
        20, 20, 20,
      ]);
    } finally {
      stop();
    }
  });
}

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}
