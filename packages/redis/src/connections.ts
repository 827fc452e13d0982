import { ClientClosedError, createClient, createCluster, type RedisClientOptions } from 'redis';
import type { RedisClient } from './client.js';
import { FailureReports } from './failure-reports.js';
import { sleep } from './sleep.js';
import { type RefreshedCluster, TopologyRefresh } from './topology-refresh.js';

/** Redis Cluster's nodes to start from: any of them, the rest is discovered. */
export interface ClusterOptions {
  rootNodes: { url: string }[];
  /**
   * How often, in ms, the engine checks the cluster's slot map (`CLUSTER SLOTS` on one master) and
   * has its connections reread the topology if it changed: a manual failover or a resharding is
   * followed without waiting for a `MOVED`. Besides, a node that is unreachable is retried, and the
   * topology reread, at least every 200 ms, so a promoted replica is found soon after a failover.
   * @defaultValue 1000
   */
  topologyRefreshMs?: number | undefined;
}

/**
 * How often an unreachable node is retried at most, each attempt rereading the topology; and how
 * soon a failed first connect is tried again.
 */
const RECONNECT_MS = 200;

/** A connection for commands, kept working. */
export interface CommandConnection {
  client: RedisClient;
  /** While `client` does not take commands yet (a Cluster's first connect, a connection being replaced), a promise of when it does. */
  connecting(): Promise<void> | undefined;
  /**
   * A call on `client` got no reply in time while it was connected, or while its handshake went
   * unanswered for as long. On a single Redis, a new connection replaces it: a connection cut off
   * silently would otherwise fail every call, until TCP gave up on it minutes later. The calls still
   * waiting on it reject at once.
   */
  stalled(): void;
}

/**
 * The engine's connections: one for reads, one for publishes, and new ones for live readers.
 * Publishes have their own: Redis holds a connection that sent a write while writes are paused
 * (`CLIENT PAUSE WRITE`, a failover), and with it every command sent after the write, replays and
 * topics' starts included, which it would serve.
 */
export interface Connections {
  /** For reads and every other command but publishes. */
  main: CommandConnection;
  /** For publishes (and their trims). */
  writes: CommandConnection;
  /** A connection of its own for a blocking reader, with the offline queue off. */
  reading(): RedisClient;
  /**
   * Stops what runs on a timer (the topology refresh), and any connecting anew; the clients are
   * closed by their owner.
   */
  close(): void;
}

/**
 * A single Redis (`url`) or a Cluster (`cluster`). The cluster client is used through the client's
 * type: the engine calls only commands of one key, or of keys in one slot, which both route alike.
 */
