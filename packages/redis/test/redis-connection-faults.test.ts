// Faults a frozen Redis cannot show, made by a proxy between the engine and Redis: one connection cut
// off silently (a dead route, a peer gone without a reset), which carries nothing and never errors,
// so what was sent on it is lost; or one connection's replies late while the others flow.
import { lookup as dnsLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ChannelEngine,
  ChannelUnavailableError,
  createChannel,
  type LiveListener,
  type StoredMessage,
} from '@rxsse/core/channel';
import { recordSource, until } from '@rxsse/core/testing';
import { ClientOfflineError } from 'redis';
import { firstValueFrom, type Subscription, take, toArray } from 'rxjs';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { RedisEngineError, RedisRecovered, RedisRepeatedFailure, RedisTimeoutError } from '../src/index.js';
import { RedisProxy } from './support/proxy.js';
import { appendOnceBack, connected, givingUpStrategy, useRedis } from './support/use-redis.js';

// Any timeout ends a call on a connection that never answers; one of 2 s leaves the calls that do
// get answers (each through the proxy, in this process) room for a busy machine's pauses.
const redis = useRedis({ defaults: { blockMs: 100, commandTimeoutMs: 2000 }, flush: true });

let proxy: RedisProxy | undefined;

/**
 * An engine's connections, as a proxy numbers them: it opens its two command connections when it is
 * made, reads' then publishes', and the live reader's with its first listener.
 */
const [READS, PUBLISHES, LIVE] = [0, 1, 2];
afterEach(() => {
  proxy?.close();
  proxy = undefined;
});

/** Bytes of Redis's replies the proxy has passed on so far, over all its connections. */
function received(): number {
  return proxy!.connections.reduce((sum, connection) => sum + connection.passed, 0);
}

function recorder() {
  const events: StoredMessage[] = [];
  const listener: LiveListener = { event: (m) => events.push(m), gap: () => {} };
  return { listener, events, ids: () => events.map((e) => e.id) };
}

/**
 * A store whose connections carry 1 MB/s and whose calls time out after `commandTimeoutMs`, a
 * publisher beside it that first appends `last` to `topic` if given, and what a listener on `topic`
 * hears: ids, and gaps as `<gap kind>`.
 */
async function throttledTopic(
  topic: string,
  partitions: number | undefined,
  last?: string,
  commandTimeoutMs = 1000,
) {
  proxy = await RedisProxy.start(redis.server.port);
  const errors: unknown[] = [];
  const store = redis.engine({
    url: proxy.url,
    partitions,
    commandTimeoutMs,
    onError: (error) => errors.push(error),
  });
  const publisher = redis.engine({ partitions });
  await connected(store);
  if (last !== undefined) await publisher.append(topic, { data: last });
  proxy.limitAll(1_000_000);
  const seen: string[] = [];
  const stop = await store.listen(topic, {
    event: (m) => seen.push(m.id),
    gap: (kind) => seen.push(`<gap ${kind}>`),
  });
  return { publisher, seen, stop, errors };
}

/** Each large-entry case runs on a stream per topic and on partitioned streams. */
const MODES = [
  ['per topic', undefined],
  ['partitioned', 4],
] as const;

describe('redisEngine with its connections cut off', () => {
  it('replaces a live connection cut off mid-read and resumes from its cursor', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, onError: () => {} });
    await connected(store);
    const seen = recorder();
    const stop = await store.listen('cut', seen.listener);
    const before = await store.append('cut', { data: 'before' });
    await until(() => seen.events.length === 1, 'the first event');

    for (const connection of proxy.connections) connection.cut();
    // Published around the proxy: the engine's own command connection is cut off too.
    const during = await redis.raw.xAdd('sse:{cut}', '*', { d: 'during' });
    await until(() => seen.events.length === 2, 'the event on a new connection');
    stop();
    expect(seen.ids()).toEqual([before, during]);
  });

  it('waits out a live connection whose connect outlasts the timeout, rather than open a second beside it', async () => {
    // The live connection is the third the engine starts: its address comes once released.
    let started = 0;
    let release: (() => void) | undefined;
    const lookup = ((hostname, options, callback) => {
      started++;
      const resolve = () => dnsLookup(hostname, options, callback);
      if (started === LIVE + 1) release = resolve;
      else resolve();
    }) as LookupFunction;
    const errors: unknown[] = [];
    const store = redis.engine({
      url: `redis://localhost:${redis.server.port}`,
      clientOptions: { socket: { lookup } },
      onError: (error) => errors.push(error),
    });
    await connected(store);
    const seen = recorder();
    const stop = await store.listen('slow', seen.listener);
    await until(
      () => errors.some((error) => error instanceof RedisTimeoutError && !error.connected),
      'the live connect timing out',
    );
    // Its connection not ready, with no failure of its own on record: the reads tell what they miss.
    await until(
      () =>
        errors.some(
          (error) =>
            (error instanceof RedisRepeatedFailure ? error.cause : error) instanceof ClientOfflineError,
        ),
      'the reads that wait for it told',
    );
    release!();
    const ids = [await store.append('slow', { data: 'a' })];
    await until(() => seen.events.length === 1, 'the first event');
    ids.push(await store.append('slow', { data: 'b' }));
    await until(() => seen.events.length === 2, 'the second event');
    stop();
    expect(seen.ids()).toEqual(ids);
    // One connection for reads, one for publishes, one for live reads: no other one's replies in the way.
    const own = await redis.raw.clientId();
    expect((await redis.raw.clientList()).filter((client) => client.id !== own)).toHaveLength(3);
    // The reads it could not make meanwhile are told as such, and nothing else: on a busy machine,
    // as repeats of them and the recovery after them too.
    const told = errors
      .filter((error) => !(error instanceof RedisRecovered))
      .map((error) => (error instanceof RedisRepeatedFailure ? error.cause : error));
    expect(
      told.filter((error) => !(error instanceof RedisTimeoutError || error instanceof ClientOfflineError)),
    ).toEqual([]);
  });

  it('replaces a live connection cut off before it was ready', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const errors: unknown[] = [];
    const store = redis.engine({ url: proxy.url, onError: (error) => errors.push(error) });
    await connected(store);

    proxy.cutNew = true;
    const seen = recorder();
    const stop = await store.listen('cut', seen.listener);
    // The live connection's handshake gets no answer; it times out.
    await until(() => errors.some((error) => error instanceof RedisTimeoutError), 'the handshake timing out');
    proxy.cutNew = false;
    const id = await store.append('cut', { data: 'live' });
    await until(() => seen.events.length === 1, 'the event on a new connection');
    stop();
    expect(seen.ids()).toEqual([id]);
  });

  it('replaces a live connection whose reconnect gets no answer to its handshake', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, onError: () => {} });
    await connected(store);
    const seen = recorder();
    const stop = await store.listen('unanswered', seen.listener);
    const live = await proxy.liveConnection(redis.raw);
    // It drops; node-redis connects again on its own, and its handshake gets no answer (a proxy
    // whose Redis is gone).
    proxy.cutNew = true;
    const opened = proxy.connections.length;
    live.destroy();
    await until(() => proxy!.connections.length > opened, 'the unanswered connection');
    proxy.cutNew = false;
    const id = await store.append('unanswered', { data: 'live' });
    await until(() => seen.events.length === 1, 'the event on a new connection');
    stop();
    expect(seen.ids()).toEqual([id]);
  });
});

