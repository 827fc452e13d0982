import { setTimeout as realSleep } from 'node:timers/promises';
import { SOURCE_HEADERS } from '@rxsse/core';
import {
  type ChannelEngine,
  createChannel,
  type GapKind,
  type LiveListener,
  type StoredMessage,
} from '@rxsse/core/channel';
import { recordSource, until } from '@rxsse/core/testing';
import { createClient, ErrorReply } from 'redis';
import { firstValueFrom } from 'rxjs';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { freePort } from '../../../test/support/processes.js';
import { recordUnhandledRejections } from '../../../test/support/warnings.js';
import { RedisEngineError, RedisTimeoutError, RedisTopicError, redisEngine } from '../src/index.js';
import { RedisProxy } from './support/proxy.js';
import { LiveClient } from './support/sse-clients.js';
import { startStreamServer } from './support/stream-server.js';
import { connected, killLiveConnection, ownRedis, useRedis } from './support/use-redis.js';

const redis = useRedis({ defaults: { blockMs: 100 } });
const { engine } = redis;

/** How many times Redis has run `command` (`xread`: blocking or not). */
async function calls(command: string): Promise<number> {
  const stats = await redis.raw.info('commandstats');
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
}

/** How many bytes Redis has sent its clients. */
async function sentBytes(): Promise<number> {
  return Number((await redis.raw.info('stats')).match(/total_net_output_bytes:(\d+)/)?.[1] ?? Number.NaN);
}

/** Whether a client of the server waits in a blocking XREAD. */
async function blockedRead(): Promise<boolean> {
  const clients = await redis.raw.clientList();
  return clients.some((client) => client.cmd === 'xread' && client.flags.includes('b'));
}

/** Polls `check` on Node's own timers, for a test whose `setTimeout` is fake. */
async function untilReal(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let waited = 0; !(await check()); waited += 5) {
    if (waited > 10_000) throw new Error(`timed out waiting for ${what}`);
    await realSleep(5);
  }
}

/** A listener that records what it gets. */
function recorder() {
  const events: StoredMessage[] = [];
  const kinds: (GapKind | undefined)[] = [];
  let gaps = 0;
  const listener: LiveListener = {
    event: (m) => events.push(m),
    gap: (kind) => {
      gaps++;
      kinds.push(kind);
      events.push({ id: '<gap>', data: '' });
    },
  };
  return {
    listener,
    events,
    /** How the ids went on after each gap. */
    kinds,
    get gaps() {
      return gaps;
    },
  };
}

