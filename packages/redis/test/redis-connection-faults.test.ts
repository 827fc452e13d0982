// Faults a frozen Redis cannot show, made by a proxy between the engine and Redis: one connection cut
// off silently (a dead route, a peer gone without a reset), which carries nothing and never errors,
// so what was sent on it is lost; or one connection's replies late while the others flow.
import type { LiveListener, StoredMessage } from '@rxsse/core/channel';
import { until } from '@rxsse/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisTimeoutError } from '../src/index.js';
import { RedisProxy } from './support/proxy.js';
import { useRedis } from './support/use-redis.js';

const redis = useRedis({ defaults: { blockMs: 100, commandTimeoutMs: 300 }, flush: true });

let proxy: RedisProxy | undefined;
afterEach(() => {
  proxy?.close();
  proxy = undefined;
});

function recorder() {
  const events: StoredMessage[] = [];
  const listener: LiveListener = { event: (m) => events.push(m), gap: () => {} };
  return { listener, events, ids: () => events.map((e) => e.id) };
}

describe('redisEngine with its connections cut off', () => {
  it('replaces a live connection cut off mid-read and resumes from its cursor', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, onError: () => {} });
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

  it('replaces a live connection cut off before it was ready', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const errors: unknown[] = [];
    const store = redis.engine({ url: proxy.url, onError: (error) => errors.push(error) });
    await store.append('cut', { data: 'the command connection is up' });

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
});

describe('redisEngine with partitions, while its command connection lags', () => {
  it('delivers what the partition brought a new topic before the topic knew where its stream ended', async () => {
    proxy = await RedisProxy.start(redis.server.port);
    const store = redis.engine({ url: proxy.url, partitions: 1 });
    const seen = recorder();
    const first = recorder();
    const stopFirst = await store.listen('first', first.listener);
    const [commands] = proxy.connections;
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