describe('redisEngine with its command connection cut off', () => {
  it.each(MODES)(
    'replaces it after a call that got no reply, and publishes again (%s)',
    async (_mode, partitions) => {
      proxy = await RedisProxy.start(redis.server.port);
      const store = redis.engine({ url: proxy.url, partitions, onError: () => {} });
      await connected(store);
      await store.append('cut', { data: 'before' });
      proxy.connections[PUBLISHES]!.cut();
      const rejected = await store.append('cut', { data: 'lost' }).catch((error: unknown) => error);
      expect(rejected).toBeInstanceOf(RedisEngineError);
      expect((rejected as Error).cause).toBeInstanceOf(RedisTimeoutError);
      const id = await store.append('cut', { data: 'after' });
      expect((await store.read('cut', id, { count: 1, bytes: 100 })).truncated).toBe(false);
    },
  );

  it('tells nothing of its own when it replaces it: the connection dropped is not connected again beside the new one', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const errors: unknown[] = [];
    const store = redis.engine({ url: proxy.url, onError: (error) => errors.push(error) });
    await connected(store);
    await store.append('replaced', { data: 'before' });
    proxy.connections[PUBLISHES]!.cut();
    await expect(store.append('replaced', { data: 'lost' })).rejects.toBeInstanceOf(RedisEngineError);
    // A client that ends is connected again after 200 ms, unless it is open by then: the one dropped
    // here is, on its new connection.
    await sleep(400);
    await store.append('replaced', { data: 'after' });
    expect(errors).toEqual([]);
  });
});

describe('redisEngine whose Redis is out of reach for a while', () => {
  it.each([
    ['', {}],
    [
      ", though the caller's commandOptions let node-redis wait longer",
      { commandOptions: { timeout: 60_000 } },
    ],
  ])(
    'never stores a publish that timed out waiting for a connection, once Redis is back%s',
    async (_how, clientOptions) => {
      proxy = await RedisProxy.start(redis.server.port);
      const port = Number(new URL(proxy.url).port);
      const store = redis.engine({ url: proxy.url, clientOptions, onError: () => {} });
      await connected(store);
      // Redis goes out of reach: the command connection closes, and each new one is refused. A publish
      // sent before the client knew fails with the socket; the next waits for a connection, in vain.
      proxy.close();
      let rejected: unknown;
      for (
        let attempt = 1;
        !((rejected as Error | undefined)?.cause instanceof RedisTimeoutError);
        attempt++
      ) {
        if (attempt > 3) throw rejected;
        rejected = await store
          .append('unreachable', { data: 'lost' })
          .then(String, (error: unknown) => error);
      }
      proxy = await RedisProxy.start(redis.server.port, port);
      // A publish still queued for the connection would be sent before the calls made once it is back.
      await connected(store);
      const id = await store.append('unreachable', { data: 'after' });
      const stored = await redis.raw.xRange('sse:{unreachable}', '-', '+');
      expect(stored?.map((entry) => entry.id)).toEqual([id]);
    },
  );
});

describe('redisEngine whose command connection connects and gets no reply', () => {
  it.each([
    ['created so', false],
    ['replaced so, after a call that got no reply', true],
  ])('replaces it and publishes again (%s)', async (_when, connectedFirst) => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, onError: () => {} });
    if (connectedFirst) {
      await connected(store);
      await store.append('stuck', { data: 'before' });
      proxy.connections[PUBLISHES]!.cut();
    }
    // The connection opens, but its handshake is never answered (a proxy whose Redis is gone).
    proxy.cutNew = true;
    const rejected = await store.append('stuck', { data: 'lost' }).catch((error: unknown) => error);
    expect(rejected).toBeInstanceOf(RedisEngineError);
    await until(() => proxy!.connections.length === (connectedFirst ? 3 : 2), 'the unanswered connection');
    proxy.cutNew = false;
    const outcomes: unknown[] = [];
    while (outcomes.length < 5 && typeof outcomes.at(-1) !== 'string')
      outcomes.push(await store.append('stuck', { data: 'after' }).catch((error: unknown) => error));
    // At most one more call waits on the stuck connection; the next goes through a new one.
    expect(outcomes.length).toBeLessThanOrEqual(2);
    expect(outcomes.at(-1)).toMatch(/^\d+-\d+$/);
  });
});

describe('redisEngine with partitions, while its command connection lags', () => {
  it('delivers what the partition brought a new topic before the topic knew where its stream ended', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, partitions: 1 });
    const seen = recorder();
    const first = recorder();
    const stopFirst = await store.listen('first', first.listener);
    const commands = proxy.connections[READS]!;
    // The new topic's start point (its stream's last id) is read, but the reply waits...
    commands!.hold();
    const listening = store.listen('second', seen.listener);
    await until(() => commands!.holding > 0, 'the start point read');
    // ...while the live connection brings an event published after it (and one behind it, to know).
    const publisher = redis.engine({ partitions: 1 });
    const id = await publisher.append('second', { data: 'early' });
    await publisher.append('first', { data: 'behind it' });
    await until(() => first.events.length === 1, 'the event behind it');
    commands!.release();
    const stop = await listening;
    await until(() => seen.events.length === 1, 'the early event');
    stop();
    stopFirst();
    expect(seen.ids()).toEqual([id]);
  });
});

