// A real 3-master, 3-replica Redis Cluster: the channel contract, then the topology refresh on a
// timer. A manual failover (`CLUSTER FAILOVER`) closes no connection and sends no error, so only the
// timer tells the engine's connections of it before a command of theirs collects a `MOVED`.

import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import { describeEngineContract, until } from '@rxsse/core/testing';
import { createClient, type RedisClusterType } from 'redis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../test/support/processes.js';
import { RedisServer } from '../../../test/support/redis-server.js';
import { openConnections } from '../src/connections.js';
import { RedisEngineError, redisEngine } from '../src/index.js';
import { PartitionLayout, slotOf } from '../src/partition.js';
import { RedisProxy } from './support/proxy.js';
import { appendOnceBack, connected, givingUpStrategy, useRedisCluster } from './support/use-redis.js';

const redis = useRedisCluster({ defaults: { partitions: 6 } });
// What node-redis requires, not the module namespace an import would give.
const timers = createRequire(import.meta.url)(
  'node:timers/promises',
) as typeof import('node:timers/promises');

// The suite both engines pass.
describeEngineContract({
  name: 'redisEngine on Redis Cluster',
  create: ({ retain }) =>
    redisEngine({
      cluster: { rootNodes: redis.cluster.rootNodes },
      partitions: 6,
      maxLength: retain,
      blockMs: 100,
    }),
  overflow: 300,
});

const REFRESH_MS = 100;
const layout = new PartitionLayout('sse:', 6);
const slotOfTopic = (topic: string) => slotOf(/\{(.*)\}/.exec(layout.topicKey(topic))![1]!);

const closing: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

