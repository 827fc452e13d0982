// An engine's connections (two, whatever the mode), and what close() does with them and with the
// publishes still under way.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type ChannelEngine, ChannelUnavailableError, createChannel } from '@rxsse/core/channel';
import { until } from '@rxsse/core/testing';
import { describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../test/support/processes.js';
import { PartitionLayout } from '../src/partition.js';
import { TopologyRefresh } from '../src/topology-refresh.js';
import { LiveClient } from './support/sse-clients.js';
import { startStreamServer } from './support/stream-server.js';
import { useRedis } from './support/use-redis.js';

const redis = useRedis({ defaults: { blockMs: 100 }, flush: true });
const { engine } = redis;

/** The connections Redis has open, besides the fixture's own. */
async function connections(): Promise<number> {
  const own = await redis.raw.clientId();
  return (await redis.raw.clientList()).filter((client) => client.id !== own).length;
}

/** Listens to `topic` until one event published on it arrives. */
async function roundTrip(store: ChannelEngine, topic: string): Promise<() => void> {
  let seen = 0;
  const stop = await store.listen(topic, { event: () => seen++, gap: () => {} });
  await store.append(topic, { data: 'x' });
  await until(() => seen === 1, `an event on ${topic}`);
  return stop;
}

describe('redisEngine connections', () => {
  it('opens three connections, reads, publishes and the live reader, however many partitions are listened to', async () => {
    const layout = new PartitionLayout('sse:', 4);
    const topics: string[] = [];
    for (let i = 0; new Set(topics.map((t) => layout.partitionOf(t))).size < 4; i++) topics.push(`t${i}`);
    const store = engine({ partitions: 4 });
    const stops = await Promise.all(topics.map((topic) => roundTrip(store, topic)));
    expect(await connections()).toBe(3);
    for (const stop of stops) stop();
  });

  it('closes every connection it opened, the live reader included, and reports no error of its own', async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    await roundTrip(store, 'closing');
    expect(await connections()).toBe(3);
    await store.close();
    for (let waited = 0; (await connections()) > 0; waited += 10) {
      if (waited > 2000) throw new Error('connections left open after close');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // Three reads of the live loop's length (blockMs) and its retry delays: the loop stopped for
    // good, it does not connect again.
    for (let waited = 0; waited < 300; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await connections()).toBe(0);
    }
    // Its live read ended because it closed: that is no failure.
    expect(errors).toEqual([]);
  });

  it('stops its live reads when the last listener leaves, with nothing to report', async () => {
    const errors: unknown[] = [];
    const store = engine({ onError: (error) => errors.push(error) });
    (await roundTrip(store, 'leaving'))();
    const reads = async () =>
      Number((await redis.raw.info('commandstats')).match(/cmdstat_xread:calls=(\d+)/)?.[1] ?? 0);
    // The read under way ends within blockMs (100 ms); none follows it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = await reads();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await reads()) - before).toBe(0);
    expect(errors).toEqual([]);
  });

  it.each([
    ['per topic', undefined],
    ['partitioned, on a partition already watched', 1],
  ])('refuses a listener once closed, saying it is closed (%s)', async (_mode, partitions) => {
    const store = engine({ partitions });
    await roundTrip(store, 'before');
    await store.close();
    await expect(store.listen('after', { event: () => {}, gap: () => {} })).rejects.toThrow(
      /^Redis listen on topic "after" failed: The Redis engine is closed$/,
    );
  });

  it('refuses a replay once closed, saying it is closed, and closes again without error', async () => {
    const store = engine();
    await store.append('before', { data: 'x' });
    await store.close();
    await expect(store.read('after', '0-0', { count: 1, bytes: 100 })).rejects.toThrow(
      /^Redis read on topic "after" failed: The Redis engine is closed$/,
    );
    await expect(store.close()).resolves.toBeUndefined();
  });

  it.each([
    ['per topic', undefined],
    ['partitioned', 1],
  ])(
    'refuses a listener it was still starting when closed: nothing would reach it (%s)',
    async (_mode, partitions) => {
      const store = engine({ partitions });
      await store.append('starting', { data: 'connected' });
      const listening = store.listen('starting', { event: () => {}, gap: () => {} });
      await store.close();
      await expect(listening).rejects.toThrow(
        /^Redis listen on topic "starting" failed: The Redis engine is closed$/,
      );
    },
  );

  it.each([
    ['per topic', undefined],
    ['partitioned', 2],
  ])(
    'ends the streams still open when closed: each completes, and its client comes back to a refusal (%s)',
    async (_mode, partitions) => {
      const store = engine({ partitions });
      const chat = createChannel(store, 'shutdown');
      const closes: string[] = [];
      const errors: unknown[] = [];
      const resumes: (string | undefined)[] = [];
      const server = await startStreamServer(
        (context) => {
          resumes.push(context.lastEventId);
          return chat.subscribe(context);
        },
        {
          heartbeat: false,
          retry: 20,
          onClose: (reason) => closes.push(reason),
          onError: (error) => errors.push(error),
        },
      );
      const client = new LiveClient(`${server.url}/events`);
      try {
        await until(() => client.opens === 1, 'the client connected');
        const id = await chat.publish({ data: 'before close' });
        await until(() => client.ids.length === 1, 'the live event');
        await store.close();
        await until(() => closes.length >= 2, 'the stream ended and its client back');
        expect(closes.slice(0, 2)).toEqual(['complete', 'error']);
        expect(resumes.slice(0, 2)).toEqual([undefined, id]);
        expect(errors[0]).toBeInstanceOf(ChannelUnavailableError);
        expect(client.ids).toEqual([id]);
      } finally {
        client.close();
        await server.close();
      }
    },
  );

  it('leaves no connection when closed at once, while its first one still connects', async () => {
    await engine().close();
    // Long enough for a connection left behind to finish its handshake and stay.
    for (let waited = 0; waited < 300; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await connections()).toBe(0);
    }
  });

  it('lets a publish under way finish when closed while Redis answers', async () => {
    const store = engine();
    await store.append('closing', { data: 'first' });
    const pending = store.append('closing', { data: 'second' });
    await store.close();
    const id = await pending;
    expect((await redis.raw.xRevRange('sse:{closing}', '+', '-', { COUNT: 1 }))?.[0]).toEqual({
      id,
      message: { d: 'second' },
    });
  });

  it('reports nothing of the age trim a publish under way sends once closed', async () => {
    const errors: unknown[] = [];
    const store = engine({ maxAgeMs: 1, onError: (error) => errors.push(error) });
    await store.append('closing', { data: 'first' });
    const pending = store.append('closing', { data: 'second' });
    await store.close();
    await pending;
    // The trim is sent after the publish's reply, to a connection closed by then.
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toEqual([]);
  });

  it.each([
    ['the backoff after a refused read', 'refused'],
    ['the wait for a key that holds no stream', 'overwritten'],
  ])('leaves no timer behind once closed during %s', async (_wait, fault) => {
    const errors: unknown[] = [];
    let gaps = 0;
    // Polls on setImmediate, which stays real: the engine's timers are the only ones faked.
    const settle = async (check: () => boolean) => {
      for (let i = 0; !check(); i++) {
        if (i > 100_000) throw new Error('the live loop never got there');
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    if (fault === 'refused')
      await redis.raw.aclSetUser('no-xread', ['reset', 'on', '>secret', '~sse:*', '+@all', '-xread']);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const store = engine({
        onError: (error) => errors.push(error),
        clientOptions: fault === 'refused' ? { username: 'no-xread', password: 'secret' } : undefined,
      });
      await store.append('waiting', { data: 'x' });
      await store.listen('waiting', { event: () => {}, gap: () => gaps++ });
      if (fault === 'refused') await settle(() => errors.length > 0);
      else {
        await redis.raw.set('sse:{waiting}', 'not a stream');
        await settle(() => errors.length > 0);
        // Past the backoff of the refused read: the loop finds the key's type and waits blockMs.
        await vi.advanceTimersByTimeAsync(25);
        await settle(() => gaps > 0);
      }
      expect(vi.getTimerCount()).toBe(1);
      await store.close();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
      if (fault === 'refused') await redis.raw.aclDelUser('no-xread');
    }
  });

  it('reports nothing once closed, not even the failure of a connection attempt Redis was down for', async () => {
    const port = await freePort();
    const errors: unknown[] = [];
    let connectFailed = false;
    // node-redis traces each connect() it is asked for: this is the attempt's promise failing.
    const failed = 'tracing:node-redis:connect:error';
    const onFailed = (context: unknown) => {
      if ((context as { serverPort?: number }).serverPort === port) connectFailed = true;
    };
    subscribe(failed, onFailed);
    try {
      const store = engine({
        url: `redis://127.0.0.1:${port}`,
        clientOptions: { socket: { reconnectStrategy: () => 100 } },
        onError: (error) => errors.push(error),
      });
      // The first attempt was refused: node-redis waits before the next one.
      await until(() => errors.length > 0, 'the first refused attempt');
      await store.close();
      const reported = errors.length;
      await until(() => connectFailed, 'the connection attempt to fail');
      await new Promise((resolve) => setImmediate(resolve));
      expect(errors.slice(reported)).toEqual([]);
    } finally {
      unsubscribe(failed, onFailed);
    }
  });

  it('stops checking the cluster topology once closed', async () => {
    const nowhere = `redis://127.0.0.1:${await freePort()}`;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const check = vi.spyOn(TopologyRefresh.prototype, 'check');
    try {
      const store = engine({
        url: undefined,
        cluster: { rootNodes: [{ url: nowhere }], topologyRefreshMs: 100 },
        onError: () => {},
      });
      await vi.advanceTimersByTimeAsync(100);
      expect(check).toHaveBeenCalledTimes(1);
      await store.close();
      await vi.advanceTimersByTimeAsync(1000);
      expect(check).toHaveBeenCalledTimes(1);
    } finally {
      check.mockRestore();
      vi.useRealTimers();
    }
  });
});
