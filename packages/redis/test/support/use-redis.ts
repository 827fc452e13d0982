import type { ChannelEngine } from '@rxsse/core/channel';
import { until } from '@rxsse/core/testing';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, onTestFinished } from 'vitest';
import { RedisServer } from '../../../../test/support/redis-server.js';
import { RedisEngineError, type RedisEngineOptions, redisEngine } from '../../src/index.js';
import { RedisCluster } from './redis-cluster.js';

interface Setup {
  /** Engine options every `engine()` of the file starts from. */
  defaults?: RedisEngineOptions;
}

/** What a test file gets from {@link useRedis}; read it inside tests and hooks, not at import. */
export interface RedisFixture {
  readonly server: RedisServer;
  /** A plain node-redis client on the server, connected, for looking behind the engine's back. */
  readonly raw: ReturnType<typeof createClient>;
  /** An engine on the server with the file's defaults under `options`; closed after each test. */
  engine(options?: RedisEngineOptions): ChannelEngine;
}

/** What a test file gets from {@link useRedisCluster}. */
export interface RedisClusterFixture {
  readonly cluster: RedisCluster;
  /** An engine on the cluster with the file's defaults under `options`; closed after each test. */
  engine(options?: RedisEngineOptions): ChannelEngine;
}

/**
 * Resolves once `store` has answered a command. Its first connect may outlast a short
 * `commandTimeoutMs` on a busy machine: a test that sets one for what comes later (a Redis killed,
 * frozen) waits here first, so the timeout meets only that.
 */
export async function connected(store: ChannelEngine): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await store.read('connected', '0-0', { count: 1, bytes: 1 });
      return;
    } catch (error) {
      if (!(error instanceof RedisEngineError) || attempt === 20) throw error;
    }
  }
}

/**
 * One redis-server for the calling file (or `describe`): started before its tests on a free port,
 * stopped after them. `persistent` turns the append-only file on (see {@link RedisServer.restart});
 * `flush` empties the server after each test; `args` are more of redis-server's options.
 */
export function useRedis({
  persistent = false,
  flush = false,
  args,
  defaults,
}: Setup & { persistent?: boolean; flush?: boolean; args?: readonly string[] } = {}): RedisFixture {
  let raw: ReturnType<typeof createClient> | undefined;
  const { get, engine } = lifecycle<RedisServer>({
    async start() {
      const server = await RedisServer.start({ persistent, args });
      raw = createClient({ url: server.url });
      // Tests kill and freeze this server: the client reconnects, its errors are expected.
      raw.on('error', () => {});
      await raw.connect();
      return server;
    },
    async afterEach() {
      if (flush && raw?.isReady) await raw.flushAll();
    },
    async stop(server) {
      raw?.destroy();
      await server.stop();
    },
    where: (server) => ({ url: server.url }),
    defaults,
  });
  return {
    get server() {
      return get();
    },
    get raw() {
      get();
      return raw!;
    },
    engine,
  };
}

/** A 3-master, 3-replica Redis Cluster for the calling file (or `describe`), as {@link useRedis}. */
export function useRedisCluster({ defaults }: Setup = {}): RedisClusterFixture {
  const { get, engine } = lifecycle<RedisCluster>({
    start: () => RedisCluster.start(),
    stop: (cluster) => cluster.stop(),
    where: (cluster) => ({ cluster: { rootNodes: cluster.rootNodes } }),
    defaults,
  });
  return {
    get cluster() {
      return get();
    },
    engine,
  };
}

/** Starts the target before the tests, closes their engines after each, stops it after all. */
function lifecycle<Target>(hooks: {
  start(): Promise<Target>;
  afterEach?(): Promise<void>;
  stop(target: Target): Promise<void>;
  where(target: Target): RedisEngineOptions;
  defaults: RedisEngineOptions | undefined;
}) {
  let target: Target | undefined;
  const engines: ChannelEngine[] = [];
  beforeAll(async () => {
    target = await hooks.start();
  }, 60_000);
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((engine) => engine.close()));
    await hooks.afterEach?.();
  });
  afterAll(async () => {
    if (target !== undefined) await hooks.stop(target);
  });
  const get = (): Target => {
    if (target === undefined) throw new Error('Redis is not started: use the fixture inside tests and hooks');
    return target;
  };
  const engine = (options: RedisEngineOptions = {}): ChannelEngine => {
    // Quiet by default: the tests cut connections on purpose, and those that check what the
    // engine reports pass their own onError.
    const quiet = { onError: () => {} };
    const created = redisEngine({ ...hooks.where(get()), ...quiet, ...hooks.defaults, ...options });
    engines.push(created);
    return created;
  };
  return { get, engine };
}

/** Drops an engine's live reader connection (the one in `XREAD`), as a network blip would. */
export async function killLiveConnection(raw: ReturnType<typeof createClient>): Promise<void> {
  let id: number | undefined;
  await until(() => {
    raw.clientList().then((clients) => {
      id = clients.find((client) => client.cmd === 'xread')?.id;
    });
    return id !== undefined;
  }, 'the live connection');
  await raw.sendCommand(['CLIENT', 'KILL', 'ID', String(id)]);
}

/**
 * A redis-server of the calling test's own, which it may kill and restart, with a plain client and
 * an engine on it (errors ignored unless `options` says), all stopped once the test finishes.
 */
export async function ownRedis(options: RedisEngineOptions = {}) {
  const server = await RedisServer.start();
  onTestFinished(() => server.stop());
  const raw = createClient({ url: server.url });
  raw.on('error', () => {});
  await raw.connect();
  onTestFinished(() => raw.destroy());
  const engine = redisEngine({ url: server.url, onError: () => {}, ...options });
  onTestFinished(() => engine.close());
  return { server, raw, engine };
}

/**
 * A `socket.reconnectStrategy` that retries 3 times, 20 ms apart, then gives up with an Error, after
 * which node-redis closes the connection for good; `gaveUp()` counts its give-ups.
 */
export function givingUpStrategy(): {
  reconnectStrategy: (retries: number) => number | Error;
  gaveUp: () => number;
} {
  let gaveUp = 0;
  const reconnectStrategy = (retries: number) => {
    if (retries <= 2) return 20;
    gaveUp++;
    return new Error('gave up');
  };
  return { reconnectStrategy, gaveUp: () => gaveUp };
}

/** Appends to `topic` as soon as the engine takes it again, trying every 100 ms, `attempts` times: the id. */
export async function appendOnceBack(store: ChannelEngine, topic: string, attempts: number): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await store.append(topic, { data: 'after' });
    } catch (error) {
      if (attempt === attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
