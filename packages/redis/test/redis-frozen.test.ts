// A frozen Redis (kill -STOP) keeps its connections open and answers nothing: node-redis's own
// command timeout no longer applies to a command once it is written, so the engine bounds every call.

import { lookup as dnsLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ChannelSource,
  ChannelUnavailableError,
  compareStreamIds,
  createChannel,
  type LiveListener,
  parseStreamId,
  type StoredMessage,
} from '@rxsse/core/channel';
import { until } from '@rxsse/core/testing';
import { firstValueFrom, take, toArray } from 'rxjs';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { recordWarnings } from '../../../test/support/warnings.js';
import type { RedisClient } from '../src/client.js';
import type { TimedClient } from '../src/deadline.js';
import { RedisEngineError, RedisTimeoutError } from '../src/index.js';
import { LargeEntries } from '../src/large-entries.js';
import { RedisProxy } from './support/proxy.js';
import { connected, useRedis } from './support/use-redis.js';

// Generous: the timeout is 1 s, anything that settles before this bound was bounded by it.
const BOUND = 4000;

const redis = useRedis({ defaults: { blockMs: 100, commandTimeoutMs: 1000 } });
const { engine } = redis;
// Runs before the fixture closes the test's engines (after-hooks run last-registered first).
afterEach(() => {
  redis.server.resume();
});

/** How `promise` settled within `ms`: its value, its error, or still pending. */
async function settleWithin<T>(promise: Promise<T>, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<{ pending: true }>((resolve) => {
    timer = setTimeout(() => resolve({ pending: true }), ms);
  });
  const settled = promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  const outcome = await Promise.race([settled, pending]);
  clearTimeout(timer);
  return outcome;
}

/** Expects `outcome` to be a RedisEngineError that names the timeout. */
function expectTimedOut(outcome: object, operation: string, why = 'no reply'): void {
  expect(outcome, operation).toHaveProperty('error');
  const { error } = outcome as { error: Error };
  expect(error).toBeInstanceOf(RedisEngineError);
  expect(error.message).toMatch(
    new RegExp(`^Redis ${operation} on topic ".*" failed: ${why} within 1000 ms`),
  );
  expect(error.cause).toBeInstanceOf(Error);
}

/** The error a channel source fails with. */
function failureOf(source: ChannelSource): Promise<unknown> {
  return new Promise((resolve) => {
    source.subscribe({
      next: () => resolve('an event'),
      error: resolve,
      complete: () => resolve('complete'),
    });
  });
}

/**
 * A `lookup` for the engine's sockets that counts the connections they start, and holds back the
 * one numbered `held` (its TCP connect not begun) until `release()`.
 */
function heldLookup(held: number) {
  let release: (() => void) | undefined;
  const counter = {
    started: 0,
    release: () => release?.(),
    lookup: ((hostname, options, callback) => {
      counter.started++;
      const resolve = () => dnsLookup(hostname, options, callback);
      if (counter.started === held) release = resolve;
      else resolve();
    }) as LookupFunction,
  };
  return counter;
}

/**
 * An engine on the test's Redis whose connects `heldLookup(held)` counts (and the `held`th holds
 * back), and what it told onError.
 */
function engineOfCountedConnects(held: number) {
  const errors: unknown[] = [];
  const connects = heldLookup(held);
  const store = engine({
    url: `redis://localhost:${redis.server.port}`,
    clientOptions: { socket: { lookup: connects.lookup } },
    onError: (error) => errors.push(error),
  });
  return { store, connects, errors };
}

/** The TCP sockets this process has open. */
const sockets = () => process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap').length;

const compareIds = (a: string, b: string) => compareStreamIds(parseStreamId(a)!, parseStreamId(b)!);

function recorder() {
  const events: StoredMessage[] = [];
  const listener: LiveListener = { event: (m) => events.push(m), gap: () => {} };
  return { listener, events };
}