describe('redisEngine whose command connection goes silent as a topic starts its stream over', () => {
  it('tells a gap for entries deleted before its first read of a stream emptied by hand', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, commandTimeoutMs: 1000 });
    await connected(store);
    const events: string[] = [];
    const stop = await store.listen('emptied', told(events));
    const ids = [await store.append('emptied', { data: 'a' }), await store.append('emptied', { data: 'b' })];
    await until(() => events.length === 2, 'both events');
    // Whatever the reader asks on the command connection from now on gets no reply.
    proxy.connections[READS]!.cut();
    const key = 'sse:{emptied}';
    const reads = await liveReads();
    // Emptied by hand: nothing was written after b, so no gap; the reader reads the stream from its start.
    await redis.raw.xDel(key, ids);
    await untilLive(async () => (await liveReads()) > reads + 3, 'reads past the deletion');
    // A call there times out, as would one the reader made there since; the connection is replaced.
    await expect(store.read('other', '0-1', { count: 1, bytes: 100 })).rejects.toBeInstanceOf(
      RedisEngineError,
    );
    // c is written and deleted before the reader's first read of the stream from its start.
    const d = await addTwoKeepLast(key);
    await until(() => events.includes(d), 'the entry after it');
    stop();
    expect(events).toEqual([...ids, '<gap continue>', d]);
  });

  it('tells a gap to a listener added after its stream was lost, for entries trimmed before the first read', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, commandTimeoutMs: 1000 });
    await connected(store);
    const first: string[] = [];
    const stopFirst = await store.listen('lost', told(first));
    const a = await store.append('lost', { data: 'a' });
    await until(() => first.length === 1, 'the first event');
    proxy.connections[READS]!.cut();
    const key = 'sse:{lost}';
    // Redis lost the stream: its listeners are told, and it is read from its start again.
    await redis.raw.del(key);
    await until(() => first.length === 2, 'the gap');
    // A call there times out, as would one the reader made there since; the connection is replaced.
    await expect(store.read('other', '0-1', { count: 1, bytes: 100 })).rejects.toBeInstanceOf(
      RedisEngineError,
    );
    // Told of no gap: each entry written once it listens must reach it, or a gap be told.
    const second: string[] = [];
    const stop = await store.listen('lost', told(second));
    const d = await addTwoKeepLast(key);
    await until(() => second.includes(d), 'the entry after it');
    stop();
    stopFirst();
    expect(second).toEqual(['<gap continue>', d]);
    expect(first.filter((e) => !e.startsWith('<gap'))).toEqual([a, d]);
    expect(first[1]).toBe('<gap restart>');
  });

  it('tells a gap for entries trimmed from a stream made anew before its count could be asked', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, commandTimeoutMs: 3000 });
    await connected(store);
    const events: string[] = [];
    const stop = await store.listen('remade', told(events));
    const a = await store.append('remade', { data: 'a' });
    await until(() => events.length === 1, 'the first event');
    // The command connection answers nothing for the rest of the test: no count comes back.
    proxy.connections[READS]!.cut();
    const key = 'sse:{remade}';
    await redis.raw.del(key);
    await until(() => events.length === 2, 'the gap of the lost stream');
    const d = await addTwoKeepLast(key);
    await until(() => events.includes(d), 'the entry after it');
    stop();
    expect(events).toEqual([a, '<gap restart>', '<gap continue>', d]);
  });

  it('tells a gap for entries trimmed from a stream made where a key of another type was', async () => {
    const store = redis.engine();
    await connected(store);
    const key = 'sse:{typed}';
    const first: string[] = [];
    const stopFirst = await store.listen('typed', told(first));
    // Another topic, so that the reads go on beside the broken one.
    const stopOther = await store.listen('other', told([]));
    await store.append('typed', { data: 'a' });
    await until(() => first.length === 1, 'the first event');
    await redis.raw.set(key, 'not a stream');
    await until(() => first.length === 2, 'the gap');
    const second: string[] = [];
    const stop = await store.listen('typed', told(second));
    await redis.raw.del(key);
    const d = await addTwoKeepLast(key);
    await until(() => second.includes(d), 'the entry after it');
    stop();
    stopFirst();
    stopOther();
    expect(second).toEqual(['<gap continue>', d]);
  });
});

/** A listener that writes down each event's id and each gap, in order. */
function told(events: string[]) {
  return {
    event: (m: StoredMessage) => events.push(m.id),
    gap: (kind?: string) => events.push(`<gap ${kind}>`),
  };
}

/** Writes c and d to the stream at `key` and trims it to d, at once: the id of d. */
async function addTwoKeepLast(key: string): Promise<string> {
  const replies = await redis.raw
    .multi()
    .xAdd(key, '*', { d: 'c' })
    .xAdd(key, '*', { d: 'd' })
    .xTrim(key, 'MAXLEN', 1)
    .exec();
  return (replies as unknown as [string, string, number])[1];
}

