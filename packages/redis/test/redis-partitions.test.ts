import {
  type ChannelEngine,
  createChannel,
  type GapKind,
  type LiveListener,
  type StoredMessage,
} from '@rxsse/core/channel';
import { recordSource, until } from '@rxsse/core/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RedisEngineError } from '../src/index.js';
import { PartitionLayout, slotOf } from '../src/partition.js';
import { RedisProxy } from './support/proxy.js';
import { connected, killLiveConnection, ownRedis, useRedis } from './support/use-redis.js';

const redis = useRedis({ defaults: { blockMs: 100, partitions: 4 }, flush: true });
const { engine } = redis;
const layout = new PartitionLayout('sse:', 4);

function recorder() {
  const events: StoredMessage[] = [];
  const kinds: (GapKind | undefined)[] = [];
  const listener: LiveListener = {
    event: (m) => events.push(m),
    gap: (kind) => {
      kinds.push(kind);
      events.push({ id: '<gap>', data: '' });
    },
  };
  return { listener, events, kinds, ids: () => events.map((e) => e.id) };
}

/**
 * The size of the arguments of the live read blocked now, from `CLIENT LIST` (it grows with the
 * keys read). An event on `topic` first wakes the reader, so the read is one issued after every
 * listener was added.
 */
async function blockedReadArgvBytes(store: ChannelEngine, topic: string): Promise<number> {
  const seen = recorder();
  const stop = await store.listen(topic, seen.listener);
  await store.append(topic, { data: 'wake up' });
  await until(() => seen.events.length === 1, 'the event');
  stop();
  let argvMem: number | undefined;
  await until(() => {
    redis.raw.clientList().then((clients) => {
      argvMem = clients.find((c) => c.cmd === 'xread' && c.flags.includes('b'))?.argvMem;
    });
    return argvMem !== undefined;
  }, 'a blocked XREAD');
  return argvMem!;
}