describe('redisEngine', () => {
  it('keeps one stream per topic, whose entry ids are the event ids, trimmed to about maxLength', async () => {
    const store = engine({ maxLength: 100 });
    const ids: string[] = [];
    for (let i = 0; i < 500; i++) ids.push(await store.append('room-1', { data: `m${i}`, type: 'chat' }));
    const last = await redis.raw.xRevRange('sse:{room-1}', '+', '-', { COUNT: 1 });
    expect(last).toEqual([{ id: ids[499], message: { d: 'm499', t: 'chat' } }]);
    const length = await redis.raw.xLen('sse:{room-1}');
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(500);
    expect(await redis.raw.exists('sse:{room-2}')).toBe(0);
  });

  it('also trims by age with maxAgeMs', async () => {
    const store = engine({ maxAgeMs: 200 });
    for (let i = 0; i < 250; i++) await store.append('aged', { data: `m${i}` });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const last = await store.append('aged', { data: 'fresh' });
    // Approximate trimming drops whole nodes: the old ones go, the newest entry stays.
    let length = 251;
    await until(() => {
      redis.raw.xLen('sse:{aged}').then((n) => {
        length = n;
      });
      return length < 251;
    }, 'trimming by age');
    expect((await redis.raw.xRevRange('sse:{aged}', '+', '-', { COUNT: 1 }))?.[0]?.id).toBe(last);
  });

  it('trims by age at maxAgeMs: entries older go, younger ones stay', async () => {
    const store = engine({ maxAgeMs: 60_000 });
    const now = Date.now();
    // Explicit ids date the entries; three whole stream nodes (100 entries each) of either age.
    for (let i = 0; i < 300; i++)
      await store.append('dated', { id: `${now - 90_000}-${i + 1}`, data: 'old' });
    for (let i = 0; i < 300; i++)
      await store.append('dated', { id: `${now - 30_000}-${i + 1}`, data: 'young' });
    // Publishes share one connection, answered in order: once this one is stored, every trim sent
    // before it has run.
    await store.append('flushed', { data: 'x' });
    const kept = (await redis.raw.xRange('sse:{dated}', '-', '+')) ?? [];
    expect(kept.map((entry) => entry.message.d)).toEqual(Array(300).fill('young'));
  });

  it('trims by age only with maxAgeMs: without it, a publish sends no XTRIM after its XADD', async () => {
    const store = engine();
    const before = await calls('xtrim');
    await store.append('unaged', { data: 'kept' });
    // Publishes share one connection, answered in order: a trim sent after the first would have run
    // once this one is stored.
    await store.append('unaged', { data: 'kept' });
    expect(await calls('xtrim')).toBe(before);
  });

  it('reports nothing for a maxAgeMs longer than the clock has run: nothing is that old', async () => {
    const errors: unknown[] = [];
    const store = engine({ maxAgeMs: Date.now() + 60_000, onError: (error) => errors.push(error) });
    await store.append('ageless', { data: 'kept' });
    // Publishes share one connection, answered in order: a trim sent after the first would have run,
    // and failed, once this one is stored.
    await store.append('flushed', { data: 'x' });
    expect(errors).toEqual([]);
    expect(await redis.raw.xLen('sse:{ageless}')).toBe(1);
  });

  it('stores a retry and brings it back, leaves out an empty type, and refuses data JSON cannot hold', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('fields', seen.listener);
    const first = await store.append('fields', { data: 'x' });
    const id = await store.append('fields', { data: 'y', type: '', retry: 1500 });
    await until(() => seen.events.length === 2, 'the live events');
    stop();
    expect(await redis.raw.xRange('sse:{fields}', id, id)).toEqual([{ id, message: { d: 'y', r: '1500' } }]);
    const expected = { id, data: 'y', type: undefined, retry: 1500 };
    expect(seen.events[1]).toEqual(expected);
    expect((await store.read('fields', first, { count: 10, bytes: 1000 })).events).toEqual([expected]);
    for (const data of [undefined, () => {}, Symbol('s')])
      await expect(store.append('fields', { data }), String(data)).rejects.toThrow(
        /^Channel data must be a string or JSON-serializable$/,
      );
    expect(await redis.raw.xLen('sse:{fields}')).toBe(2);
  });

  it('brings back the longest retry an event may have, live and in a replay', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('longest retry', seen.listener);
    const first = await store.append('longest retry', { data: 'x' });
    const id = await store.append('longest retry', { data: 'y', retry: 2 ** 31 - 1 });
    await until(() => seen.events.length === 2, 'the live events');
    stop();
    const expected = { id, data: 'y', type: undefined, retry: 2 ** 31 - 1 };
    expect(seen.events[1]).toEqual(expected);
    expect((await store.read('longest retry', first, { count: 10, bytes: 1000 })).events).toEqual([expected]);
  });

  it('reads after an id written with leading zeros as after that id', async () => {
    const store = engine();
    const first = await store.append('padded', { data: 'a' });
    const second = await store.append('padded', { data: 'b' });
    const [ms, seq] = first.split('-');
    const page = await store.read('padded', `000${ms}-00${seq}`, { count: 10, bytes: 1000 });
    expect(page).toMatchObject({ truncated: false, more: false });
    expect(page.events.map((e) => e.id)).toEqual([second]);
  });

  it('uses its key prefix', async () => {
    const store = engine({ keyPrefix: 'app1:' });
    const id = await store.append('t', { data: { a: 1 } });
    expect(await redis.raw.xRange('app1:{t}', '-', '+')).toEqual([{ id, message: { j: '{"a":1}' } }]);
  });

  it('opens its live connection for the first listener without a failed read or a backoff', async () => {
    // The first listen starts the live loop before its connection is open: waiting for it is no
    // failure, so nothing is reported and the first events are not held back by a retry delay.
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    const seen = recorder();
    const stop = await store.listen('first', seen.listener);
    const id = await store.append('first', { data: 'm0' });
    await until(() => seen.events.length === 1, 'the first event');
    stop();
    expect(seen.events.map((e) => e.id)).toEqual([id]);
    expect(errors).toEqual([]);
  });

  it('tells a live listener about a gap when trimming outruns it, and never goes backwards', async () => {
    const store = engine({ maxLength: 10, readCount: 5 });
    const seen = recorder();
    const stop = await store.listen('fast', seen.listener);
    const publisher = createClient({ url: redis.server.url });
    await publisher.connect();
    // 2,000 entries in one round trip: far more than is kept between two reads of 5.
    const multi = publisher.multi();
    for (let i = 0; i < 2000; i++)
      multi.xAdd(
        'sse:{fast}',
        '*',
        { d: `m${i}` },
        { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 10 } },
      );
    const ids = (await multi.exec()) as unknown as string[];
    publisher.destroy();
    await until(() => seen.events.at(-1)?.id === ids.at(-1), 'the last event');
    stop();
    expect(seen.gaps).toBeGreaterThan(0);
    // The store still has its ids: those after the gap follow the ones before it.
    expect(new Set(seen.kinds)).toEqual(new Set(['continue']));
    const delivered = seen.events.filter((e) => e.id !== '<gap>').map((e) => ids.indexOf(e.id));
    for (let i = 1; i < delivered.length; i++) expect(delivered[i]).toBeGreaterThan(delivered[i - 1]!);
  });

  it('tells a caught-up listener about a gap when trimming outruns it while another topic lags', async () => {
    const store = engine({ maxLength: 10, readCount: 5 });
    const lagging = recorder();
    const caughtUp = recorder();
    const stopLagging = await store.listen('lagging', lagging.listener);
    const stop = await store.listen('caught up', caughtUp.listener);
    await store.append('caught up', { data: 'first' });
    await until(() => caughtUp.events.length === 1, 'the first event');
    const publisher = createClient({ url: redis.server.url });
    await publisher.connect();
    // 3,000 untrimmed entries, 5 a read: the reader reads 'lagging' with checked reads for a while.
    const fill = publisher.multi();
    for (let i = 0; i < 3000; i++) fill.xAdd('sse:{lagging}', '*', { d: `a${i}` });
    await fill.exec();
    await until(() => lagging.events.length > 20, 'the lagging topic under way');
    // Meanwhile 2,000 entries on the caught-up topic in one round trip trim its cursor away.
    const burst = publisher.multi();
    for (let i = 0; i < 2000; i++)
      burst.xAdd(
        'sse:{caught up}',
        '*',
        { d: `m${i}` },
        { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 10 } },
      );
    const ids = (await burst.exec()) as unknown as string[];
    expect(lagging.events.length).toBeLessThan(3000);
    await until(() => caughtUp.events.at(-1)?.id === ids.at(-1), 'the last event');
    publisher.destroy();
    stop();
    stopLagging();
    expect(caughtUp.gaps).toBe(1);
    expect(caughtUp.events[1]!.id).toBe('<gap>');
  });

  it('delivers nothing twice, and reports no gap, when its last event is deleted from the stream', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('deleted', seen.listener);
    const a = await store.append('deleted', { data: 'a' });
    const b = await store.append('deleted', { data: 'b' });
    await until(() => seen.events.length === 2, 'both events');
    // Taken out of the history by hand (say, by a moderator): the stream goes on above it.
    await redis.raw.xDel('sse:{deleted}', b);
    // A few reads that find the cursor gone.
    const reads = await calls('xread');
    await untilReal(async () => (await calls('xread')) > reads + 3, 'reads past the deletion');
    const c = await store.append('deleted', { data: 'c' });
    await until(() => seen.events.some((e) => e.id === c), 'the next event');
    stop();
    // Nothing was written after b: nothing was lost.
    expect(seen.events.map((e) => e.id)).toEqual([a, b, c]);
  });

  it('reports no gap when its last event is deleted as the next one is written', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('deleted then written', seen.listener);
    const a = await store.append('deleted then written', { data: 'a' });
    const b = await store.append('deleted then written', { data: 'b' });
    await until(() => seen.events.length === 2, 'both events');
    // In one MULTI: the read that c wakes finds b gone, with c after it.
    const [, c] = (await redis.raw
      .multi()
      .xDel('sse:{deleted then written}', b)
      .xAdd('sse:{deleted then written}', '*', { d: 'c' })
      .exec()) as unknown as [number, string];
    await until(() => seen.events.some((e) => e.id === c), 'the next event');
    stop();
    expect(seen.events.map((e) => e.id)).toEqual([a, b, c]);
  });

  it('reports no gap when every event is deleted from the stream, and delivers the next from its start', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('emptied live', seen.listener);
    const ids = [
      await store.append('emptied live', { data: 'a' }),
      await store.append('emptied live', { data: 'b' }),
    ];
    await until(() => seen.events.length === 2, 'both events');
    await redis.raw.xDel('sse:{emptied live}', ids);
    const reads = await calls('xread');
    await untilReal(async () => (await calls('xread')) > reads + 3, 'reads past the deletion');
    ids.push(await store.append('emptied live', { data: 'c' }));
    await until(() => seen.events.length === 3, 'the next event');
    stop();
    expect(seen.events.map((e) => e.id)).toEqual(ids);
  });

  it('reports a gap when entries written after its deleted last event are gone too', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('deleted after', seen.listener);
    await store.append('deleted after', { data: 'a' });
    const b = await store.append('deleted after', { data: 'b' });
    await until(() => seen.events.length === 2, 'both events');
    const key = 'sse:{deleted after}';
    // In one MULTI, so no read comes between: c is written and gone with b, before d.
    const c = `${Number(b.split('-')[0]) + 1}-0`;
    const replies = (await redis.raw
      .multi()
      .xAdd(key, c, { d: 'c' })
      .xDel(key, [b, c])
      .xAdd(key, '*', { d: 'd' })
      .exec()) as unknown as [string, number, string];
    const d = replies[2];
    await until(() => seen.events.some((e) => e.id === d), 'the last event');
    stop();
    expect(seen.events.map((e) => e.id).slice(2)).toEqual(['<gap>', d]);
    expect(seen.kinds).toEqual(['continue']);
  });

  it('delivers an entry written while it checks a deleted cursor, instead of skipping it', async () => {
    const proxy = await RedisProxy.start(redis.server.port);
    onTestFinished(() => proxy.close());
    const store = engine({ url: proxy.url });
    const seen = recorder();
    const stop = await store.listen('raced', seen.listener);
    const a = await store.append('raced', { data: 'a' });
    const b = await store.append('raced', { data: 'b' });
    await until(() => seen.events.length === 2, 'both events');
    // A read finds the cursor gone and asks for the stream's counts: c is written just before that.
    const written = proxy.beforeNext(
      (command) => command.includes('XINFO'),
      () => redis.raw.xAdd('sse:{raced}', '*', { d: 'c' }),
    );
    await redis.raw.xDel('sse:{raced}', b);
    const c = await written;
    await until(() => seen.events.some((e) => e.id === c), 'the entry written meanwhile');
    stop();
    // Whether entries went with b is not known once c follows it: a gap may be told, but c is sent.
    expect(seen.events.map((e) => e.id).filter((id) => id !== '<gap>')).toEqual([a, b, c]);
  });

  it('reports no gap for a topic whose stream was emptied before it was listened to', async () => {
    const store = engine();
    await store.append('emptied', { data: 'old' });
    await redis.raw.xTrim('sse:{emptied}', 'MAXLEN', 0);
    const seen = recorder();
    const stop = await store.listen('emptied', seen.listener);
    const id = await store.append('emptied', { data: 'new' });
    await until(() => seen.events.at(-1)?.id === id, 'the event');
    stop();
    expect(seen.events.map((e) => e.id)).toEqual([id]);
  });

  it('goes back to blocking reads once caught up, after a full read and after a reconnect', async () => {
    const store = engine({ readCount: 5 });
    await store.append('idle again', { data: 'first' });
    const seen = recorder();
    const stop = await store.listen('idle again', seen.listener);
    // Exactly one full read (5 entries): the reads after it check the cursor until one comes back short.
    const multi = redis.raw.multi();
    for (let i = 0; i < 5; i++) multi.xAdd('sse:{idle again}', '*', { d: `m${i}` });
    await multi.exec();
    await until(() => seen.events.length === 5, 'the full read');
    // Idle, a read blocks blockMs (100 ms): a handful in 300 ms, not a busy loop of checked reads.
    let before = await calls('xread');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await calls('xread')) - before).toBeLessThan(10);

    await killLiveConnection(redis.raw);
    const id = await store.append('idle again', { data: 'after the blip' });
    await until(() => seen.events.at(-1)?.id === id, 'the event after the blip');
    before = await calls('xread');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await calls('xread')) - before).toBeLessThan(10);
    stop();
  });

  it('fetches a large last event once, not again in each idle live read that checks it is still there', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('large idle', seen.listener);
    await store.append('large idle', { data: 'x'.repeat(100_000) });
    await until(() => seen.events.length === 1, 'the event');
    const before = await sentBytes();
    const reads = await calls('xread');
    while ((await calls('xread')) < reads + 5) await realSleep(50);
    const fetched = (await sentBytes()) - before;
    stop();
    // Each read sends the cursor's check behind it: with the 100 kB entry in each, five reads of a
    // quiet topic would send half a megabyte.
    expect(fetched).toBeLessThan(100_000);
  });

  it('fetches a large last event written before the topic started once, not in each idle live read', async () => {
    // Through a proxy, which counts what Redis sends this engine alone.
    const proxy = await RedisProxy.start(redis.server.port);
    onTestFinished(() => proxy.close());
    const store = engine({ url: proxy.url });
    // In the stream before anyone listens: the topic starts after it, and no read of its own
    // fetched it, so only the start point can say it is large.
    await redis.raw.xAdd('sse:{large before}', '*', { d: 'x'.repeat(100_000) });
    const seen = recorder();
    const stop = await store.listen('large before', seen.listener);
    const sent = () => proxy.connections.reduce((sum, connection) => sum + connection.passed, 0);
    const before = sent();
    const reads = await calls('xread');
    await untilReal(async () => (await calls('xread')) >= reads + 5, 'five idle reads');
    const fetched = sent() - before;
    stop();
    expect(seen.events).toEqual([]);
    // Checked by an XRANGE, the 100 kB entry would come back with each idle read.
    expect(fetched).toBeLessThan(100_000);
  });

  it('reports no gap for a topic without entries when its live connection drops', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('never written', seen.listener);
    await killLiveConnection(redis.raw);
    const id = await store.append('never written', { data: 'x' });
    await until(() => seen.events.at(-1)?.id === id, 'the event');
    stop();
    expect(seen.events.map((e) => e.id)).toEqual([id]);
  });

  it("keeps other topics live when one topic's key is not a stream, and takes it back once it is", async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    const broken = recorder();
    const other = recorder();
    const stops = [
      await store.listen('broken', broken.listener),
      await store.listen('other', other.listener),
    ];
    const first = await store.append('broken', { data: 'first' });
    await until(() => broken.events.length === 1, 'the first event');
    // One key that is not a stream fails a whole XREAD with WRONGTYPE.
    await redis.raw.set('sse:{broken}', 'not a stream');
    const live = await store.append('other', { data: 'live' });
    await until(() => other.events.length === 1, "the other topic's event");
    await until(() => broken.gaps === 1, 'the gap');
    await redis.raw.del('sse:{broken}');
    const again = await store.append('broken', { data: 'again' });
    await until(() => broken.events.length === 3, 'the event after the repair');
    for (const stop of stops) stop();
    expect(other.events.map((e) => e.id)).toEqual([live]);
    expect(broken.events.map((e) => e.id)).toEqual([first, '<gap>', again]);
    expect(String(errors[0])).toMatch(/WRONGTYPE/);
  });

  it('tells a gap when the stream that replaces a key of another type lost entries to trimming before it is read', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('remade', seen.listener);
    const first = await store.append('remade', { data: 'first' });
    await until(() => seen.events.length === 1, 'the first event');
    await redis.raw.set('sse:{remade}', 'not a stream');
    await until(() => seen.gaps === 1, 'the gap');
    // Made anew in one go after that gap was told: its first two entries trimmed before any read.
    const multi = redis.raw.multi().del('sse:{remade}');
    for (let i = 0; i < 3; i++)
      multi.xAdd('sse:{remade}', '*', { d: `m${i}` }, { TRIM: { strategy: 'MAXLEN', threshold: 1 } });
    await multi.exec();
    await until(() => seen.events.at(-1)?.data === 'm2', 'the entry left');
    stop();
    expect(seen.events.map((e) => (e.id === '<gap>' ? e.id : e.data))).toEqual([
      'first',
      '<gap>',
      '<gap>',
      'm2',
    ]);
    expect(seen.events[0]!.id).toBe(first);
  });

  it('tells no gap to a topic with no stream yet when another key turns out not to be one, and reads it on', async () => {
    const store = engine();
    const broken = recorder();
    const waiting = recorder();
    const stops = [
      await store.listen('turned into a string', broken.listener),
      await store.listen('no stream yet', waiting.listener),
    ];
    await store.append('turned into a string', { data: 'first' });
    await until(() => broken.events.length === 1, 'the first event');
    // The read fails with WRONGTYPE: the type of every listened key is asked, 'none' for the other.
    await redis.raw.set('sse:{turned into a string}', 'not a stream');
    await until(() => broken.gaps === 1, 'the gap');
    const id = await store.append('no stream yet', { data: 'x' });
    await until(() => waiting.events.length > 0, 'the event');
    for (const stop of stops) stop();
    expect(waiting.events.map((e) => e.id)).toEqual([id]);
  });

  it("asks Redis's run_id once after it connects, not again with each idle live read", async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('identified once', seen.listener);
    const id = await store.append('identified once', { data: 'x' });
    await until(() => seen.events.length === 1, 'the event');
    /** How many times Redis has run INFO and XREAD, told by one INFO (counted in the next). */
    const stats = async () => {
      const all = await redis.raw.info('commandstats');
      const count = (command: string) =>
        Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(all)?.[1] ?? 0);
      return { info: count('info'), xread: count('xread') };
    };
    const before = await stats();
    let asked = 1;
    await untilReal(async () => {
      asked++;
      return (await stats()).xread >= before.xread + 5;
    }, 'idle live reads');
    const after = await stats();
    stop();
    // Only this test's own INFOs: the reads that went on meanwhile asked none.
    expect(after.info - before.info).toBe(asked);
    expect(seen.events.map((e) => e.id)).toEqual([id]);
  });

  it('keeps other topics live when a key with no stream yet turns into another type as a checked read runs', async () => {
    const store = engine({ readCount: 1 });
    const behind = recorder();
    const broken = recorder();
    const stops = [
      await store.listen('one at a time', behind.listener),
      await store.listen('never a stream', broken.listener),
    ];
    await untilReal(blockedRead, 'the live read to block');
    // Two entries wake the read, which brings one: the next read is a checked one (a MULTI), whose
    // XREAD fails with WRONGTYPE for the other key, with no stream of its own to check before it.
    const ids = (await redis.raw
      .multi()
      .xAdd('sse:{one at a time}', '*', { d: 'a' })
      .xAdd('sse:{one at a time}', '*', { d: 'b' })
      .set('sse:{never a stream}', 'not a stream')
      .exec()) as unknown as [string, string, string];
    await until(() => behind.events.length === 2, 'both events');
    await until(() => broken.gaps === 1, 'the gap');
    for (const stop of stops) stop();
    expect(behind.events.map((e) => e.id)).toEqual(ids.slice(0, 2));
    expect(broken.kinds).toEqual(['restart']);
  });

  it('does not count an idle live read that blocks longer than commandTimeoutMs as a failure', async () => {
    const errors: unknown[] = [];
    const commandTimeoutMs = 300;
    const store = engine({ blockMs: 900, commandTimeoutMs, onError: (error) => errors.push(error) });
    await connected(store);
    // The engine's deadlines run on a fake clock: on real ones, a busy machine that runs the test
    // late finds a publish or a read over 300 ms that Redis answered in time.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const seen = recorder();
    const stop = await store.listen('patient', seen.listener);
    const before = await calls('xread');
    await untilReal(blockedRead, 'the live read to block');
    // Past the command timeout while the read still blocks in Redis: a read held to that timeout
    // would fail now.
    vi.advanceTimersByTime(2 * commandTimeoutMs);
    // The block ends with nothing, in real time, and the next read blocks: an idle read is no failure.
    await untilReal(async () => errors.length > 0 || (await calls('xread')) > before + 1, 'the next read');
    expect(errors).toEqual([]);
    await untilReal(blockedRead, 'the next read to block');
    const id = await store.append('patient', { data: 'x' });
    await untilReal(() => seen.events.length === 1, 'the event');
    stop();
    expect(seen.events.map((e) => e.id)).toEqual([id]);
    expect(errors).toEqual([]);
  });

  it('fails a publish while Redis is down with a RedisEngineError within the timeout, then recovers', async () => {
    const store = engine({ commandTimeoutMs: 300 });
    await connected(store);
    const seen = recorder();
    const stop = await store.listen('blip', seen.listener);
    const before = await store.append('blip', { data: 'before' });
    await until(() => seen.events.length === 1, 'the first event');

    await redis.server.kill9();
    const failure = await store.append('blip', { data: 'lost' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RedisEngineError);
    expect((failure as Error).message).toMatch(/^Redis publish on topic "blip" failed: /);
    await expect(store.read('blip', before, { count: 10, bytes: 1000 })).rejects.toThrow(RedisEngineError);

    // Restarted without its data: the live listener hears about the gap, then gets new events.
    await redis.server.restart({ persistent: false });
    let after: string | undefined;
    while (after === undefined) after = await store.append('blip', { data: 'after' }).catch(() => undefined);
    await until(() => seen.events.some((e) => e.id === after), 'the event after the restart');
    stop();
    // An append whose reply timed out while the connection came back may still have been stored
    // (a rejection says only "not for certain"): what follows the gap is the retries', `after` last.
    // The one that failed while Redis was down, never written, is not among them.
    expect(seen.events.slice(0, 2).map((e) => e.id)).toEqual([before, '<gap>']);
    expect(seen.events.at(-1)!.id).toBe(after);
    expect(new Set(seen.events.slice(2).map((e) => e.data))).toEqual(new Set(['after']));
    expect(seen.kinds).toEqual(['restart']);
  });

  it('delivers nothing twice, and reports no gap, when its last event is deleted while its connection is down', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('deleted-offline', seen.listener);
    const ids = [await store.append('deleted-offline', { data: 'a' })];
    ids.push(await store.append('deleted-offline', { data: 'b' }));
    await until(() => seen.events.length === 2, 'both events');
    await killLiveConnection(redis.raw);
    await redis.raw.xDel('sse:{deleted-offline}', ids[1]!);
    ids.push(await store.append('deleted-offline', { data: 'c' }));
    await until(() => seen.events.some((e) => e.id === ids[2]), 'the next event');
    stop();
    expect(seen.events.map((e) => e.id)).toEqual(ids);
  });

  it('tells a gap, and delivers nothing twice, when Redis comes back from a snapshot older than its cursor', async () => {
    const { server, raw, engine: store } = await ownRedis({ blockMs: 100 });
    const seen = recorder();
    const stop = await store.listen('snapshot', seen.listener);
    onTestFinished(stop);
    const ids = [
      await store.append('snapshot', { data: 'a' }),
      await store.append('snapshot', { data: 'b' }),
    ];
    await raw.sendCommand(['SAVE']);
    ids.push(await store.append('snapshot', { data: 'lost with the restart' }));
    await until(() => seen.events.length === 3, 'the events before the restart');
    // Back with the snapshot's entries, all below the live cursor.
    await server.kill9();
    await server.restart({ persistent: false });
    await until(() => seen.gaps === 1, 'the gap');
    let next: string | undefined;
    await until(() => {
      store.append('snapshot', { data: 'after' }).then(
        (id) => {
          next ??= id;
        },
        () => {},
      );
      return next !== undefined;
    }, 'a publish after the restart');
    await until(() => seen.events.some((e) => e.id === next), 'the event after the restart');
    expect(seen.events.map((e) => e.id).slice(0, 4)).toEqual([...ids, '<gap>']);
    expect(new Set(seen.events.slice(4).map((e) => e.data))).toEqual(new Set(['after']));
    expect(seen.kinds).toEqual(['restart']);
  });

  it('after a gap that left nothing to read, delivers a stream that started again below its old ids', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('restarted', seen.listener);
    await store.append('restarted', { id: '1000-1', data: 'old' });
    await until(() => seen.events.length === 1, 'the first event');
    // The stream is gone (Redis lost it), and the reader's connection with it.
    await redis.raw.del('sse:{restarted}');
    await killLiveConnection(redis.raw);
    await until(() => seen.gaps === 1, 'the gap');
    await store.append('restarted', { id: '5-1', data: 'new' });
    await until(() => seen.events.length === 3, 'the event of the new stream');
    stop();
    expect(seen.events.map((e) => e.id)).toEqual(['1000-1', '<gap>', '5-1']);
    expect(seen.kinds).toEqual(['restart']);
  });

  it('tells a restart, and delivers the new stream from its start, when its stream is made anew below its cursor in one go', async () => {
    const store = engine();
    const seen = recorder();
    const stop = await store.listen('remade', seen.listener);
    await store.append('remade', { id: '1000-1', data: 'old' });
    await until(() => seen.events.length === 1, 'the first event');
    // Deleted and written again below the cursor in one MULTI (a restore by hand): no read finds
    // the key missing, and none failed, yet what the stream holds now was never delivered.
    await redis.raw.multi().del('sse:{remade}').xAdd('sse:{remade}', '5-1', { d: 'new' }).exec();
    await until(() => seen.events.length === 3, 'the event of the new stream');
    stop();
    expect(seen.events.map((e) => e.id)).toEqual(['1000-1', '<gap>', '5-1']);
    expect(seen.kinds).toEqual(['restart']);
  });

  it('gives a listener that comes back only what is published after it listens again', async () => {
    const store = engine();
    const first = recorder();
    const stopFirst = await store.listen('again', first.listener);
    const a = await store.append('again', { data: 'a' });
    await until(() => first.events.length === 1, 'the first event');
    stopFirst();
    // The read under way when it left ends (blockMs), and no other follows.
    let reading = true;
    await until(() => {
      redis.raw.clientList().then((clients) => {
        reading = clients.some((client) => client.cmd === 'xread' && client.flags.includes('b'));
      });
      return !reading;
    }, 'the live reads to stop');
    await store.append('again', { data: 'while nobody listened' });
    const second = recorder();
    const stop = await store.listen('again', second.listener);
    const c = await store.append('again', { data: 'c' });
    await until(() => second.events.length > 0, 'the event after listening again');
    stop();
    expect(first.events.map((e) => e.id)).toEqual([a]);
    expect(second.events.map((e) => e.id)).toEqual([c]);
  });

  for (const [layout, options] of [
    ['per topic', {}],
    ['partitioned', { partitions: 4 }],
  ] as const) {
    it(`tells a listener the id it starts after: the newest, or 0-0 for an empty topic (${layout})`, async () => {
      const store = engine(options);
      const told: string[] = [];
      const first = recorder();
      const listener = { ...first.listener, startsAfter: (id: string) => told.push(id) };
      (await store.listen('empty', listener))();
      await store.append('started', { data: 'a' });
      const newest = await store.append('started', { data: 'b' });
      const stop = await store.listen('started', listener);
      // A second listener of the topic, once the reader delivered what came after the first.
      const later = await store.append('started', { data: 'c' });
      await until(() => first.events.length === 1, 'the event after the first listener');
      (await store.listen('started', listener))();
      stop();
      expect(told).toEqual(['0-0', newest, later]);
    });

    it(`tells a client that resumes from 0-0 that history was truncated on a topic emptied before it was listened to (${layout})`, async () => {
      const store = engine(options);
      const topic = `emptied ${layout}`;
      for (const data of ['a', 'b']) await store.append(topic, { data });
      const [key] = await redis.raw.keys(`*${topic}*`);
      await redis.raw.xTrim(key!, 'MAXLEN', 0);
      // Its listener starts after 0-0, the stream being empty: the trimmed events were still missed.
      const source = await createChannel(store, topic).subscribe({ lastEventId: '0-0' });
      expect(await firstValueFrom(source)).toEqual({
        type: 'history-truncated',
        data: { lastEventId: '0-0', reason: 'history' },
      });
    });
  }

  for (const [layout, options] of [
    ['per topic', {}],
    ['partitioned', { partitions: 4 }],
  ] as const) {
    it(`keeps a listener of the topic when an earlier listener's unlisten is called again (${layout})`, async () => {
      const store = engine(options);
      const stopFirst = await store.listen('relistened', recorder().listener);
      stopFirst();
      const second = recorder();
      const stop = await store.listen('relistened', second.listener);
      stopFirst();
      const id = await store.append('relistened', { data: 'a' });
      await until(() => second.events.length === 1, 'the event');
      stop();
      expect(second.events.map((e) => e.id)).toEqual([id]);
    });

    it(`hands a listener nothing after its end when a listener closes the engine on an event (${layout})`, async () => {
      const store = engine(options);
      const told: string[] = [];
      let closing: Promise<void> | undefined;
      const listener = (name: string, close: boolean): LiveListener => ({
        event: (m) => {
          told.push(`${name} ${m.data}`);
          if (close) closing ??= store.close();
        },
        gap: () => told.push(`${name} gap`),
        end: () => told.push(`${name} end`),
      });
      await store.listen('closed by a listener', listener('first', true));
      await store.listen('closed by a listener', listener('second', false));
      await store.append('closed by a listener', { data: 'a' });
      await until(() => closing !== undefined, 'the close');
      await closing;
      expect(told).toEqual(['first a', 'first end', 'second end']);
      expect(await blockedRead()).toBe(false);
    });

    it(`rejects a listen whose startsAfter throws, and hands that listener nothing (${layout})`, async () => {
      const store = engine(options);
      await store.append('throwing start', { data: 'a' });
      const thrown = new Error('no start');
      const refused = recorder();
      const failed = await store
        .listen('throwing start', {
          ...refused.listener,
          startsAfter: () => {
            throw thrown;
          },
        })
        .catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(RedisEngineError);
      expect((failed as Error).cause).toBe(thrown);
      const other = recorder();
      const stop = await store.listen('throwing start', other.listener);
      await store.append('throwing start', { data: 'b' });
      await until(() => other.events.length === 1, 'the event');
      stop();
      expect(refused.events).toEqual([]);
    });
  }

  it('tells no truncation to a client that had the newest event when trimming passes it as it resumes', async () => {
    const store = engine();
    const topic = 'resume-trimmed';
    let listened = false;
    let opened: () => void = () => {};
    const reads: string[] = [];
    const gated: ChannelEngine = {
      ...store,
      listen: async (...args) => {
        const unlisten = await store.listen(...args);
        listened = true;
        return unlisten;
      },
      // Read once the store has trimmed past the client's id.
      read: async (...args) => {
        reads.push(args[1]);
        await new Promise<void>((resolve) => {
          opened = resolve;
        });
        return store.read(...args);
      },
    };
    const chat = createChannel(gated, topic);
    const newest = await chat.publish({ data: 'seen' });
    const subscribing = chat.subscribe({ lastEventId: newest });
    await until(() => listened, 'the listener');
    const live = [await chat.publish({ data: 'a' }), await chat.publish({ data: 'b' })];
    await redis.raw.xTrim(`sse:{${topic}}`, 'MAXLEN', 1);
    opened();
    const client = recordSource(await subscribing);
    await until(() => client.ids().includes(live[1]!), 'the live events');
    expect(client.ids()).toEqual(live);
    expect(reads).toEqual([]);
    client.unsubscribe();
  });

  it('tells onError about connection errors, not only failed reads', async () => {
    const errors: unknown[] = [];
    const store = engine({
      url: `redis://127.0.0.1:${await freePort()}`,
      commandTimeoutMs: 300,
      onError: (error) => errors.push(error),
    });
    await expect(store.append('t', { data: 'x' })).rejects.toThrow(RedisEngineError);
    expect(errors.some((error) => (error as { code?: string }).code === 'ECONNREFUSED')).toBe(true);
  });

  it('logs connection errors with console.error when no onError is given', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const store = engine({ onError: undefined });
    const seen = recorder();
    try {
      const stop = await store.listen('quiet', seen.listener);
      await killLiveConnection(redis.raw);
      const id = await store.append('quiet', { data: 'after the blip' });
      await until(() => seen.events.some((e) => e.id === id), 'the event after the blip');
      stop();
      expect(logged).toHaveBeenCalledWith(expect.stringMatching(/^rxsse: Redis engine:/), expect.any(Error));
    } finally {
      logged.mockRestore();
    }
  });

  it('tells a live connection cut off once, by its connection, not again as a failed live read', async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => void errors.push(error) });
    const seen = recorder();
    const stop = await store.listen('cut once', seen.listener);
    await killLiveConnection(redis.raw);
    const id = await store.append('cut once', { data: 'after the blip' });
    await until(() => seen.events.some((e) => e.id === id), 'the event after the blip');
    stop();
    expect(errors).toHaveLength(1);
  });

  it('tells onError of a live listener that throws, and still hands the event to the next one', async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    const bug = new Error('listener bug');
    const seen = recorder();
    const stops = [
      await store.listen('thrown', {
        event: () => {
          throw bug;
        },
        gap: () => {},
      }),
      await store.listen('thrown', seen.listener),
    ];
    const id = await store.append('thrown', { data: 'one' });
    await until(() => seen.events.some((e) => e.id === id), 'the event at the second listener');
    for (const stop of stops) stop();
    expect(errors).toEqual([bug]);
  });

  it('survives an onError that throws: no uncaught exception, and live delivery goes on', async () => {
    // From node-redis's 'error' event the throw was an uncaught exception (the process exits), and
    // from the live loop it ended live delivery.
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const bug = new Error('logger down');
    let told = 0;
    const store = engine({
      onError: () => {
        told++;
        throw bug;
      },
    });
    const seen = recorder();
    try {
      const stop = await store.listen('loud', seen.listener);
      await killLiveConnection(redis.raw);
      const id = await store.append('loud', { data: 'after the blip' });
      await until(() => seen.events.some((e) => e.id === id), 'the event after the blip');
      stop();
      expect(told).toBeGreaterThan(0);
      expect(logged).toHaveBeenCalledWith(expect.stringMatching(/onError threw/), bug);
      // The error onError failed to take is logged too.
      expect(logged).toHaveBeenCalledWith('rxsse: Redis engine:', expect.any(Error));
    } finally {
      logged.mockRestore();
    }
  });

  it('survives an async onError that rejects: no unhandled rejection, and it is logged', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    const bug = new Error('logger down');
    const store = engine({
      onError: async () => {
        throw bug;
      },
    });
    const seen = recorder();
    try {
      const unlisten = await store.listen('async', seen.listener);
      await killLiveConnection(redis.raw);
      const id = await store.append('async', { data: 'after the blip' });
      await until(() => seen.events.some((e) => e.id === id), 'the event after the blip');
      unlisten();
      await until(() => logged.mock.calls.length > 0, 'the rejection logged');
      expect(logged).toHaveBeenCalledWith(expect.stringMatching(/onError threw/), bug);
      expect(logged).toHaveBeenCalledWith('rxsse: Redis engine:', expect.any(Error));
      expect(unhandled).toEqual([]);
    } finally {
      stop();
      logged.mockRestore();
    }
  });

  it('names the cause of a failure: the timeout and the refused connection, or what Redis replied', async () => {
    const nowhere = engine({ url: `redis://127.0.0.1:${await freePort()}`, commandTimeoutMs: 300 });
    const refused = await nowhere.append('t', { data: 'x' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RedisEngineError);
    expect((refused as Error).message).toMatch(
      /^Redis publish on topic "t" failed: not connected within 300 ms: connect ECONNREFUSED 127\.0\.0\.1:\d+$/,
    );
    const timedOut = (refused as Error).cause;
    expect(timedOut).toBeInstanceOf(RedisTimeoutError);
    expect(timedOut).toMatchObject({ timeoutMs: 300, connected: false, cause: { code: 'ECONNREFUSED' } });
    await expect(nowhere.listen('t', recorder().listener)).rejects.toThrow(
      /^Redis listen on topic "t" failed: not connected within 300 ms: connect ECONNREFUSED/,
    );

    const store = engine();
    await redis.raw.set('sse:{w}', 'not a stream');
    const rejected = await store.append('w', { data: 'x' }).catch((error: unknown) => error);
    expect((rejected as Error).message).toMatch(
      /^Redis publish on topic "w" failed: Redis replied "WRONGTYPE Operation against a key holding the wrong kind of value"$/,
    );
    expect((rejected as Error).cause).toBeInstanceOf(ErrorReply);
  });

  for (const [layout, options] of [
    ['per topic', {}],
    ['partitioned', { partitions: 4 }],
  ] as const) {
    it(`starts a topic whose key is not a stream, tells onError, and delivers once it is one (${layout})`, async () => {
      const errors: unknown[] = [];
      const store = engine({ ...options, onError: (error) => void errors.push(error) });
      const topic = `not-a-stream-${layout}`;
      await store.append(topic, { data: 'before' });
      const [stored] = await redis.raw.keys(`*${topic}*`);
      await redis.raw.del(stored!);
      await redis.raw.set(stored!, 'not a stream');
      const seen = recorder();
      // Failing would fail every subscription to the topic, each client back for the same failure.
      const stop = await store.listen(topic, seen.listener);
      expect(errors.map(String)).toEqual([expect.stringMatching(/WRONGTYPE/)]);
      await redis.raw.del(stored!);
      const id = await store.append(topic, { data: 'after' });
      await until(() => seen.events.some((e) => e.id === id), 'the event');
      stop();
      expect(seen.events.map((e) => e.id)).toEqual([id]);
    });
  }

  it('leaves a topic whose key is not a stream when it starts out of reads: no failed read, no gap', async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => void errors.push(error) });
    await redis.raw.set('sse:{a string from the start}', 'not a stream');
    const broken = recorder();
    const other = recorder();
    const stops = [
      await store.listen('a string from the start', broken.listener),
      await store.listen('beside a string', other.listener),
    ];
    expect(errors.map(String)).toEqual([expect.stringMatching(/WRONGTYPE/)]);
    // Read with the other topic, the string would fail the XREAD, and be found by a type check.
    const id = await store.append('beside a string', { data: 'x' });
    await until(() => other.events.length === 1, "the other topic's event");
    for (const stop of stops) stop();
    expect(other.events.map((e) => e.id)).toEqual([id]);
    expect(broken.gaps).toBe(0);
    expect(errors).toHaveLength(1);
  });

  it('tells a resume on a topic whose key was overwritten after an event it did not read that history is gone', async () => {
    const chat = createChannel(engine({ onError: () => {} }), 'overwritten-live');
    const first = recordSource(await chat.subscribe());
    const x = await chat.publish({ data: 'x' });
    await until(() => first.received.length === 1, 'the first event');
    // An event the reader has not read, then its stream gone.
    const script = `redis.call('XADD', KEYS[1], '*', 'd', 'y'); redis.call('SET', KEYS[1], 'not a stream')`;
    await redis.raw.eval(script, { keys: ['sse:{overwritten-live}'] });
    await until(() => first.ids().includes('<history-truncated>'), 'the gap');
    const resumed = recordSource(await chat.subscribe({ lastEventId: x }));
    await redis.raw.del('sse:{overwritten-live}');
    const after = await chat.publish({ data: 'after' });
    await until(() => resumed.ids().includes(after), 'the next event');
    first.unsubscribe();
    resumed.unsubscribe();
    expect(resumed.ids()).toEqual(['<history-truncated>', after]);
  });

  it('answers a resume on a topic whose key was overwritten with another type as truncated, and tells onError', async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => void errors.push(error) });
    const first = await store.append('overwritten', { data: 'a' });
    await redis.raw.set('sse:{overwritten}', 'not a stream');
    // Its history is gone, as a trimmed one's: failing would fail the client's every resume.
    expect(await store.read('overwritten', first, { count: 10, bytes: 1000 })).toMatchObject({
      events: [],
      truncated: true,
    });
    expect(errors.map(String)).toEqual([expect.stringMatching(/WRONGTYPE/)]);
  });

  it('replays and starts topics while Redis holds writes back (CLIENT PAUSE WRITE, as in a failover)', async () => {
    const store = engine({ commandTimeoutMs: 1000 });
    const first = await store.append('paused', { data: 'a' });
    const second = await store.append('paused', { data: 'b'.repeat(20_000) });
    await redis.raw.sendCommand(['CLIENT', 'PAUSE', '30000', 'WRITE']);
    try {
      const page = await store.read('paused', first, { count: 10, bytes: 100_000 });
      expect(page.events.map((m) => m.id)).toEqual([second]);
      for (const topic of ['paused', 'paused too']) (await store.listen(topic, recorder().listener))();
    } finally {
      await redis.raw.sendCommand(['CLIENT', 'UNPAUSE']);
    }
  });

  it.each([
    ['', undefined],
    [', partitioned', 4],
  ])(
    'replays and starts topics while Redis holds writes back with a publish waiting for the pause to end%s',
    async (_mode, partitions) => {
      const store = engine({ commandTimeoutMs: 1000, partitions });
      const first = await store.append('paused', { data: 'a' });
      const second = await store.append('paused', { data: 'b' });
      await redis.raw.sendCommand(['CLIENT', 'PAUSE', '30000', 'WRITE']);
      try {
        // Redis holds the connection a write came on, and every command sent on it after the write.
        const published = store.append('paused', { data: 'c' }).catch((error: unknown) => error);
        const held = async () =>
          (await redis.raw.clientList()).some((c) => c.cmd === (partitions ? 'eval' : 'xadd'));
        await untilReal(held, 'the publish held');
        const page = await store.read('paused', first, { count: 10, bytes: 100_000 });
        expect(page.events.map((m) => m.id)).toEqual([second]);
        for (const topic of ['paused', 'paused too']) (await store.listen(topic, recorder().listener))();
        expect(await published).toBeInstanceOf(RedisEngineError);
      } finally {
        await redis.raw.sendCommand(['CLIENT', 'UNPAUSE']);
      }
    },
  );

  it('refuses a caller id that is not <ms>-<seq> above 0-0, even one Redis would take, and stores nothing', async () => {
    const store = engine();
    for (const id of ['5', '5-*', '*', ' 5-1', '0-0'])
      await expect(store.append('explicit', { id, data: 'x' }), id).rejects.toThrow(
        /^A stored event's id must be <ms>-<seq>/,
      );
    expect(await redis.raw.exists('sse:{explicit}')).toBe(0);
  });

  it('fetches about what a page can hold, not every entry its count allows, when events are large', async () => {
    const store = engine();
    const big = 'x'.repeat(100_000);
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push(await store.append('large', { data: big }));
    const before = await sentBytes();
    const page = await store.read('large', ids[0]!, { count: 500, bytes: 524_288 });
    const fetched = (await sentBytes()) - before;
    expect(page.events.map((e) => e.id)).toEqual(ids.slice(1, 6));
    expect(page).toMatchObject({ truncated: false, more: true });
    // The page holds 5 events of 100 kB: reading all 100 entries (10 MB) for them would make a
    // replay of large events slow, and one over the command timeout would fail every reconnect.
    expect(fetched).toBeLessThan(1_500_000);
    // Small events after them: a page of several fetches, each from the last, leaves none out.
    const small: string[] = [];
    for (let i = 0; i < 20; i++) small.push(await store.append('large', { data: `s${i}` }));
    const rest = await store.read('large', ids[98]!, { count: 500, bytes: 524_288 });
    expect(rest.events.map((e) => e.id)).toEqual([ids[99], ...small]);
    expect(rest).toMatchObject({ truncated: false, more: false });
  });

  it("sizes the XRANGEs after a page's first by the events it read, not by its count, for events of 10 kB", async () => {
    const store = engine();
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(await store.append('medium', { data: 'x'.repeat(10_000) }));
    const before = await sentBytes();
    const page = await store.read('medium', ids[0]!, { count: 500, bytes: 524_288 });
    const fetched = (await sentBytes()) - before;
    // 52 events of about 10 kB fill the page's bytes.
    expect(page.events.map((e) => e.id)).toEqual(ids.slice(1, 53));
    expect(page).toMatchObject({ truncated: false, more: true });
    // Not the 299 entries (3 MB) its count allows: about what the page holds.
    expect(fetched).toBeLessThan(1_000_000);
  });

  it('fetches a large entry a page went on from once, not again for the check that it is still there', async () => {
    const store = engine();
    const resume = await store.append('large again', { data: 'small' });
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(await store.append('large again', { data: 'x'.repeat(100_000) }));
    const before = await sentBytes();
    const page = await store.read('large again', resume, { count: 500, bytes: 524_288 });
    const fetched = (await sentBytes()) - before;
    expect(page.events.map((e) => e.id)).toEqual(ids.slice(0, 5));
    // Six entries of 100 kB: the five of the page, and the one that says more follow. The next
    // XRANGE starts at the page's fifth, to check it is still there: not at its 100 kB again.
    expect(fetched).toBeLessThan(650_000);
  });

  it('answers any id it cannot place with the truncation signal, never as if Redis were down', async () => {
    const outcomes: string[] = [];
    const channel = createChannel(engine(), 'odd ids', { onReplay: (outcome) => outcomes.push(outcome) });
    const stored = await channel.publish({ data: 'a' });
    const ms = stored.split('-')[0];
    const unknown = [
      '18446744073709551615-18446744073709551615',
      '18446744073709551615-0',
      `${ms}-18446744073709551615`,
      `${BigInt(ms!) + 1n}-0`,
      '0-0',
      '0-1',
      '18446744073709551616-0',
      '1-2-3',
      'x',
    ];
    // Those that can be no stream id are named `null`: a client's id is echoed only if it can be one.
    const noStreamId = new Set(['18446744073709551616-0', '1-2-3', 'x']);
    for (const lastEventId of unknown) {
      const source = await channel.subscribe({ lastEventId });
      expect(source[SOURCE_HEADERS], lastEventId).toEqual({ 'SSE-History-Truncated': 'true' });
      expect(await firstValueFrom(source), lastEventId).toEqual({
        type: 'history-truncated',
        data: { lastEventId: noStreamId.has(lastEventId) ? null : lastEventId, reason: 'history' },
      });
    }
    expect(outcomes).toEqual(unknown.map(() => 'truncated'));
  });

  it('answers a replay over an entry it did not write with the truncation signal, as live delivery does a gap', async () => {
    const errors: unknown[] = [];
    const channel = createChannel(engine({ onError: (error) => errors.push(error) }), 'foreign');
    const first = await channel.publish({ data: 'mine' });
    await redis.raw.xAdd('sse:{foreign}', '*', { j: '{not json' });
    await channel.publish({ data: 'mine too' });
    const source = await channel.subscribe({ lastEventId: first });
    expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
    expect(await firstValueFrom(source)).toEqual({
      type: 'history-truncated',
      data: { lastEventId: first, reason: 'history' },
    });
    expect(String(errors[0])).toMatch(/^SyntaxError: /);
  });

  it.each([
    ['no data field', { text: 'hi' }],
    ['a retry that is no number', { d: 'hi', r: 'soon' }],
    ['a negative retry', { d: 'hi', r: '-1' }],
    ['an empty retry', { d: 'hi', r: '' }],
    ['a retry above 2^31 - 1', { d: 'hi', r: '2147483648' }],
    ['a type with a line break', { d: 'hi', t: 'chat\nid: 1' }],
    ['a type with a carriage return', { d: 'hi', t: 'chat\r' }],
    ['a type with a NUL', { d: 'hi', t: 'chat\0' }],
  ])('tells of an entry with %s as one it did not write, live and in a replay', async (_what, fields) => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    const first = await store.append('foreign', { data: 'mine' });
    const seen = recorder();
    const stop = await store.listen('foreign', seen.listener);
    await redis.raw.xAdd('sse:{foreign}', '*', fields);
    const last = await store.append('foreign', { data: 'mine too' });
    await until(() => seen.events.at(-1)?.id === last, 'the event after it');
    stop();
    expect(seen.events.map((m) => m.id)).toEqual(['<gap>', last]);
    expect((await store.read('foreign', first, { count: 10, bytes: 10_000 })).truncated).toBe(true);
    expect(errors.length).toBeGreaterThan(0);
    for (const error of errors)
      expect(String(error)).toMatch(
        /^TypeError: Stream entry \d+-\d+ has no data, a bad retry or a bad type: not written by this engine$/,
      );
  });

  it('lets an EventSource resuming from the largest stream id continue live after one signal', async () => {
    const channel = createChannel(engine(), 'resume');
    const server = await startStreamServer((context) => channel.subscribe(context), { retry: 50 });
    const largest = '18446744073709551615-18446744073709551615';
    const client = new LiveClient(`${server.url}/events?lastEventId=${largest}`);
    try {
      await until(() => client.truncations.length === 1, 'the truncation signal');
      const id = await channel.publish({ data: 'live' });
      await until(() => client.ids.length === 1, 'the live event');
      expect(client.ids).toEqual([id]);
      expect(JSON.parse(client.truncations[0]!.data)).toEqual({ lastEventId: largest, reason: 'history' });
      expect(client.opens).toBe(1);
    } finally {
      client.close();
      await server.close();
    }
  });

  it('maps topics to keys injectively: each unusual name its own stream, its own live events', async () => {
    const store = engine({ keyPrefix: 'odd:' });
    const topics = ['x\uFFFD', 'a', 'a}b', '{a}', '}', '{', '', 'é', '\u{1F600}', 'a\u0000b', 'a b'];
    const seen = topics.map(() => recorder());
    const stops = await Promise.all(topics.map((topic, i) => store.listen(topic, seen[i]!.listener)));
    const ids = await Promise.all(topics.map((topic, i) => store.append(topic, { data: String(i) })));
    await until(() => seen.every((r) => r.events.length > 0), 'every topic its live event');
    for (const stop of stops) stop();
    expect(seen.map((r) => r.events.map((e) => [e.id, e.data]))).toEqual(
      ids.map((id, i) => [[id, String(i)]]),
    );
    expect(await redis.raw.keys('odd:*')).toHaveLength(topics.length);
    for (const [i, topic] of topics.entries())
      expect(await redis.raw.xRange(`odd:{${topic}}`, '-', '+')).toEqual([
        { id: ids[i], message: { d: String(i) } },
      ]);
  });

  it("refuses a topic that is not well-formed UTF-16: its key would be another topic's", async () => {
    const store = engine();
    const lone = 'x\uD800';
    const live = recorder();
    const errors = await Promise.all([
      store.append(lone, { data: 'x' }).catch((error: unknown) => error),
      store.read(lone, '1-0', { count: 1, bytes: 100 }).catch((error: unknown) => error),
      store.listen(lone, live.listener).catch((error: unknown) => error),
      store.append('x\uDC00y', { data: 'x' }).catch((error: unknown) => error),
    ]);
    for (const error of errors) {
      expect(error).toBeInstanceOf(RedisTopicError);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/^Topic "x\\ud(800|c00y)" is not well-formed UTF-16/);
    }
    expect(await redis.raw.exists('sse:{x\uFFFD}')).toBe(0);
    // A channel refuses such a topic before it reaches any engine.
    expect(() => createChannel(store, lone)).toThrow(TypeError);
    expect(() => redisEngine({ keyPrefix: '\uDFFF' })).toThrow(RangeError);

    // Nor does it reach the live reader, which would spin on it (its reply names another key): an
    // idle reader blocks blockMs (100 ms) per read, so 500 ms take a handful of reads, not thousands.
    const normal = recorder();
    const stop = await store.listen('normal', normal.listener);
    await store.append('normal', { data: 'n' });
    await until(() => normal.events.length === 1, 'a live event');
    const before = await calls('xread');
    await new Promise((resolve) => setTimeout(resolve, 500));
    stop();
    expect((await calls('xread')) - before).toBeLessThan(50);
  });
});