/** How many `XREAD`s Redis has run, blocking or not. */
async function liveReads(): Promise<number> {
  const stats = await redis.raw.info('commandstats');
  return Number(/cmdstat_xread:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/** `until` for an asynchronous check, polled every 10 ms for at most 10 s. */
async function untilLive(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let waited = 0; !(await check()); waited += 10) {
    if (waited > 10_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A check for `until`: whether the engine's live read blocked, as of the last `CLIENT LIST` it asked
 * for. A list still on its way when a test kills Redis fails: that is no failure of the test.
 */
function liveReadBlocked(): () => boolean {
  let blocked = false;
  return () => {
    redis.raw.clientList().then(
      (clients) => {
        blocked = clients.some((client) => client.cmd === 'xread' && client.flags.includes('b'));
      },
      () => {},
    );
    return blocked;
  };
}

/**
 * A listener on `topic` through a proxy (streams trimmed to about 10 entries, reads of 5), once its
 * live read blocks; `burst` trims far past whatever the reader has while its replies are held.
 */
async function laggingListener(topic: string) {
  proxy = await RedisProxy.start(redis.server.port);
  const store = redis.engine({ url: proxy.url, maxLength: 10, readCount: 5, commandTimeoutMs: 5000 });
  await store.append(topic, { data: 'first' });
  const events: string[] = [];
  const stop = await store.listen(topic, {
    event: (m) => events.push(m.id!),
    gap: (kind) => events.push(kind === 'restart' ? '<gap restart>' : '<gap>'),
  });
  await until(liveReadBlocked(), 'the live read blocking');
  const reading = proxy.connections[LIVE]!;
  const key = `sse:{${topic}}`;
  return {
    events,
    reading,
    key,
    /** 2,000 entries, trimmed as they come; resolves once the listener has the last of them. */
    async burst() {
      const trim = { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 10 } } as const;
      const burst = redis.raw.multi();
      for (let i = 0; i < 2000; i++) burst.xAdd(key, '*', { d: `burst ${i}` }, trim);
      const last = ((await burst.exec()) as unknown as string[]).at(-1);
      reading.release();
      await until(() => events.at(-1) === last, 'the last event');
      stop();
    },
  };
}

describe('redisEngine while its live connection lags', () => {
  it('tells a listener about a gap when trimming passes its cursor while it is behind', async () => {
    const { events, reading, key, burst } = await laggingListener('behind');
    // A full read (readCount entries) is on its way when the stream is trimmed far past it.
    reading.hold();
    const full = redis.raw.multi();
    for (let i = 0; i < 5; i++) full.xAdd(key, '*', { d: `full ${i}` });
    const read = (await full.exec()) as unknown as string[];
    await until(() => reading.holding > 0, 'the full read');
    await burst();
    expect(events.slice(0, 6)).toEqual([...read, '<gap>']);
  });

  it('tells a listener about a gap when trimming passes its cursor between two reads, caught up', async () => {
    const { events, reading, key, burst } = await laggingListener('caught-up');
    // One entry, less than a full read: the reader is caught up, and its next read will block...
    reading.hold();
    const read = await redis.raw.xAdd(key, '*', { d: 'one' });
    await until(() => reading.holding > 0, 'the read');
    // ...but before that read reaches Redis, trimming passes the cursor: what followed it is gone.
    await burst();
    expect(events.slice(0, 2)).toEqual([read, '<gap>']);
  });
});

describe('redisEngine whose live connection lags on a topic that started empty', () => {
  it.each(MODES)(
    'counts against maxReplay only the events a resuming client missed, not those published as it resumes (%s)',
    async (_mode, partitions) => {
      proxy = await RedisProxy.start(redis.server.port);
      const store = redis.engine({ url: proxy.url, partitions, commandTimeoutMs: 5000 });
      const publisher = redis.engine({ partitions });
      const topic = 'started empty';
      // Listened to while its stream is empty: the live reader starts it from its beginning.
      const first = await store.listen(topic, { event: () => {}, gap: () => {} });
      await until(liveReadBlocked(), 'the live read blocking');
      (await proxy.liveConnection(redis.raw)).hold();
      const [had, ...missed] = [
        await publisher.append(topic, { data: 'had' }),
        await publisher.append(topic, { data: 'missed 1' }),
        await publisher.append(topic, { data: 'missed 2' }),
      ];
      // Two more are published once its listener is registered, before its history is read.
      const meanwhile: string[] = [];
      const reading: ChannelEngine = {
        ...store,
        read: async (...args) => {
          for (const data of ['meanwhile 1', 'meanwhile 2'])
            meanwhile.push(await publisher.append(topic, { data }));
          return store.read(...args);
        },
      };
      const channel = createChannel(reading, topic, { maxReplay: { events: 2 } });
      const resumed = recordSource(await channel.subscribe({ lastEventId: had }));
      for (const connection of proxy.connections) connection.release();
      await until(() => resumed.received.length >= 4, 'the replay and the live events');
      resumed.unsubscribe();
      first();
      expect(resumed.ids()).toEqual([...missed, ...meanwhile]);
    },
  );
});

describe('redisEngine whose live reads are too large to arrive in time', () => {
  it('reads fewer entries at a time after a read timed out, and delivers them all', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const errors: unknown[] = [];
    const store = redis.engine({
      url: proxy.url,
      readCount: 32,
      commandTimeoutMs: 1000,
      onError: (error) => errors.push(error),
    });
    await store.append('large', { data: 'the command connection is up' });
    // The live connection comes through a link of 1 MB/s: 32 entries of 50 kB take 1.6 s, over
    // the deadline of a read (blockMs + 1000 ms), 8 of them 0.4 s.
    proxy.limitNew = 1_000_000;
    const seen = recorder();
    const stop = await store.listen('large', seen.listener);
    const big = 'x'.repeat(50_000);
    // In one MULTI, so the blocking read gets them all at once.
    const burst = redis.raw.multi();
    for (let i = 0; i < 32; i++) burst.xAdd('sse:{large}', '*', { d: big });
    const ids = (await burst.exec()) as unknown as string[];
    await until(() => seen.events.length === 32, 'every event', 20_000);
    stop();
    expect(seen.ids()).toEqual(ids);
    expect(errors.some((error) => error instanceof RedisTimeoutError)).toBe(true);
  }, 30_000);

  it('goes back to reading readCount entries at a time once its reads arrive in time again', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, readCount: 32, commandTimeoutMs: 1000, onError: () => {} });
    await store.append('recovers', { data: 'the command connection is up' });
    // As above: 32 entries of 50 kB time a read out at 1 MB/s, and the reads go on with fewer.
    proxy.limitNew = 1_000_000;
    // The entries of one read reach the listener in one go: a group per read.
    const reads: number[] = [];
    let reading = false;
    const stop = await store.listen('recovers', {
      event: () => {
        if (!reading) {
          reading = true;
          reads.push(0);
          queueMicrotask(() => {
            reading = false;
          });
        }
        reads[reads.length - 1]!++;
      },
      gap: () => {},
    });
    const big = 'x'.repeat(50_000);
    const burst = redis.raw.multi();
    for (let i = 0; i < 32; i++) burst.xAdd('sse:{recovers}', '*', { d: big });
    await burst.exec();
    const total = () => reads.reduce((sum, n) => sum + n, 0);
    await until(() => total() === 32, 'the large events', 20_000);
    expect(Math.max(...reads)).toBeLessThan(32);
    // Each read that arrives in time doubles the count back: after five, from 1 even, it is 32
    // again, and 32 small entries come in one read.
    const target = (await liveReads()) + 5;
    await untilLive(async () => (await liveReads()) >= target, 'five reads in time');
    reads.length = 0;
    const small = redis.raw.multi();
    for (let i = 0; i < 32; i++) small.xAdd('sse:{recovers}', '*', { d: 'small' });
    await small.exec();
    await until(() => total() === 32, 'the small events');
    stop();
    expect(reads).toEqual([32]);
  }, 30_000);

  it.each([
    ['per topic', undefined],
    ['partitioned', 1],
  ])(
    'skips, with a gap, one entry too large to arrive in time, and the other topics go on (%s)',
    async (_mode, partitions) => {
      proxy = await RedisProxy.start(redis.server.port);
      const store = redis.engine({ url: proxy.url, partitions, readCount: 4, commandTimeoutMs: 1000 });
      const publisher = redis.engine({ partitions });
      await store.append('huge', { data: 'the command connection is up' });
      // 3 MB at 1 MB/s: even alone, the entry takes 3 s, over the deadline of a read (1.1 s).
      proxy.limitNew = 1_000_000;
      const events: string[] = [];
      const stops = await Promise.all(
        ['huge', 'small'].map((topic) =>
          store.listen(topic, {
            event: (m) => events.push(`${topic} ${String(m.data)}`),
            gap: (kind) => events.push(`${topic} <gap ${kind}>`),
          }),
        ),
      );
      await publisher.append('huge', { data: 'x'.repeat(3_000_000) });
      await publisher.append('small', { data: 'after it' });
      await publisher.append('huge', { data: 'small again' });
      await until(() => events.includes('huge small again'), 'the event after the large one', 20_000);
      for (const stop of stops) stop();
      expect(events).toContain('small after it');
      expect(events.filter((e) => e.startsWith('huge'))).toEqual(['huge <gap continue>', 'huge small again']);
    },
    30_000,
  );

  it('skips two entries too large to arrive in time, one after the other, each with a gap', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, readCount: 4, commandTimeoutMs: 1000 });
    const publisher = redis.engine();
    await store.append('huge twice', { data: 'the command connection is up' });
    // 3 MB at 1 MB/s: even alone, each entry takes 3 s, over the deadline of a read (1.1 s).
    proxy.limitNew = 1_000_000;
    const events: string[] = [];
    const stop = await store.listen('huge twice', {
      event: (m) => events.push(String(m.data)),
      gap: (kind) => events.push(`<gap ${kind}>`),
    });
    await publisher.append('huge twice', { data: 'x'.repeat(3_000_000) });
    await publisher.append('huge twice', { data: 'y'.repeat(3_000_000) });
    await publisher.append('huge twice', { data: 'small again' });
    await until(() => events.includes('small again'), 'the event after the large ones', 30_000);
    stop();
    expect(events).toEqual(['<gap continue>', '<gap continue>', 'small again']);
  }, 45_000);

  it('blocks again after skipping the first entry of a new stream, once too large to arrive in time, and tells no other gap while it waits', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, readCount: 4, commandTimeoutMs: 1000 });
    const publisher = redis.engine();
    await connected(store);
    const events: string[] = [];
    const stop = await store.listen('huge first, then quiet', {
      event: (m) => events.push(String(m.data)),
      gap: (kind) => events.push(`<gap ${kind}>`),
    });
    await until(liveReadBlocked(), 'the live read blocking');
    // The blocking read from the start brings the 3 MB entry in time, and keeps it for a checked
    // read; from that one on, every reply comes at 1 MB/s: 3 s, over the deadline of a read (1.1 s).
    const slowed = proxy.beforeNext(
      (command) => command.includes('MULTI'),
      async () => proxy!.limitAll(1_000_000),
    );
    await publisher.append('huge first, then quiet', { data: 'x'.repeat(3_000_000) });
    await slowed;
    await until(() => events.length > 0, 'the skip', 30_000);
    // Skipped, the entry read from the start waits for no checked read, and has no entry before it
    // to check: the reads block again, and must not take it for a cursor gone.
    for (let i = 0; i < 3; i++)
      await proxy.beforeNext(
        (command) => command.includes('XREAD'),
        async () => {},
      );
    await until(liveReadBlocked(), 'the live read blocking again');
    await publisher.append('huge first, then quiet', { data: 'small after it' });
    await until(() => events.includes('small after it'), 'the event after the large one', 30_000);
    stop();
    expect(events).toEqual(['<gap continue>', 'small after it']);
  }, 45_000);
});