/** Polls `check`, which asks Redis, until it holds. */
async function untilTrue(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let waited = 0; !(await check()); waited += 10) {
    if (waited > 10_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Takes the last entry of the stream `key` away as a replica that never got it would lack it (one
 * promoted in a failover): its last id goes back too, unlike an `XDEL`'s.
 */
async function loseLastEntry(key: string): Promise<void> {
  const [last, previous] = (await redis.raw.xRevRange(key, '+', '-', { COUNT: 2 })) ?? [];
  await redis.raw.xDel(key, last!.id);
  await redis.raw.sendCommand(['XSETID', key, previous?.id ?? '0-0']);
}

describe('redisEngine({ partitions })', () => {
  it('blocks on the partitions only, however many topics have listeners', async () => {
    const topics = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
    const partitioned = engine();
    await Promise.all(topics.map((t) => partitioned.listen(t, recorder().listener)));
    expect(await blockedReadArgvBytes(partitioned, 'user-0')).toBeLessThan(400);
    await partitioned.close();

    // The per-topic mode, for contrast: its read names every topic.
    const perTopic = engine({ partitions: undefined });
    await Promise.all(topics.map((t) => perTopic.listen(t, recorder().listener)));
    expect(await blockedReadArgvBytes(perTopic, 'user-0')).toBeGreaterThan(20_000);
  });

  it("keeps reading a partition while a topic in it has a listener, once another topic's last one left", async () => {
    const store = engine();
    const first = 'room-0';
    const second = Array.from({ length: 100 }, (_, i) => `room-${i + 1}`).find(
      (t) => layout.partitionOf(t) === layout.partitionOf(first),
    )!;
    const leaving = recorder();
    const staying = recorder();
    const stop = await store.listen(first, leaving.listener);
    await store.listen(second, staying.listener);
    stop();
    const id = await store.append(second, { data: 'still read' });
    await until(() => staying.events.length === 1, 'the event');
    expect(staying.ids()).toEqual([id]);
  });

  it('stops reading a partition once its last topic has no listener: no read, whatever is published', async () => {
    const store = engine();
    const publisher = engine();
    const xreads = async () =>
      Number(/cmdstat_xread:calls=(\d+)/.exec(await redis.raw.info('commandstats'))?.[1] ?? 0);
    const blocked = async () =>
      (await redis.raw.clientList()).some((c) => c.cmd === 'xread' && c.flags.includes('b'));
    const stop = await store.listen('room', recorder().listener);
    await untilTrue(blocked, 'a blocked XREAD');
    stop();
    await untilTrue(async () => !(await blocked()), 'no XREAD blocked');
    // Another topic of the same partition: a reader still on the partition would read every event.
    const neighbour = Array.from({ length: 100 }, (_, i) => `n${i}`).find(
      (t) => t !== 'room' && layout.partitionOf(t) === layout.partitionOf('room'),
    )!;
    const before = await xreads();
    for (let i = 0; i < 20; i++) await publisher.append(neighbour, { data: `m${i}` });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await xreads()) - before).toBe(0);
  });

  it('keeps history per topic and the live copy in the partition stream, with the topic and its id', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('room', seen.listener);
    const other = recorder();
    const stopOther = await store.listen('other', other.listener);
    const a = await store.append('room', { data: 'a', type: 'chat' });
    const b = await store.append('other', { data: { n: 1 } });
    await until(() => seen.events.length === 1 && other.events.length === 1, 'both events');
    stop();
    stopOther();
    expect(seen.events).toEqual([{ id: a, data: 'a', type: 'chat', retry: undefined }]);
    expect(other.events).toEqual([{ id: b, data: { n: 1 }, type: undefined, retry: undefined }]);
    expect(await redis.raw.xRange(layout.topicKey('room'), '-', '+')).toEqual([
      { id: a, message: { d: 'a', t: 'chat' } },
    ]);
    const live = await redis.raw.xRange(layout.partitionKey(layout.partitionOf('room')), '-', '+');
    expect(live?.map((e) => e.message)).toContainEqual({ k: 'room', i: a, d: 'a', t: 'chat' });
  });

  it('refuses an id that is not after the last and writes nothing, to neither stream', async () => {
    const store = engine();
    const id = await store.append('t', { data: 'x' });
    const rejected = await store.append('t', { id, data: 'again' }).catch((error: unknown) => error);
    // A RangeError, as for an id the memory engine refuses; Redis's reply is its cause.
    expect(rejected).toBeInstanceOf(RangeError);
    expect(String((rejected as Error).cause)).toMatch(
      /ID specified in XADD is equal or smaller than the target stream top item/,
    );
    expect(await redis.raw.xLen(layout.topicKey('t'))).toBe(1);
    expect(await redis.raw.xLen(layout.partitionKey(layout.partitionOf('t')))).toBe(1);
  });

  it('refuses a publish whose partition key is not a stream and writes nothing, to neither stream', async () => {
    const store = engine();
    await redis.raw.set(layout.partitionKey(layout.partitionOf('t')), 'not a stream');
    const rejected = await store.append('t', { data: 'x' }).catch((error: unknown) => error);
    expect(rejected).toBeInstanceOf(RedisEngineError);
    expect((rejected as Error).message).toMatch(/WRONGTYPE/);
    expect(await redis.raw.exists(layout.topicKey('t'))).toBe(0);
  });

  it('stores concurrent publishes in call order, even while Redis loads its script', async () => {
    const store = engine();
    await store.append('warm', { data: 'x' });
    await redis.raw.scriptFlush();
    // Calls spread over ticks, so some are sent while earlier ones are still being answered.
    const appends: Promise<string>[] = [];
    for (let i = 0; i < 200; i++) {
      appends.push(store.append('ordered', { data: `m${i}` }));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const ids = await Promise.all(appends);
    const stored = (await redis.raw.xRange(layout.topicKey('ordered'), '-', '+')) ?? [];
    expect(stored.map((e) => e.message.d)).toEqual(appends.map((_, i) => `m${i}`));
    expect(stored.map((e) => e.id)).toEqual(ids);
  });

  it('tells listeners of a partition about a gap when trimming outruns the reader, and never goes backwards', async () => {
    const store = engine({ partitionMaxLength: 10, readCount: 5 });
    const seen = recorder();
    const stop = await store.listen('fast', seen.listener);
    // 2,000 entries in one round trip: far more than is kept between two reads of 5.
    const multi = redis.raw.multi();
    const key = layout.partitionKey(layout.partitionOf('fast'));
    const trim = { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 10 } } as const;
    for (let i = 1; i <= 2000; i++) multi.xAdd(key, '*', { k: 'fast', i: `${i}-0`, d: `m${i}` }, trim);
    await multi.exec();
    await until(() => seen.events.at(-1)?.id === '2000-0', 'the last event');
    stop();
    expect(seen.ids()).toContain('<gap>');
    const delivered = seen
      .ids()
      .filter((id) => id !== '<gap>')
      .map((id) => Number.parseInt(id, 10));
    for (let i = 1; i < delivered.length; i++) expect(delivered[i]).toBeGreaterThan(delivered[i - 1]!);
  });

  it('reports an entry it did not write as a gap of its partition, and goes on', async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    const seen = recorder();
    const stop = await store.listen('t', seen.listener);
    await redis.raw.xAdd(layout.partitionKey(layout.partitionOf('t')), '*', { d: 'foreign' });
    const id = await store.append('t', { data: 'mine' });
    await until(() => seen.events.length === 2, 'the gap and the event');
    stop();
    expect(seen.ids()).toEqual(['<gap>', id]);
    expect(seen.kinds).toEqual(['continue']);
    expect(String(errors[0])).toMatch(/^TypeError: Partition entry \d+-\d+ has no topic and id/);
  });

  it('reports an entry whose id is not a stream id as a gap too', async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    const seen = recorder();
    const stop = await store.listen('t', seen.listener);
    await redis.raw.xAdd(layout.partitionKey(layout.partitionOf('t')), '*', { k: 't', i: 'last', d: 'x' });
    const id = await store.append('t', { data: 'mine' });
    await until(() => seen.events.length === 2, 'the gap and the event');
    stop();
    expect(seen.ids()).toEqual(['<gap>', id]);
    expect(seen.kinds).toEqual(['continue']);
    expect(String(errors[0])).toMatch(/^TypeError: Partition entry \d+-\d+ has no topic and id/);
  });

  it("trims the partition stream at partitionMaxLength and a topic's at maxLength", async () => {
    const store = engine({ partitions: 1, maxLength: 1000, partitionMaxLength: 100 });
    await Promise.all(Array.from({ length: 600 }, (_, i) => store.append('trimmed', { data: `m${i}` })));
    // MAXLEN ~ trims whole nodes of 100 entries: about the limit stays, never less.
    const partition = await redis.raw.xLen(new PartitionLayout('sse:', 1).partitionKey(0));
    expect(partition).toBeGreaterThanOrEqual(100);
    expect(partition).toBeLessThan(300);
    expect(await redis.raw.xLen(new PartitionLayout('sse:', 1).topicKey('trimmed'))).toBe(600);
  });

  it('delivers nothing twice after a gap in its partition (a failover to a replica that lacks the last entries)', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('t', seen.listener);
    const a = await store.append('t', { data: 'a' });
    const b = await store.append('t', { data: 'b' });
    await until(() => seen.events.length === 2, 'both events');
    // The replica never got b's live copy; the reader's connection breaks.
    await loseLastEntry(layout.partitionKey(layout.partitionOf('t')));
    await killLiveConnection(redis.raw);
    await until(() => seen.ids().includes('<gap>'), 'the gap');
    const c = await store.append('t', { data: 'c' });
    await until(() => seen.ids().includes(c), 'the next event');
    stop();
    expect(seen.ids()).toEqual([a, b, '<gap>', c]);
    // The topic's ids never go back.
    expect(seen.kinds).toEqual(['continue']);
  });

  it("delivers a topic's last event once when its partition is read again from before it", async () => {
    const one = new PartitionLayout('sse:', 1);
    const store = engine({ partitions: 1 });
    const seen = recorder();
    const stop = await store.listen('t', seen.listener);
    const other = recorder();
    const stopOther = await store.listen('u', other.listener);
    const a = await store.append('t', { data: 'a' });
    await store.append('u', { data: 'b' });
    await until(() => seen.events.length === 1 && other.events.length === 1, 'both events');
    // The partition lost its last entry, another topic's: read on from before it, it has t's a.
    await loseLastEntry(one.partitionKey(0));
    await killLiveConnection(redis.raw);
    await until(() => seen.ids().includes('<gap>'), 'the gap');
    const c = await store.append('t', { data: 'c' });
    await until(() => seen.ids().includes(c), 'the next event');
    stop();
    stopOther();
    expect(seen.ids()).toEqual([a, '<gap>', c]);
  });

  it('delivers no event a new listener starts after, when it is published as the topic reads its start', async () => {
    const proxy = await RedisProxy.start(redis.server.port);
    onTestFinished(() => proxy.close());
    const store = engine({ url: proxy.url });
    const publisher = engine();
    const topic = 'landing';
    const seen = recorder();
    let startsAfter: string | undefined;
    // The partition is watched from before it: its live copy reaches the topic, whose cursor is then it.
    const written = proxy.beforeNext(
      (command) => command.includes(layout.topicKey(topic)),
      () => publisher.append(topic, { data: 'as the topic starts' }),
    );
    const stop = await store.listen(topic, { ...seen.listener, startsAfter: (id) => (startsAfter = id) });
    const landed = await written;
    expect(startsAfter).toBe(landed);
    const next = await publisher.append(topic, { data: 'next' });
    await until(() => seen.events.length > 0, 'the next event');
    stop();
    expect(seen.ids()).toEqual([next]);
  });

  it('replays what a gap in its partition skipped to a client that resumes after it, from its history', async () => {
    const one = new PartitionLayout('sse:', 1);
    const t = createChannel(engine({ partitions: 1 }), 'T');
    const first = recordSource(await t.subscribe());
    const [w, x] = [await t.publish({ data: 'w' }), await t.publish({ data: 'x' })];
    await until(() => first.received.length === 2, 'the first events');
    // In one go, as a burst would: T's y in its history and the partition, and the partition
    // trimmed past the reader, y with it.
    const hole = `
      local y = redis.call('XADD', KEYS[1], '*', 'd', 'y')
      redis.call('XADD', KEYS[3], '*', 'k', 'T', 'i', y, 'd', 'y')
      redis.call('XADD', KEYS[3], '*', 'k', 'U', 'i', redis.call('XADD', KEYS[2], '*', 'd', 'u'), 'd', 'u')
      redis.call('XTRIM', KEYS[3], 'MAXLEN', 1)
      return y`;
    const keys = [one.topicKey('T'), one.topicKey('U'), one.partitionKey(0)];
    const y = String(await redis.raw.eval(hole, { keys }));
    await until(() => first.ids().includes('<history-truncated>'), 'the gap');
    // Its cursor is still x, which no new listener may start after: y is in no live event.
    const fromX = recordSource(await t.subscribe({ lastEventId: x }));
    const fromW = recordSource(await t.subscribe({ lastEventId: w }));
    const after = await t.publish({ data: 'after' });
    await until(() => fromX.ids().includes(after) && fromW.ids().includes(after), 'the next event');
    for (const client of [first, fromX, fromW]) client.unsubscribe();
    expect(fromX.ids()).toEqual([y, after]);
    expect(fromW.ids()).toEqual([x, y, after]);
  });

  it('tells a client that resumes after Redis came back from an older snapshot that history is gone', async () => {
    const { server, raw, engine: store } = await ownRedis({ partitions: 1, blockMs: 50 });
    const t = createChannel(store, 'T');
    const first = recordSource(await t.subscribe());
    onTestFinished(first.unsubscribe);
    const w = await t.publish({ data: 'w' });
    await raw.sendCommand(['SAVE']);
    const x = await t.publish({ data: 'x' });
    await until(() => first.received.length === 2, 'the first events');
    await server.kill9();
    await server.restart({ persistent: false });
    await until(() => first.ids().includes('<history-truncated>'), 'the gap');
    const resumed = recordSource(await t.subscribe({ lastEventId: x }));
    onTestFinished(resumed.unsubscribe);
    // Numbered below x, as by a new master whose clock is behind: the topic's cursor drops it.
    const [ms, seq] = w.split('-');
    await t.publish({ id: `${ms}-${Number(seq) + 1}`, data: 'below' });
    const after = await t.publish({ data: 'after' });
    await until(() => resumed.ids().includes(after), 'the next event');
    expect(resumed.ids()).toEqual(['<history-truncated>', after]);
  });

  it("tells only the topics of the partition that lost entries, and drops others' events quietly", async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    const topics = ['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7', 't8', 't9'];
    const lossy = topics[0]!;
    const spared = topics.find((t) => layout.partitionOf(t) !== layout.partitionOf(lossy))!;
    const unheard = topics.find((t) => t !== spared && layout.partitionOf(t) === layout.partitionOf(spared))!;
    const [seen, kept] = [recorder(), recorder()];
    const stops = [await store.listen(lossy, seen.listener), await store.listen(spared, kept.listener)];
    await store.append(lossy, { data: 'a' });
    await store.append(spared, { data: 'b' });
    await until(() => seen.events.length === 1 && kept.events.length === 1, 'both events');
    await loseLastEntry(layout.partitionKey(layout.partitionOf(lossy)));
    await killLiveConnection(redis.raw);
    await until(() => seen.ids().includes('<gap>'), 'the gap');
    // What the dropped connection reported is behind us.
    errors.length = 0;
    await store.append(unheard, { data: 'nobody listens here' });
    const c = await store.append(spared, { data: 'c' });
    await until(() => kept.ids().includes(c), 'the next event');
    for (const stop of stops) stop();
    expect(kept.ids()).not.toContain('<gap>');
    expect(errors).toEqual([]);
  });

  it('tells a listener about Redis losing its data, then delivers what follows', async () => {
    const store = engine({ commandTimeoutMs: 300 });
    await connected(store);
    const seen = recorder();
    const stop = await store.listen('blip', seen.listener);
    const before = await store.append('blip', { data: 'before' });
    await until(() => seen.events.length === 1, 'the first event');
    await redis.server.kill9();
    await expect(store.append('blip', { data: 'lost' })).rejects.toThrow(RedisEngineError);
    await redis.server.restart({ persistent: false });
    await until(() => redis.raw.isReady, 'the raw client reconnected');
    let after: string | undefined;
    while (after === undefined) after = await store.append('blip', { data: 'after' }).catch(() => undefined);
    await until(() => seen.events.some((e) => e.id === after), 'the event after the restart');
    stop();
    expect(seen.ids()).toEqual([before, '<gap>', after]);
  });
});