export function openConnections(options: {
  url: string;
  cluster: ClusterOptions | undefined;
  clientOptions: Omit<RedisClientOptions, 'url'> | undefined;
  timeout: number;
  onError: (error: unknown) => void;
}): Connections {
  const { clientOptions, timeout, onError } = options;
  // Drops a command that could not even be written in time, so a publish that failed cannot
  // still happen later once Redis is back.
  const commandOptions = { ...clientOptions?.commandOptions, timeout };
  // Without a listener node-redis errors would crash the process; they are reported and retried.
  // Each attempt to reconnect to a Redis out of reach fails anew: repeats are told at intervals.
  const reports = new FailureReports('connections', onError);
  const failed = (error: unknown) => reports.failed(error);
  const ready = () => reports.succeeded();
  const watched = (client: RedisClient) => {
    client.on('error', failed);
    client.on('node-error', failed);
    client.on('ready', ready);
    client.on('node-ready', ready);
    return client;
  };
  if (options.cluster === undefined) {
    let closed = false;
    // node-redis's destroy() misses a socket still connecting: it goes on to its handshake, and once
    // Redis answers stays open, owned by no one. Cut when it connects instead.
    const owned = (client: RedisClient) => {
      client.on('connect', () => {
        if (closed) client.destroy();
      });
      return watched(client);
    };
    // node-redis writes the url's address into the socket options it is given: a copy of the caller's.
    const commandConnection = () =>
      kept(
        owned(
          createClient({
            ...clientOptions,
            socket: { ...clientOptions?.socket },
            url: options.url,
            commandOptions,
          }),
        ),
        () => closed,
        failed,
      );
    const main = commandConnection();
    const writes = commandConnection();
    return {
      main,
      writes,
      reading: () => owned(main.client.duplicate({ disableOfflineQueue: true })),
      close: () => {
        closed = true;
        main.stop();
        writes.stop();
      },
    };
  }
  const refresh = new TopologyRefresh(options.cluster.topologyRefreshMs ?? 1000, timeout, onError);
  // node-redis rereads the topology on a node's reconnection attempts: attempts at least every
  // RECONNECT_MS make that a timer while a node is gone.
  const strategy = clientOptions?.socket?.reconnectStrategy;
  const defaults = {
    ...clientOptions,
    socket: {
      ...clientOptions?.socket,
      reconnectStrategy: (retries: number, cause: Error) => {
        if (strategy === undefined) return Math.min(50 * (retries + 1), RECONNECT_MS);
        const retryIn = typeof strategy === 'function' ? strategy(retries, cause) : strategy;
        if (typeof retryIn === 'number') return retryIn;
        // A node's connection given up on is closed for good, and node-redis never replaces it while
        // the cluster client is open: every call on the node's slots would fail, live reads too. The
        // give-up is told, and the node tried again, as a single Redis is connected again after one.
        failed(retryIn === false ? cause : retryIn);
        return RECONNECT_MS;
      },
    },
  };
  const { rootNodes } = options.cluster;
  const newCluster = () => {
    const cluster = createCluster({
      rootNodes,
      defaults,
      commandOptions,
      topologyRefreshOnReconnectionAttemptStrategy: () => RECONNECT_MS,
    });
    refresh.watch(cluster as unknown as RefreshedCluster);
    return cluster;
  };
  let closed = false;
  const main = keptCluster(newCluster(), () => closed, onError);
  const writes = keptCluster(newCluster(), () => closed, onError);
  for (const { client } of [main, writes]) watched(client);
  return {
    main,
    writes,
    reading: () => {
      const reading = main.cluster.duplicate({
        minimizeConnections: true,
        // Its defaults replace the cluster's whole: the reconnection attempts too, unless repeated.
        defaults: { ...defaults, disableOfflineQueue: true },
      });
      refresh.watch(reading as unknown as RefreshedCluster);
      return watched(reading as unknown as RedisClient);
    },
    close: () => {
      closed = true;
      refresh.close();
      main.close();
      writes.close();
    },
  };
}

/**
 * Connects `cluster` for commands. A Cluster client has no queue before its first connect, and a
 * failed connect is final: every command waits for a connect, started again if the last one failed
 * (until `closed()`), RECONNECT_MS after it: one per call would be a storm of them from a busy app.
 */