/**
 * A store on a proxy that reads one entry per topic, listening to `topic` (data, and gaps as
 * `<gap kind>`), once `first` arrived: its live read's reply held back, that read timed out, and the
 * next, on a new connection, got it.
 */
async function afterHeldRead(topic: string, first: string) {
  proxy = await RedisProxy.start(redis.server.port);
  const store = redis.engine({ url: proxy.url, readCount: 1, commandTimeoutMs: 1000 });
  await connected(store);
  const events: string[] = [];
  const stop = await store.listen(topic, {
    event: (m) => events.push(String(m.data)),
    gap: (kind) => events.push(`<gap ${kind}>`),
  });
  await until(() => proxy!.connections.length === LIVE + 1, 'the live connection');
  proxy.connections[LIVE]!.hold();
  await store.append(topic, { data: first });
  await until(() => events.length > 0, 'the first event');
  return { store, events, stop };
}

describe('redisEngine whose live read of one entry per topic timed out once', () => {
  it('skips nothing: one reply held back is no proof that an entry is too large', async () => {
    // The read that brings it times out; the next, on a new connection, gets it.
    const { events, stop } = await afterHeldRead('held', 'small');
    stop();
    expect(events).toEqual(['small']);
  });

  it('skips nothing the second time a read of one entry per topic timed out, for another entry', async () => {
    const { store, events, stop } = await afterHeldRead('held twice', 'first');
    // Its read timed out, and the next, on a new connection, got it. So does the next one's.
    proxy!.connections.at(-1)!.hold();
    await store.append('held twice', { data: 'second' });
    await until(() => events.length > 1, 'the second event');
    stop();
    expect(events).toEqual(['first', 'second']);
  });

  it('skips nothing after a read of one entry per topic timed out once: connections dropped are no proof', async () => {
    const { store, events, stop } = await afterHeldRead('dropped', 'held');
    // Its read timed out, and the next, on a new connection, got it. The reply that brings the next
    // entry is held and its connection dropped; the next read's connection is dropped before it reads.
    const live = proxy!.connections.at(-1)!;
    live.hold();
    await store.append('dropped', { data: 'dropped twice' });
    await until(() => live.holding > 0, 'the reply held');
    const dropped = proxy!.beforeNext(
      (command) => command.includes('XREAD'),
      async () => {
        for (const connection of proxy!.connections.slice(LIVE)) connection.destroy();
      },
    );
    live.destroy();
    await dropped;
    await store.append('dropped', { data: 'after' });
    await until(() => events.includes('after'), 'the event after');
    stop();
    expect(events).toEqual(['held', 'dropped twice', 'after']);
  });
});