/** A root node that takes each connection and drops it at once: every connect fails. */
async function droppingNode(): Promise<{ port: number; attempts: () => number }> {
  let attempts = 0;
  const dropping = createServer((socket) => {
    attempts++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => dropping.listen(0, '127.0.0.1', resolve));
  closing.push(() => new Promise((resolve) => dropping.close(resolve)));
  return { port: (dropping.address() as { port: number }).port, attempts: () => attempts };
}

/**
 * A cluster of one node, which announces a proxy of its own (`announced`) as its address, apart from
 * the root node's (`root`): that proxy carries the cluster clients' node connections, and can put
 * the node out of reach. `admin` is a plain client on the node.
 */
async function announcedNode() {
  // Its bus port is drawn too: the default, its port + 10,000, is never checked and may be taken.
  const bus = await freePort();
  const node = await RedisServer.start({ args: ['--cluster-enabled', 'yes', '--cluster-port', String(bus)] });
  closing.push(() => node.stop());
  const [root, announced] = [await RedisProxy.start(node.port), await RedisProxy.start(node.port)];
  // Closed in reverse: the connections, then the client, the proxies, the node.
  closing.unshift(
    () => root.close(),
    () => announced.close(),
  );
  const admin = createClient({ url: node.url });
  admin.on('error', () => {});
  await admin.connect();
  closing.unshift(() => admin.destroy());
  await admin.configSet('cluster-announce-port', new URL(announced.url).port);
  await admin.sendCommand(['CLUSTER', 'ADDSLOTSRANGE', '0', '16383']);
  while (!(await admin.sendCommand<string>(['CLUSTER', 'INFO'])).includes('cluster_state:ok'))
    await new Promise((resolve) => setTimeout(resolve, 10));
  return { root, announced, admin };
}

/** Polls `check` every 10 ms; fails after `periods` refresh periods. */
async function within(periods: number, check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    if (waited > periods * REFRESH_MS) throw new Error(`${what}: not within ${periods} refresh periods`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('redisEngine on Redis Cluster', () => {
  it('connects again when its first connect failed', async () => {
    // Nothing listens on the only root node at first; then a proxy to a real node does.
    const port = await freePort();
    const store = redis.engine({
      cluster: { rootNodes: [{ url: `redis://127.0.0.1:${port}` }] },
      commandTimeoutMs: 500,
      onError: () => {},
    });
    await expect(store.append('user-1', { data: 'x' })).rejects.toThrow(RedisEngineError);
    const proxy = await RedisProxy.start(Number(new URL(redis.cluster.rootNodes[0]!.url).port), port);
    closing.push(() => proxy.close());
    let id: string | undefined;
    for (let attempt = 0; id === undefined && attempt < 10; attempt++)
      id = await store.append('user-1', { data: 'y' }).catch(() => undefined);
    expect(id).toMatch(/^\d+-\d+$/);
  });

  it('tries its first connect again 200 ms after it failed, not once per call', async () => {
    const { port, attempts } = await droppingNode();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const store = redis.engine({
        cluster: { rootNodes: [{ url: `redis://127.0.0.1:${port}` }] },
        onError: () => {},
      });
      await expect(store.append('user-1', { data: 'x' })).rejects.toThrow(RedisEngineError);
      // Its first connects: for reads, and for publishes.
      expect(attempts()).toBe(2);
      // Calls right after it wait for the next attempt: a busy app would otherwise make one each.
      const waiting = [0, 1, 2].map(() =>
        store.append('user-1', { data: 'y' }).catch((error: unknown) => error),
      );
      const settled = await Promise.race([
        Promise.all(waiting).then(() => 'settled'),
        new Promise((resolve) => setImmediate(resolve, 'waiting')),
      ]);
      await new Promise((resolve) => setImmediate(resolve));
      expect([settled, attempts()]).toEqual(['waiting', 2]);
      await vi.advanceTimersByTimeAsync(200);
      for (const outcome of await Promise.all(waiting)) expect(outcome).toBeInstanceOf(RedisEngineError);
      expect(attempts()).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('retries a node it lost at least every 200 ms', async () => {
    const { root, announced } = await announcedNode();
    const connections = openConnections({
      url: '',
      cluster: { rootNodes: [{ url: root.url }], topologyRefreshMs: 3_600_000 },
      clientOptions: undefined,
      timeout: 1000,
      onError: () => {},
    });
    closing.unshift(() => {
      connections.close();
      for (const { client } of [connections.main, connections.writes]) client.destroy();
    });
    await connections.main.connecting();
    await connections.main.client.get('k');
    // node-redis waits between a node's reconnection attempts with this setTimeout.
    const waits = vi.spyOn(timers, 'setTimeout');
    try {
      // The node goes out of reach: each connection to it is dropped at once.
      announced.dropNew = true;
      for (const connection of announced.connections) connection.destroy();
      const attempts = announced.connections.length;
      const delays = () => waits.mock.calls.map(([ms]) => ms);
      // Past node-redis's growing waits: the fourth and fifth attempts of each connection too.
      await until(
        () => delays().length >= 10 || delays().some((ms) => Number(ms) > 200),
        'ten attempts',
        30_000,
      );
      expect(delays().filter((ms) => Number(ms) > 200)).toEqual([]);
      await until(() => announced.connections.length >= attempts + 5, 'the attempts made', 30_000);
    } finally {
      waits.mockRestore();
    }
  });

  it('tells onError of a node it lost', async () => {
    const { root, announced } = await announcedNode();
    const errors: unknown[] = [];
    const store = redis.engine({
      cluster: { rootNodes: [{ url: root.url }], topologyRefreshMs: 3_600_000 },
      onError: (error) => errors.push(error),
    });
    await connected(store);
    expect(errors).toEqual([]);
    announced.dropNew = true;
    for (const connection of announced.connections) connection.destroy();
    await until(() => errors.length > 0, 'the loss told');
  });

  it('replaces a live connection to a node whose reconnect gets no answer to its handshake', async () => {
    const { root, announced, admin } = await announcedNode();
    const store = redis.engine({
      cluster: { rootNodes: [{ url: root.url }] },
      blockMs: 100,
      commandTimeoutMs: 1000,
    });
    await connected(store);
    const seen: string[] = [];
    const stop = await store.listen('unanswered', { event: (m) => seen.push(m.id), gap: () => {} });
    const live = await announced.liveConnection(admin);
    // It drops; node-redis connects to the node again on its own, and its handshake gets no answer
    // (a proxy whose node is gone).
    announced.cutNew = true;
    const opened = announced.connections.length;
    live.destroy();
    await until(() => announced.connections.length > opened, 'the unanswered connection');
    announced.cutNew = false;
    const id = await store.append('unanswered', { data: 'live' });
    await until(() => seen.length === 1, 'the event on a new connection');
    stop();
    expect(seen).toEqual([id]);
  });

  it("connects again to a node whose connections the caller's reconnectStrategy gave up on", async () => {
    const { root, announced, admin } = await announcedNode();
    const { reconnectStrategy, gaveUp } = givingUpStrategy();
    const errors: unknown[] = [];
    const store = redis.engine({
      cluster: { rootNodes: [{ url: root.url }] },
      blockMs: 100,
      commandTimeoutMs: 1000,
      // node-redis closes a node's connection for good once its strategy returns an Error, while
      // the cluster client stays open.
      clientOptions: { socket: { reconnectStrategy } },
      onError: (error) => errors.push(error),
    });
    await connected(store);
    const seen: string[] = [];
    const stop = await store.listen('gave-up', { event: (m) => seen.push(m.id), gap: () => {} });
    await announced.liveConnection(admin);
    // node-redis waits between a node's reconnection attempts with this setTimeout.
    const waits = vi.spyOn(timers, 'setTimeout');
    try {
      // The node goes out of reach: the command and live connections drop, and so does each attempt
      // to connect again, until both strategies gave up.
      announced.dropNew = true;
      for (const connection of announced.connections) connection.destroy();
      await until(() => gaveUp() >= 2, 'both connections given up');
      announced.dropNew = false;
      const id = await appendOnceBack(store, 'gave-up', 20);
      await until(() => seen.length === 1, 'the event on a new live connection');
      stop();
      expect(seen).toEqual([id]);
      // The strategy's own waits, then 200 ms after each give-up, which is told.
      expect(new Set(waits.mock.calls.map(([ms]) => ms))).toEqual(new Set([20, 200]));
      expect(errors).toContainEqual(expect.objectContaining({ message: 'gave up' }));
    } finally {
      waits.mockRestore();
    }
  });

  it('makes no attempt to connect once closed while a call waits for the next attempt', async () => {
    const { port, attempts } = await droppingNode();
    const store = redis.engine({
      cluster: { rootNodes: [{ url: `redis://127.0.0.1:${port}` }] },
      onError: () => {},
    });
    await expect(store.append('user-1', { data: 'x' })).rejects.toThrow(RedisEngineError);
    // Within the 200 ms before the next attempt: this call waits for it, and close() ends the wait.
    const waiting = store.append('user-1', { data: 'y' }).catch((error: unknown) => error);
    await store.close();
    expect(await waiting).toBeInstanceOf(RedisEngineError);
    // A connect started all the same would reach the node before this one, made after it: the
    // engine's first two (for reads, and for publishes), then this one.
    await new Promise((resolve) => connect(port, '127.0.0.1').on('close', resolve));
    expect(attempts()).toBe(3);
  });

  it('connects no more once closed, even when its first connect had failed', async () => {
    const port = await freePort();
    const errors: unknown[] = [];
    const store = redis.engine({
      cluster: { rootNodes: [{ url: `redis://127.0.0.1:${port}` }] },
      commandTimeoutMs: 500,
      onError: (error) => errors.push(error),
    });
    await expect(store.append('user-1', { data: 'x' })).rejects.toThrow(RedisEngineError);
    await store.close();
    errors.length = 0;
    const proxy = await RedisProxy.start(Number(new URL(redis.cluster.rootNodes[0]!.url).port), port);
    closing.push(() => proxy.close());
    await expect(store.append('user-1', { data: 'y' })).rejects.toThrow(/failed: ClientClosedError/);
    expect(proxy.connections).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('leaves no connection when closed at once, while it discovers the cluster', async () => {
    const name = 'closed-at-once';
    await redis.engine({ clientOptions: { name }, onError: () => {} }).close();
    // Long enough for the discovery to end and connect to every master, as it does when left to.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const lists = await Promise.all(
      redis.cluster.rootNodes.map(({ url }) =>
        redis.cluster.cli(Number(new URL(url).port), 'CLIENT', 'LIST'),
      ),
    );
    expect(
      lists
        .join('')
        .split('\n')
        .filter((line) => line.includes(` name=${name} `)),
    ).toEqual([]);
  });

  it('never sends a call that gave up waiting for the first connect', async () => {
    const direct = redis.engine();
    const before = await direct.append('user-3', { data: 'before' });
    // The only root node answers nothing until released: the first connect outlasts the call.
    const port = await freePort();
    const proxy = await RedisProxy.start(Number(new URL(redis.cluster.rootNodes[0]!.url).port), port);
    closing.push(() => proxy.close());
    proxy.holdNew = true;
    // The held connect outlasts any timeout; one of 2 s, not 300 ms, leaves the calls after the
    // release (a whole cluster connect, then a publish) room for a busy machine's pauses.
    const store = redis.engine({
      cluster: { rootNodes: [{ url: `redis://127.0.0.1:${port}` }] },
      commandTimeoutMs: 2000,
      onError: () => {},
    });
    await expect(store.append('user-3', { data: 'rejected' })).rejects.toThrow(
      /not connected within 2000 ms/,
    );
    proxy.holdNew = false;
    for (const connection of proxy.connections) connection.release();
    await connected(store);
    await store.append('user-3', { data: 'after' });
    const page = await direct.read('user-3', before, { count: 10, bytes: 10_000 });
    expect(page.events.map((event) => event.data)).toEqual(['after']);
  });

  it("tells a refused EVAL_RO once per engine, though each partition's reader meets it on its own connection", async () => {
    const nodes = await Promise.all(
      redis.cluster.nodes.map(async ({ port }) => {
        const node = createClient({ url: `redis://127.0.0.1:${port}` });
        closing.push(() => node.close());
        await node.connect();
        await node.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all', '-eval_ro']);
        return node;
      }),
    );
    const refusedReadOnly = async () => {
      const stats = await Promise.all(nodes.map((node) => node.info('commandstats')));
      return stats.reduce(
        (sum, info) => sum + Number(/cmdstat_eval_ro:.*rejected_calls=(\d+)/.exec(info)?.[1] ?? 0),
        0,
      );
    };
    const before = await refusedReadOnly();
    const errors: unknown[] = [];
    const store = redis.engine({
      blockMs: 20,
      clientOptions: { username: 'reader', password: 'secret' },
      onError: (error) => errors.push(error),
    });
    // Three topics in three partitions: three readers, each on a connection of its own.
    const topics: string[] = [];
    for (let i = 0; topics.length < 3; i++)
      if (!topics.some((topic) => layout.partitionOf(topic) === layout.partitionOf(`refused-${i}`)))
        topics.push(`refused-${i}`);
    const ids: string[] = [];
    const stops = await Promise.all(
      topics.map((topic) => store.listen(topic, { event: (m) => ids.push(m.id), gap: () => {} })),
    );
    // A large cursor is checked beside each blocking read by a read-only script.
    for (const topic of topics) await store.append(topic, { data: 'x'.repeat(20_000) });
    await until(() => ids.length === 3, 'the large events');
    // The topics' start points met it on the command connection; each reader's checks on its own.
    for (let waited = 0; (await refusedReadOnly()) < before + 4; waited += 10) {
      if (waited > 10_000) throw new Error('timed out waiting for four refused EVAL_RO');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const stop of stops) stop();
    const told = errors.filter((error) => /eval_ro/i.test(String(error)));
    expect(told.map((error) => (error as Error).message)).toEqual([
      expect.stringMatching(/^Redis refused EVAL_RO, so /),
    ]);
  });

  it('lays topics out in 16 partitions unless told otherwise', async () => {
    const defaults = redis.engine({ partitions: undefined });
    const sixteen = redis.engine({ partitions: 16 });
    for (const topic of ['layout-1', 'layout-2', 'layout-3', 'layout-4']) {
      const id = await defaults.append(topic, { data: 'x' });
      // Replay finds the id only in the stream where 16 partitions put the topic.
      expect(await sixteen.read(topic, id, { count: 10, bytes: 1000 }), topic).toMatchObject({
        truncated: false,
      });
    }
  });
});

describe('topology refresh on a timer', () => {
  it('refuses a refresh period that is not a positive integer of at most 2^31-1 ms', () => {
    for (const topologyRefreshMs of [0, -1, 1.5, 2 ** 31])
      expect(() =>
        redisEngine({ cluster: { rootNodes: redis.cluster.rootNodes, topologyRefreshMs } }),
      ).toThrow(/cluster\.topologyRefreshMs must be/);
  });

  it('publishes after a manual failover collect no MOVED and no error', async () => {
    const errors: unknown[] = [];
    const engine = redis.engine({
      cluster: { rootNodes: redis.cluster.rootNodes, topologyRefreshMs: REFRESH_MS },
      onError: (error) => errors.push(error),
    });
    const topic = 'user-1';
    await engine.append(topic, { data: 'before' });

    await redis.cluster.failover(slotOfTopic(topic));
    const moved = await redis.cluster.movedReplies();
    // Five periods: the refresh has run at least four times since every node agreed.
    await new Promise((resolve) => setTimeout(resolve, 5 * REFRESH_MS));
    await engine.append(topic, { data: 'after' });

    expect(await redis.cluster.movedReplies()).toBe(moved);
    expect(errors).toEqual([]);
  });

  it("follows a resharding of a topic's slot: live delivery goes on, each publish stored once or refused", async () => {
    const store = redis.engine({
      cluster: { rootNodes: redis.cluster.rootNodes, topologyRefreshMs: REFRESH_MS },
      blockMs: 100,
    });
    const topic = 'user-4';
    const seen: string[] = [];
    const stop = await store.listen(topic, {
      event: (message) => seen.push(message.id),
      gap: () => seen.push('<gap>'),
    });
    const stored: string[] = [];
    const refused: unknown[] = [];
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        await store.append(topic, { data: 'x' }).then(
          (id) => stored.push(id),
          (error: unknown) => refused.push(error),
        );
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await until(() => seen.length >= 5, 'live events before');
    await redis.cluster.reshard(slotOfTopic(topic));
    const moved = stored.length;
    await until(() => stored.length >= moved + 20, 'publishes after');
    publishing = false;
    await publisher;
    await until(() => seen.at(-1) === stored.at(-1), 'the last event');
    stop();
    expect(seen).toEqual(stored);
    for (const error of refused) expect(error).toBeInstanceOf(RedisEngineError);
  });

  it("the command and live-reader connections' views follow within a few periods", async () => {
    const errors: unknown[] = [];
    const connections = openConnections({
      url: '',
      cluster: { rootNodes: redis.cluster.rootNodes, topologyRefreshMs: REFRESH_MS },
      clientOptions: undefined,
      timeout: 1000,
      onError: (error) => errors.push(error),
    });
    const main = connections.main.client as unknown as RedisClusterType;
    const reading = connections.reading() as unknown as RedisClusterType;
    closing.push(() => {
      connections.close();
      for (const client of [main, connections.writes.client, reading]) client.destroy();
    });
    await connections.main.connecting();
    await reading.connect();
    const slot = slotOfTopic('user-2');
    const masterId = (client: RedisClusterType) => client.slots[slot]?.master.id;

    const { to } = await redis.cluster.failover(slot);
    const promoted = await redis.cluster.cli(to.port, 'CLUSTER', 'MYID');

    await within(5, () => masterId(main) === promoted, 'the command connection');
    await within(5, () => masterId(reading) === promoted, 'the reader connection');
    expect(errors).toEqual([]);
  });
});