function keptCluster<Cluster extends { connect(): Promise<unknown>; destroy(): void }>(
  cluster: Cluster,
  closed: () => boolean,
  onError: (error: unknown) => void,
): CommandConnection & { cluster: Cluster; close(): void } {
  let connected = false;
  const stop = new AbortController();
  let connecting: Promise<void> | undefined;
  /** The cluster's own connect of the latest attempt, which close() does not end. */
  let underway: Promise<void> | undefined;
  /** When the next connect may start, in ms since the epoch. */
  let nextAttempt = 0;
  const attempt = async () => {
    underway = undefined;
    const wait = nextAttempt - Date.now();
    if (wait > 0) await sleep(wait, stop.signal);
    if (closed()) throw new ClientClosedError();
    underway = cluster.connect().then(() => {});
    await underway;
  };
  // Calls waiting for a connect that close() cannot cut short (a node that never answers) fail at
  // close, rather than hold their timers, and the process, until they time out.
  const attemptUntilClosed = () =>
    new Promise<void>((resolve, reject) => {
      const stopped = () => reject(new ClientClosedError());
      stop.signal.addEventListener('abort', stopped, { once: true });
      attempt().then(
        () => {
          stop.signal.removeEventListener('abort', stopped);
          resolve();
        },
        (error: unknown) => {
          stop.signal.removeEventListener('abort', stopped);
          reject(error);
        },
      );
    });
  const connect = (): Promise<void> | undefined => {
    if (connected || closed()) return undefined;
    connecting ??= attemptUntilClosed().then(
      () => {
        connected = true;
      },
      (error: unknown) => {
        connecting = undefined;
        nextAttempt = Date.now() + RECONNECT_MS;
        throw error;
      },
    );
    return connecting;
  };
  connect()?.catch((error: unknown) => {
    // Closing while it connects fails it: that is no failure to report.
    if (!closed()) onError(error);
  });
  return {
    cluster,
    client: cluster as unknown as RedisClient,
    connecting: connect,
    // node-redis's cluster client replaces a node's connection on its own errors only; one cut off
    // silently is not replaced (and MOVED or the topology refresh may route around it).
    stalled: () => {},
    close: () => {
      stop.abort();
      // A connect that destroy() cut short still opens the node connections of the slot map it
      // was reading, and leaves them open: closed again once it has ended.
      const cut = () => cluster.destroy();
      if (!connected && connecting !== undefined) (underway ?? connecting).then(cut, cut);
    },
  };
}

/**
 * Connects `client`, a single Redis's command connection, and keeps it connected: queued commands
 * wait for it (each within its timeout), a `reconnectStrategy` of the caller's that gives up is
 * followed by a connect again, and a connection found silent is replaced (see
 * {@link Connections.stalled}), until `closed()`.
 */
function kept(
  client: RedisClient,
  closed: () => boolean,
  failed: (error: unknown) => void,
): CommandConnection & { stop(): void } {
  /** The latest `connect()`, settled either way. */
  let attempt: Promise<void>;
  /** A connect given up on: its end is no failure to report. */
  let abandoned: Promise<void> | undefined;
  /** Until a connect given up on has ended and the next one started: when calls may be sent. */
  let replacing: Promise<void> | undefined;
  const connect = () => {
    const started: Promise<void> = client.connect().then(
      () => {},
      (error: unknown) => {
        // A strategy that gives up fails each connect made again after it: told as repeats.
        if (started !== abandoned) failed(error);
      },
    );
    attempt = started;
  };
  // Commands queue until the first connection is up (and while it reconnects), each within its
  // timeout.
  connect();
  // A `reconnectStrategy` of the caller's may give up: node-redis then closes the client for
  // good, where the live readers connect again on their own. The engine recovers on its own.
  // node-redis tells it as 'terminated' (older releases only end the client).
  let again: ReturnType<typeof setTimeout> | undefined;
  const connectAgain = () => {
    if (closed() || again !== undefined) return;
    again = setTimeout(() => {
      again = undefined;
      if (!closed() && !client.isOpen && replacing === undefined) connect();
    }, RECONNECT_MS);
    again.unref();
  };
  client.on('terminated', connectAgain);
  client.on('end', connectAgain);
  return {
    client,
    connecting: () => replacing,
    stalled: () => {
      if (closed() || !client.isOpen) return;
      if (client.isReady) {
        client.destroy();
        connect();
        return;
      }
      // Its handshake got no answer. node-redis goes on with that connect after destroy() until
      // its socket has closed: a connect() started before then would run beside it, and leave a
      // socket of its own that nobody closes.
      abandoned = attempt;
      client.destroy();
      replacing = attempt.then(() => {
        replacing = undefined;
        if (!closed() && !client.isOpen) connect();
      });
    },
    stop: () => clearTimeout(again),
  };
}