describe('redisEngine whose live read timed out', () => {
  it('asks for half as many entries per topic in the next read, then readCount again once a read succeeds', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, readCount: 8, commandTimeoutMs: 1000 });
    await connected(store);
    // The COUNT of every live read any connection sends, as the proxy sees it, and the scripts that
    // look for an entry too large to arrive in time.
    const counts: number[] = [];
    let largest = 0;
    void proxy.beforeNext(
      (command) => {
        if (command.includes('local largest')) largest++;
        const parts = command.split('\r\n');
        const read = parts.indexOf('XREAD');
        const count = parts.indexOf('COUNT', read);
        if (read >= 0 && count > read) counts.push(Number(parts[count + 2]));
        return false;
      },
      async () => {},
    );
    const events: string[] = [];
    const stop = await store.listen('halved', { event: (m) => events.push(String(m.data)), gap: () => {} });
    await until(() => proxy!.connections.length === LIVE + 1, 'the live connection');
    await until(() => counts.length > 0, 'a live read');
    proxy.connections[LIVE]!.hold();
    counts.length = 0;
    await store.append('halved', { data: 'held' });
    await until(() => events.length > 0, 'the event held back');
    await until(() => counts.length >= 3, 'two reads after the one that timed out');
    stop();
    // The read under way when the reply was held timed out: the next asks for 4, those after for 8.
    expect(counts.slice(0, 3)).toEqual([4, 8, 8]);
    // A read of more than one entry per topic that timed out proves no entry too large.
    expect(largest).toBe(0);
  });
});

describe('redisEngine whose replay meets an entry too large to arrive in time', () => {
  it('answers a resume over it with the truncation signal after a few failed ones, never failing for good', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const errors: unknown[] = [];
    const store = redis.engine({ url: proxy.url, commandTimeoutMs: 1000, onError: (e) => errors.push(e) });
    const publisher = redis.engine();
    await connected(store);
    const resume = await publisher.append('huge', { data: 'the client has this one' });
    await publisher.append('huge', { data: 'before it' });
    // 3 MB at 1 MB/s: even alone, the entry takes 3 s, over the deadline of a read (1 s).
    const huge = await publisher.append('huge', { data: 'x'.repeat(3_000_000) });
    await publisher.append('huge', { data: 'after it' });
    proxy.limitAll(1_000_000);
    const channel = createChannel(store, 'huge');
    // A client that reconnects each time its stream fails, from the id it has.
    const outcomes: unknown[] = [];
    let received: unknown[] = [];
    let subscription: Subscription | undefined;
    for (let attempt = 0; attempt < 6 && subscription === undefined; attempt++) {
      const source = await channel.subscribe({ lastEventId: resume });
      const failed = await new Promise<boolean>((resolve) => {
        const values: unknown[] = [];
        const sub = source.subscribe({
          next: (value) => {
            values.push(value);
            resolve(false);
          },
          error: (error: unknown) => {
            outcomes.push(error instanceof ChannelUnavailableError ? 'failed' : error);
            resolve(true);
          },
        });
        if (!sub.closed) [subscription, received] = [sub, values];
      });
      if (failed) subscription = undefined;
    }
    expect(outcomes.every((o) => o === 'failed')).toBe(true);
    expect(received).toEqual([
      { type: 'history-truncated', data: { lastEventId: resume, reason: 'history' } },
    ]);
    expect(errors.map(String).filter((e) => e.includes(huge))).toHaveLength(1);
    // The stream goes on live.
    const live = await publisher.append('huge', { data: 'live' });
    await until(() => received.length === 2, 'the live event');
    subscription!.unsubscribe();
    expect(received[1]).toMatchObject({ id: live, data: 'live' });
  }, 40_000);

  it('replays what follows it to a client that has it, at its first resume', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, commandTimeoutMs: 1000, onError: () => {} });
    const publisher = redis.engine();
    await connected(store);
    // Delivered live by a process on a faster link. 1.5 MB at 1 MB/s: over the deadline of a read (1 s).
    const huge = await publisher.append('had huge', { data: 'x'.repeat(1_500_000) });
    const after = await publisher.append('had huge', { data: 'after it' });
    proxy.limitAll(1_000_000);
    const channel = createChannel(store, 'had huge');
    // Its entry is checked to be there, not fetched.
    const replayed = await firstValueFrom(await channel.subscribe({ lastEventId: huge }));
    expect(replayed).toMatchObject({ id: after, data: 'after it' });
  });

  it('tells a client that has one such entry of the next one, rather than fail its every resume', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, commandTimeoutMs: 1000, onError: () => {} });
    const publisher = redis.engine();
    await connected(store);
    // 1.2 MB each at 1 MB/s: either alone is over the deadline of a read (1 s).
    const had = await publisher.append('two huge', { data: 'x'.repeat(1_200_000) });
    await publisher.append('two huge', { data: 'y'.repeat(1_200_000) });
    proxy.limitAll(1_000_000);
    const channel = createChannel(store, 'two huge');
    let replayed: unknown;
    for (let attempt = 0; attempt < 8 && replayed === undefined; attempt++) {
      const source = await channel.subscribe({ lastEventId: had });
      replayed = await firstValueFrom(source).catch((error: unknown) => {
        if (!(error instanceof ChannelUnavailableError)) throw error;
        return undefined;
      });
    }
    expect(replayed).toEqual({ type: 'history-truncated', data: { lastEventId: had, reason: 'history' } });
  }, 40_000);

  it.each(MODES)(
    'starts a topic whose last entry is too large to arrive in time, and delivers what follows (%s)',
    async (_mode, partitions) => {
      // 1.5 MB at 1 MB/s: over the deadline of a call (1 s).
      const { publisher, seen, stop } = await throttledTopic('last huge', partitions, 'x'.repeat(1_500_000));
      const after = await publisher.append('last huge', { data: 'after it' });
      await until(() => seen.length > 0, 'the event after it');
      stop();
      expect(seen).toEqual([after]);
    },
  );

  it.each(MODES)(
    'goes on delivering after its live connection dropped while its last entry is one too large to arrive in time (%s)',
    async (_mode, partitions) => {
      // 1.5 MB at 1 MB/s: over the deadline of a call (1 s).
      const { publisher, seen, stop } = await throttledTopic(
        'dropped huge',
        partitions,
        'x'.repeat(1_500_000),
      );
      await until(() => proxy!.connections.length === LIVE + 1, 'the live connection');
      // The read after a dropped connection checks its cursor, the large entry, is still there.
      proxy!.connections[LIVE]!.destroy();
      await until(() => proxy!.connections.length === LIVE + 2, 'a new live connection');
      const after = await publisher.append('dropped huge', { data: 'after it' });
      await until(() => seen.length > 0, 'the event after it');
      stop();
      expect(seen).toEqual([after]);
    },
  );

  it.each(MODES)(
    'delivers the first entry of a topic that started empty, when it arrives in time alone (%s)',
    async (_mode, partitions) => {
      // 400 kB at 1 MB/s: 0.4 s alone. The deadline of a read (2 s) leaves a busy machine room: the
      // bytes the store received, not the clock, tell how often it was fetched.
      const { publisher, seen, stop, errors } = await throttledTopic(
        'first large',
        partitions,
        undefined,
        2000,
      );
      const before = received();
      const first = await publisher.append('first large', { data: 'x'.repeat(400_000) });
      await until(() => seen.length > 0, 'the first event');
      stop();
      expect(seen).toEqual([first]);
      expect(errors.filter((error) => error instanceof RedisTimeoutError)).toEqual([]);
      // Fetched by the blocking read, then once by the read that checks nothing was trimmed before
      // it: that read asks the stream's counts, not the first and last entries XINFO sends whole.
      expect(received() - before).toBeLessThan(3 * 400_000);
    },
  );

  it('reads a page of large events in time when the page would hold them, at its first try', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, commandTimeoutMs: 2000, onError: () => {} });
    const publisher = redis.engine();
    await connected(store);
    // 200 kB each at 1 MB/s: a page of 300 kB holds one, and takes one more to end, in 0.4 s. The
    // deadline of a read (2 s) leaves a busy machine room: the bytes each read received, not the
    // clock, tell that it fetched those two, not the client's own and a few more.
    const big = 'x'.repeat(200_000);
    const resume = await publisher.append('pages', { data: big });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await publisher.append('pages', { data: big }));
    proxy.limitAll(1_000_000);
    const limit = { count: 1000, bytes: 300_000 };
    const fetched: number[] = [];
    const pages = [];
    for (const from of [resume, ids[0]!]) {
      const before = received();
      pages.push(await store.read('pages', from, limit));
      fetched.push(received() - before);
    }
    expect(pages.map((page) => [page.events.map((m) => m.id), page.more])).toEqual([
      [ids.slice(0, 1), true],
      [ids.slice(1, 2), true],
    ]);
    for (const bytes of fetched) expect(bytes).toBeLessThan(3 * 200_000);
  });

  it('replays everything over an entry a read timed out on once: one reply held back proves nothing', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, commandTimeoutMs: 1000, onError: () => {} });
    await connected(store);
    const resume = await store.append('held', { data: 'had' });
    // The largest is suspected, and fetched alone by the next replay.
    const ids = [
      await store.append('held', { data: 'one' }),
      await store.append('held', { data: 'the largest' }),
      await store.append('held', { data: 'three' }),
    ];
    const channel = createChannel(store, 'held');
    // Started already: the subscriptions' listens send nothing, their replays are all that is held.
    const stop = await store.listen('held', recorder().listener);
    proxy.connections[READS]!.hold();
    const first = await channel.subscribe({ lastEventId: resume });
    await expect(firstValueFrom(first)).rejects.toBeInstanceOf(ChannelUnavailableError);
    // Once Redis has said which entry that was, a page ends before it, the next fetches it alone.
    const limit = { count: 10, bytes: 10_000 };
    let page = await store.read('held', resume, limit);
    for (let i = 0; i < 100 && !page.more; i++) page = await store.read('held', resume, limit);
    expect(page.events.map((m) => m.id)).toEqual(ids.slice(0, 1));
    expect(page.more).toBe(true);
    const second = await channel.subscribe({ lastEventId: resume });
    const replayed = await firstValueFrom(second.pipe(take(3), toArray()));
    stop();
    expect(replayed.map((m) => (m as StoredMessage).id)).toEqual(ids);
  });
});