describe('redisEngine with Redis frozen (SIGSTOP)', () => {
  it('rejects publish, a first subscribe and history reads within about the timeout, then recovers', async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    await connected(store);
    const channel = createChannel(store, 'warm');
    const live = recorder();
    const unlisten = await store.listen('warm', live.listener);
    const first = await channel.publish({ data: 'before' });
    await until(() => live.events.length === 1, 'the first event');

    redis.server.pause();
    const [published, listened, read, subscribed] = await Promise.all([
      settleWithin(channel.publish({ data: 'while frozen' }), BOUND),
      settleWithin(store.listen('cold', recorder().listener), BOUND),
      settleWithin(store.read('warm', first, { count: 10, bytes: 10_000 }), BOUND),
      settleWithin(createChannel(store, 'cold 2').subscribe(), BOUND),
    ]);
    expectTimedOut(published, 'publish');
    expectTimedOut(listened, 'listen');
    expectTimedOut(read, 'read');
    // A subscription still resolves, to a source that fails: the client is answered and comes back.
    expect(subscribed).toHaveProperty('value');
    const failure = await failureOf((subscribed as { value: ChannelSource }).value);
    expect(failure).toBeInstanceOf(ChannelUnavailableError);
    expect((failure as Error).cause).toBeInstanceOf(RedisEngineError);
    // The live reader's blocking read is bounded too (by blockMs + the timeout), and reported.
    await until(() => errors.some((e) => e instanceof RedisTimeoutError), 'the live read timing out');

    redis.server.resume();
    // The connection the timeouts dropped is connected again first: on a busy machine a new
    // connect can outlast the 1000 ms a publish has, and recovering is not recovering at once.
    await connected(store);
    const after = await channel.publish({ data: 'after' });
    await until(() => live.events.some((e) => e.id === after), 'live delivery after the resume');
    const cold = recorder();
    const unlistenCold = await store.listen('cold', cold.listener);
    const coldId = await store.append('cold', { data: 'cold' });
    await until(() => cold.events.some((e) => e.id === coldId), 'a new topic after the resume');
    const page = await store.read('warm', first, { count: 10, bytes: 10_000 });
    expect(page.events.map((e) => e.id)).toContain(after);
    // The reader resumed from its cursor on a new connection: nothing twice, nothing out of order.
    const ids = live.events.map((e) => e.id);
    expect(ids).toEqual([...new Set(ids)].sort(compareIds));
    unlisten();
    unlistenCold();
  });

  it('fails a replay cleanly while frozen, and skips nothing for it: a frozen Redis proves no entry too large', async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    const channel = createChannel(store, 'frozen replay');
    const resume = await channel.publish({ data: 'had' });
    const ids = [await channel.publish({ data: 'the largest one' }), await channel.publish({ data: 'last' })];
    redis.server.pause();
    expectTimedOut(
      await settleWithin(store.read('frozen replay', resume, { count: 10, bytes: 10_000 }), BOUND),
      'read',
    );
    redis.server.resume();
    await connected(store);
    const replayed = await firstValueFrom(
      (await channel.subscribe({ lastEventId: resume })).pipe(take(2), toArray()),
    );
    expect(replayed.map((m) => (m as StoredMessage).id)).toEqual(ids);
    expect(errors.filter((error) => String(error).includes('did not arrive'))).toEqual([]);
  });

  it('proves no entry too large when Redis freezes again as a replay fetches it alone, and replays it whole after', async () => {
    const proxy = await RedisProxy.start(redis.server.port);
    onTestFinished(() => proxy.close());
    const errors: unknown[] = [];
    const store = engine({ url: proxy.url, onError: (error) => errors.push(error) });
    const channel = createChannel(store, 'frozen twice');
    const limit = { count: 10, bytes: 10_000 };
    const resume = await channel.publish({ data: 'had' });
    const ids = [
      await channel.publish({ data: 'before it' }),
      await channel.publish({ data: 'the largest one, by a few bytes' }),
      await channel.publish({ data: 'last' }),
    ];
    // Frozen as a replay reads: its largest entry is suspected once Redis answers again, so pages
    // end before it, and the next fetches it alone.
    redis.server.pause();
    expectTimedOut(await settleWithin(store.read('frozen twice', resume, limit), BOUND), 'read');
    redis.server.resume();
    await connected(store);
    let page = await store.read('frozen twice', resume, limit);
    for (let tries = 0; page.more === false && tries < 100; tries++) {
      await sleep(20);
      page = await store.read('frozen twice', resume, limit);
    }
    expect(page.events.map((e) => e.id)).toEqual([ids[0]]);
    // Frozen again just as a page fetches it alone: Redis answers the check once back.
    const largest = ids[1]!;
    const frozen = proxy.beforeNext(
      (command) => command.includes(`${largest}\r\n`) && !command.includes(`(${largest}`),
      async () => redis.server.pause(),
    );
    expectTimedOut(await settleWithin(store.read('frozen twice', ids[0]!, limit), BOUND), 'read');
    await frozen;
    redis.server.resume();
    await connected(store);
    // Whatever the checks conclude, a replay over the entry, on a Redis that answers, gets it.
    await sleep(200);
    const replayed: string[] = [];
    page = { events: [], bytes: 0, truncated: false, more: true };
    for (let pages = 0; page.more && pages < 5; pages++) {
      page = await store.read('frozen twice', replayed.at(-1) ?? resume, limit);
      expect(page.truncated).toBe(false);
      replayed.push(...page.events.map((e) => e.id));
    }
    expect(replayed).toEqual(ids);
    expect(errors.filter((error) => String(error).includes('did not arrive'))).toEqual([]);
  });

  it('leaves no listener on the command connection once closed while a replay that timed out waits for it', async () => {
    // The command connection, and its listeners before the wait for it: seen where a replay waits.
    let waited: { client: RedisClient; listeners: number } | undefined;
    const timedOut = LargeEntries.prototype.timedOut;
    const spy = vi.spyOn(LargeEntries.prototype, 'timedOut').mockImplementation(function (
      this: LargeEntries,
      ...args
    ) {
      const { client } = (this as unknown as { commands: TimedClient }).commands;
      waited = { client, listeners: client.listenerCount('ready') };
      return timedOut.apply(this, args);
    });
    try {
      const store = engine();
      const channel = createChannel(store, 'closed replay');
      const resume = await channel.publish({ data: 'had' });
      await channel.publish({ data: 'then' });
      redis.server.pause();
      // Timed out over a connection that was up: the replay waits for its replacement.
      expectTimedOut(
        await settleWithin(store.read('closed replay', resume, { count: 10, bytes: 10_000 }), BOUND),
        'read',
      );
      expect(waited).toBeDefined();
      await store.close();
      expect(waited!.client.listenerCount('ready')).toBe(waited!.listeners);
    } finally {
      spy.mockRestore();
    }
  });

  it('sends no script, and tells no failure, while the connection replacing one a replay timed out on waits for Redis', async () => {
    // Where a replay that timed out waits for the command connection, and when that wait ended.
    const waits: Promise<void>[] = [];
    const timedOut = LargeEntries.prototype.timedOut;
    const spy = vi.spyOn(LargeEntries.prototype, 'timedOut').mockImplementation(function (
      this: LargeEntries,
      ...args
    ) {
      const wait = timedOut.apply(this, args);
      waits.push(wait);
      return wait;
    });
    try {
      // Counts the connections started, holds none back.
      const { store, connects, errors } = engineOfCountedConnects(0);
      const channel = createChannel(store, 'kept handshake');
      const resume = await channel.publish({ data: 'had' });
      await channel.publish({ data: 'then' });
      // Its connections for reads and for publishes.
      expect(connects.started).toBe(2);
      redis.server.pause();
      // Timed out over a connection that was up: a new one replaces it, whose handshake Redis does
      // not answer while frozen, and the replay waits for it, as long as a call would.
      expectTimedOut(
        await settleWithin(store.read('kept handshake', resume, { count: 10, bytes: 10_000 }), BOUND),
        'read',
      );
      expect(waits).toHaveLength(1);
      await waits[0];
      redis.server.resume();
      await connected(store);
      // A script sent all the same would have timed out on that handshake and dropped it too. Nor
      // is the client, open again, told to connect once more when the old connection's end is
      // followed up (node-redis refuses that as "Socket already opened", an error told).
      expect(connects.started).toBe(3);
      expect(errors).toEqual([]);
    } finally {
      spy.mockRestore();
    }
  });

  it('raises no listener warning when many replays time out together on a connection that was up', async () => {
    const store = engine();
    const channel = createChannel(store, 'many replays');
    const resume = await channel.publish({ data: 'had' });
    await channel.publish({ data: 'then' });
    const recorded = recordWarnings();
    try {
      redis.server.pause();
      const reads = await Promise.all(
        Array.from({ length: 12 }, () =>
          settleWithin(store.read('many replays', resume, { count: 10, bytes: 10_000 }), BOUND),
        ),
      );
      // The engine sends 8 reads at once. Those behind them fail at their turn, either as having
      // waited their whole timeout, or, let through within it, over the connection being replaced.
      for (const read of reads.slice(0, 8)) expectTimedOut(read, 'read');
      for (const read of reads.slice(8)) expectTimedOut(read, 'read', '(?:no reply|not connected)');
      // A warning is emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(recorded.warnings.map((warning) => warning.name)).toEqual([]);
    } finally {
      recorded.stop();
    }
  });

  it("leaves no timer of a publish waiting for a Cluster's first connect once closed", async () => {
    redis.server.pause();
    // The engine's timers alone are counted: those it creates from here on.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      // A node that never answers: the first connect waits on it for good.
      const store = engine({ url: undefined, cluster: { rootNodes: [{ url: redis.server.url }] } });
      const publish = store.append('t', { data: 'x' }).then(
        () => 'published',
        (error: unknown) => error,
      );
      await store.close();
      // Its failure has reached the publish by the next turn of the event loop, timer cleared.
      await new Promise((resolve) => setImmediate(resolve));
      expect(vi.getTimerCount()).toBe(0);
      expect(await publish).toBeInstanceOf(RedisEngineError);
    } finally {
      vi.useRealTimers();
    }
  });

  it('with partitions, retries watching a partition whose first watch timed out', async () => {
    const store = engine({ partitions: 1 });
    await connected(store);
    await store.append('t', { data: 'connected' });
    redis.server.pause();
    expectTimedOut(await settleWithin(store.listen('t', recorder().listener), BOUND), 'listen');
    redis.server.resume();
    await connected(store);
    const live = recorder();
    const stop = await store.listen('t', live.listener);
    const id = await store.append('t', { data: 'live' });
    await until(() => live.events.length === 1, 'the live event');
    stop();
    expect(live.events.map((e) => e.id)).toEqual([id]);
  });

  it('bounds connecting and closing too: an engine created while Redis is frozen', async () => {
    // The last test's engines are closed, and their sockets gone: the fixture's own client is left.
    await until(() => sockets() === 1, "the fixture's socket alone");
    redis.server.pause();
    const store = engine();
    // The connection is open, but Redis never answers its handshake.
    expectTimedOut(await settleWithin(store.append('t', { data: 'x' }), BOUND), 'publish', 'not connected');
    expectTimedOut(
      await settleWithin(store.listen('t', recorder().listener), BOUND),
      'listen',
      'not connected',
    );
    redis.server.resume();
    let id: string | undefined;
    while (id === undefined) id = await store.append('t', { data: 'y' }).catch(() => undefined);
    expect(id).toMatch(/^\d+-\d+$/);

    redis.server.pause();
    const pending = store.append('t', { data: 'z' }).catch(() => {});
    expect(await settleWithin(store.close(), BOUND)).toEqual({ value: undefined });
    // Closed means closed, not "closed once Redis answers": no socket is left waiting for it.
    await until(() => sockets() === 1, 'no socket of the engine left');
    redis.server.resume();
    await pending;
  });

  it('tells no failure of a connect it gave up on, whose handshake went unanswered', async () => {
    // Counts the connections started, holds none back.
    const { store, connects, errors } = engineOfCountedConnects(0);
    await connected(store);
    redis.server.pause();
    // The first timeout replaces the reads' connection (the second connect is the publishes'), whose
    // handshake Redis never answers; a read that times out once that handshake is as old gives that
    // connect up, and the fourth one starts.
    while (connects.started < 4) await store.read('t', '0-0', { count: 1, bytes: 100 }).catch(() => {});
    redis.server.resume();
    await connected(store);
    expect(errors).toEqual([]);
  });

  it('leaves no socket once closed while the connection replacing one whose handshake went unanswered connects', async () => {
    const { store, connects, errors } = engineOfCountedConnects(4);
    await connected(store);
    await until(() => sockets() === 3, "the fixture's socket and the engine's two");
    redis.server.pause();
    // The first timeout replaces the reads' connection (the second connect is the publishes'), whose
    // handshake Redis never answers; a read that times out once that handshake is as old drops it
    // too, and the fourth connection starts.
    while (connects.started < 4) await store.read('t', '0-0', { count: 1, bytes: 100 }).catch(() => {});
    const reported = errors.length;
    expect(await settleWithin(store.close(), BOUND)).toEqual({ value: undefined });
    connects.release();
    await until(() => sockets() === 1, 'no socket of the engine left');
    redis.server.resume();
    const own = await redis.raw.clientId();
    // On resume Redis accepts the connections the kernel completed while it was paused, those the
    // engine closed since included: each goes once Redis reads its end. One left open stays.
    const others = async () => (await redis.raw.clientList()).filter((client) => client.id !== own);
    for (let polls = 0; polls < 200 && (await others()).length > 0; polls++) await sleep(10);
    expect(await others()).toEqual([]);
    expect(errors.slice(reported)).toEqual([]);
  });
});