describe('PartitionLayout', () => {
  it('spreads 100,000 topics evenly over the partitions, and the partitions over 3 masters', () => {
    const sixteen = new PartitionLayout('sse:', 16);
    const perPartition = new Array<number>(16).fill(0);
    for (let i = 0; i < 100_000; i++) perPartition[sixteen.partitionOf(`user-${i}`)]!++;
    for (const count of perPartition) expect(Math.abs(count - 6250)).toBeLessThan(6250 * 0.05);

    // The slot ranges `redis-cli --cluster create` gives 3 masters.
    const master = (slot: number) => (slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2);
    const topicsPerMaster = [0, 0, 0];
    for (let p = 0; p < 16; p++) {
      const tag = /\{(.*)\}/.exec(sixteen.partitionKey(p))![1]!;
      topicsPerMaster[master(slotOf(tag))]! += perPartition[p]!;
    }
    for (const count of topicsPerMaster)
      expect(Math.abs(count - 100_000 / 3)).toBeLessThan(100_000 / 16 + 1000);
  });

  it('hashes topics with 32-bit FNV-1a, so every process and every version agrees', () => {
    // Published FNV-1a test vectors: "" 0x811c9dc5, "a" 0xe40c292c, "foobar" 0xbf9cf968.
    const thousand = new PartitionLayout('sse:', 1000);
    expect(thousand.partitionOf('')).toBe(0x811c9dc5 % 1000);
    expect(thousand.partitionOf('a')).toBe(0xe40c292c % 1000);
    expect(thousand.partitionOf('foobar')).toBe(0xbf9cf968 % 1000);
  });

  it("keeps every partition's keys from one version to the next", () => {
    // Processes of two versions share one Redis: the Cluster's default 16 partitions, and tags whose
    // slot is the first of their partition's share of the slot range.
    const sixteen = new PartitionLayout('sse:', 16);
    expect(Array.from({ length: 16 }, (_, p) => sixteen.partitionKey(p))).toEqual(
      '0.13 1.10 2.3 3.0 4.63 5.60 6.43 7.40 8.20 9.23 10.40 11.43 12.1 13.2 14.23 15.20'
        .split(' ')
        .map((tag) => `sse:{${tag}}`),
    );
    const hundred = new PartitionLayout('sse:', 100);
    expect([31, 98].map((p) => hundred.partitionKey(p))).toEqual(['sse:{31.274}', 'sse:{98.113}']);
  });

  it('computes Redis Cluster slots as Redis does', () => {
    // CLUSTER KEYSLOT values from Redis's documentation and tests.
    expect(slotOf('123456789')).toBe(12739);
    expect(slotOf('foo')).toBe(12182);
    expect(slotOf('user1000')).toBe(3443);
  });

  it('keeps topic keys apart from partition keys and from each other', () => {
    const keys = new Set(['', 'a', ':', '}', '{x}'].map((t) => layout.topicKey(t)));
    for (let p = 0; p < 4; p++) keys.add(layout.partitionKey(p));
    expect(keys.size).toBe(9);
  });
});