describe('redisEngine after its live connection failed', () => {
  it('says ids may restart lower after a gap it finds then, even with entries above its cursor', async () => {
    // A Redis restarted without its data numbers from its clock again: with a clock behind the old
    // one's, a new entry can fall below an id a resuming client was just replayed.
    const { events, reading, key } = await laggingListener('restarted');
    reading.hold();
    await redis.raw.del(key);
    const after = await redis.raw.xAdd(key, '*', { d: 'after the loss' });
    await until(() => reading.holding > 0, 'the read that brings it');
    reading.destroy();
    await until(() => events.includes(after), 'the event after the loss');
    expect(events).toEqual(['<gap restart>', after]);
  });

  it('says so too when the entries above its cursor came after the read that found it gone', async () => {
    const { events, reading, key } = await laggingListener('restarted late');
    reading.hold();
    await redis.raw.del(key);
    await until(() => reading.holding > 0, 'a read after the loss');
    // The read after the failure finds nothing after the cursor; the entry comes before the reader
    // asks the stream's counts, so the read after that one finds the gap.
    const written = proxy!.beforeNext(
      (command) => command.includes('XINFO'),
      () => redis.raw.xAdd(key, '*', { d: 'after the loss' }),
    );
    reading.destroy();
    const after = await written;
    await until(() => events.includes(after), 'the event after the loss');
    expect(events).toEqual(['<gap restart>', after]);
  });

  it('sends a subscriber that resumed above its cursor an entry numbered below that id after such a gap', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url });
    const publisher = redis.engine();
    const topic = 'resumed above';
    const key = `sse:{${topic}}`;
    const cursor = await store.append(topic, { data: 'the reader has this one' });
    const stop = await store.listen(topic, { event: () => {}, gap: () => {} });
    await until(liveReadBlocked(), 'the live read blocking');
    const reading = proxy.connections[LIVE]!;
    reading.hold();
    // Delivered to a client by another process, before this reader read it.
    const ms = Number(cursor.split('-')[0]);
    const had = await publisher.append(topic, { id: `${ms + 20_000}-0`, data: 'the client has this one' });
    await until(() => reading.holding > 0, 'the read that brings it');
    const received: unknown[] = [];
    const subscription = (await createChannel(store, topic).subscribe({ lastEventId: had })).subscribe((e) =>
      received.push(e),
    );
    onTestFinished(() => subscription.unsubscribe());
    // Redis lost the stream with the connection; it numbers the next entry below the client's id
    // (a clock behind the old one's), after the read that finds the cursor gone.
    await redis.raw.del(key);
    const written = proxy.beforeNext(
      (command) => command.includes('XINFO'),
      () => publisher.append(topic, { id: `${ms + 10_000}-0`, data: 'below the id the client has' }),
    );
    reading.destroy();
    const below = await written;
    const next = await publisher.append(topic, { id: `${ms + 30_000}-0`, data: 'next' });
    await until(() => received.some((e) => (e as StoredMessage).id === next), 'the next event');
    stop();
    expect(received).toEqual([
      { type: 'history-truncated', data: { lastEventId: had, reason: 'gap' } },
      expect.objectContaining({ id: below }),
      expect.objectContaining({ id: next }),
    ]);
  });
});

describe('redisEngine on a Redis that restarts without its data', () => {
  it.each(MODES)(
    'tells a listener about entries lost before its reader read them (%s)',
    async (_mode, partitions) => {
      proxy = await RedisProxy.start(redis.server.port);
      const store = redis.engine({ url: proxy.url, partitions, commandTimeoutMs: 1000 });
      await connected(store);
      const events: string[] = [];
      // A topic with no stream yet: its reader starts from the beginning, with no cursor to miss.
      const stop = await store.listen('restarted', {
        event: (m) => events.push(m.id!),
        gap: (kind) => events.push(`<gap ${kind}>`),
      });
      await until(liveReadBlocked(), 'the live read blocking');
      // The reader never gets what it read: Redis dies with the entry in its reply.
      const reading = proxy.connections[LIVE]!;
      reading.hold();
      await store.append('restarted', { data: 'lost' });
      await until(() => reading.holding > 0, 'the read of the entry');
      await redis.server.kill9();
      await redis.server.restart({ persistent: false });
      await until(() => redis.raw.isReady, 'the raw client reconnected');

      let after: string | undefined;
      while (after === undefined)
        after = await store.append('restarted', { data: 'after' }).catch(() => undefined);
      await until(() => events.includes(after), 'the event after the restart');
      stop();
      expect(events).toEqual([partitions ? '<gap continue>' : '<gap restart>', after]);
    },
  );

  it.each(MODES)(
    'tells a listener that started before Redis restarted, and its reader connected after (%s)',
    async (_mode, partitions) => {
      proxy = await RedisProxy.start(redis.server.port);
      const store = redis.engine({ url: proxy.url, partitions, commandTimeoutMs: 1000 });
      // The command connection is up, and no stream exists yet.
      await connected(store);
      await store.read('late', '1-1', { count: 1, bytes: 1000 });
      // The live connection gets no reply until Redis is gone: the reader first reads the new one.
      proxy.holdNew = true;
      const events: string[] = [];
      const stop = await store.listen('late', {
        event: (m) => events.push(m.id!),
        gap: (kind) => events.push(`<gap ${kind}>`),
      });
      await store.append('late', { data: 'lost' });
      await redis.server.kill9();
      proxy.holdNew = false;
      await redis.server.restart({ persistent: false });
      await until(() => redis.raw.isReady, 'the raw client reconnected');

      let after: string | undefined;
      while (after === undefined)
        after = await store.append('late', { data: 'after' }).catch(() => undefined);
      await until(() => events.includes(after), 'the event after the restart');
      stop();
      expect(events).toEqual([partitions ? '<gap continue>' : '<gap restart>', after]);
    },
  );
});

describe('redisEngine whose reconnectStrategy gives up', () => {
  it('connects its command connection again once Redis is back, and publishes again', async () => {
    const errors: unknown[] = [];
    const store = redis.engine({
      commandTimeoutMs: 1000,
      // node-redis closes a client for good once its strategy returns an Error.
      clientOptions: { socket: { reconnectStrategy: givingUpStrategy().reconnectStrategy } },
      onError: (error) => void errors.push(error),
    });
    await connected(store);
    await redis.server.kill9();
    // Three retries 20 ms apart: the client is closed for good well within this.
    await until(() => errors.length > 0, 'the connection lost');
    await new Promise((resolve) => setTimeout(resolve, 500));
    await redis.server.restart({ persistent: false });
    await until(() => redis.raw.isReady, 'the raw client reconnected');
    const id = await appendOnceBack(store, 'back', 50);
    expect((await store.read('back', id, { count: 1, bytes: 100 })).truncated).toBe(false);
  });

  it('tells a give-up of its own once, then its repeats at growing intervals, not each one', async () => {
    const errors: unknown[] = [];
    const { reconnectStrategy, gaveUp } = givingUpStrategy();
    const store = redis.engine({
      commandTimeoutMs: 1000,
      clientOptions: { socket: { reconnectStrategy } },
      onError: (error) => void errors.push(error),
    });
    await connected(store);
    await redis.server.kill9();
    onTestFinished(() => redis.server.restart({ persistent: false }));
    // The engine connects again after each give-up, and each of those gives up as well.
    await until(() => gaveUp() >= 4, 'four give-ups', 20_000);
    const told = errors.filter((error) => error instanceof Error && error.message === 'gave up');
    expect(told).toHaveLength(1);
  });
});

describe('redisEngine resumed by many clients at once', () => {
  /** History reads Redis has run so far: each page starts with a script. */
  async function scriptsRun(): Promise<number> {
    const stats = await redis.raw.info('commandstats');
    return [...stats.matchAll(/^cmdstat_eval\w*:calls=(\d+)/gm)].reduce((sum, [, n]) => sum + Number(n), 0);
  }

  it('sends a few reads at a time, so that each is served as if alone and publishes pass them', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url });
    await connected(store);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await store.append('storm', { data: `event ${i}` }));
    const before = await scriptsRun();
    // Replies held back: no read can finish, so what reaches Redis is what was sent at once.
    const held = proxy.connections[READS]!;
    held.hold();
    const reads = Array.from({ length: 50 }, () =>
      store.read('storm', ids[0]!, { count: 100, bytes: 65_536 }),
    );
    // Redis has run every command sent on the connection once it holds none of them unread.
    const address = `${held.upstream.localAddress}:${held.upstream.localPort}`;
    const unread = async () => (await redis.raw.clientList()).find((c) => c.addr === address)?.qbuf;
    for (let waited = 0; (await scriptsRun()) - before < 8 || (await unread()) !== 0; waited++)
      if (waited === 1000) throw new Error('the reads never reached Redis');
    expect((await scriptsRun()) - before).toBe(8);
    // Publishes pass them: they have a connection of their own.
    expect(await store.append('marker', { data: 'while the reads wait' })).toMatch(/^\d+-\d+$/);
    held.release();
    for (const page of await Promise.all(reads)) expect(page.events.map((e) => e.id)).toEqual(ids.slice(1));
  });
});
