import {
  type ChannelEngine,
  type LiveBus,
  type LiveListener,
  parseStreamId,
  type ReadLimit,
} from '@rxsse/core/channel';
import { ErrorReply, type RedisClientOptions } from 'redis';
import type { RedisClient } from './client.js';
import { type ClusterOptions, openConnections } from './connections.js';
import { TimedClient } from './deadline.js';
import { RedisEngineError, RedisTimeoutError, RedisTopicError } from './errors.js';
import { LargeEntries } from './large-entries.js';
import { LiveReader } from './live-reader.js';
import { appendToPartition, PartitionLayout } from './partition.js';
import { decodeRouted, PartitionBus, type Routed } from './partition-bus.js';
import { fromEntry, toFields } from './stream-fields.js';
import { type Entry, readPage } from './stream-read.js';

/** Options of {@link redisEngine}. */
export interface RedisEngineOptions {
  /** @defaultValue `'redis://127.0.0.1:6379'` */
  url?: string;
  /**
   * A Redis Cluster instead of `url` (node-redis `createCluster`). Needs the many-topics mode, whose
   * keys keep a publish in one slot: `partitions` defaults to 16 here. `clientOptions` apply to
   * every node's connection.
   */
  cluster?: ClusterOptions;
  /** More node-redis client options (TLS, credentials, `socket.reconnectStrategy`, ...). */
  clientOptions?: Omit<RedisClientOptions, 'url'>;
  /**
   * Stream keys are `<keyPrefix>{<topic>}` (with `partitions`: `<keyPrefix>{<tag>}:<topic>`), one
   * per topic: topics must be well-formed UTF-16 (else {@link RedisTopicError}), and so must the
   * prefix. The braces are a Cluster hash tag.
   * @defaultValue 'sse:'
   */
  keyPrefix?: string;
  /**
   * Many-topics mode: topics are hashed into this many partitions (at most 1024), and live delivery
   * reads one stream per partition, so its cost follows the traffic, not the number of topics. Each
   * topic keeps its own stream for replay. Keys differ from the default mode (see the README), so
   * switching starts with empty history.
   */
  partitions?: number;
  /**
   * Entries kept per partition stream, in many-topics mode: how far a live reader may fall behind
   * before its subscribers are told of a gap.
   * @defaultValue 10_000
   */
  partitionMaxLength?: number;
  /**
   * Entries kept per topic (`XADD … MAXLEN ~ <n>`: Redis trims whole nodes, so a few more may stay).
   * @defaultValue 10_000
   */
  maxLength?: number;
  /** Also drop entries older than this many ms (`XTRIM … MINID ~`, by the app's clock). */
  maxAgeMs?: number;
  /**
   * How long the live reader's `XREAD` blocks, in ms (at most 1000): the longest a newly
   * subscribed topic or a recovered Redis waits before its events flow.
   * @defaultValue 500
   */
  blockMs?: number;
  /**
   * Most entries per topic per live read (halved after a read that timed out, then back up).
   * @defaultValue 500
   */
  readCount?: number;
  /**
   * Longest any command waits, in ms, whether Redis is unreachable, frozen or cut off: `publish`,
   * replay and a topic's first subscribe reject with a {@link RedisEngineError} after at most this
   * long, they never hang. A live read may block `blockMs` longer.
   * @defaultValue 5000
   */
  commandTimeoutMs?: number;
  /**
   * Told about connection errors, failed live reads, and stream entries the engine did not write
   * (skipped as a gap); the engine recovers from them on its own.
   * What it throws (or, async, rejects with) goes to `console.error`: it cannot stop the engine or
   * the process.
   * @defaultValue `console.error`
   */
  onError?: (error: unknown) => void;
}

/**
 * A `ChannelEngine` on Redis Streams (Redis ≥ 6.2 or Valkey), through node-redis: one stream per
 * topic, whose entry ids (`<ms>-<seq>`) are the SSE ids. Every process that creates channels on the
 * same Redis shares their events, and a client may reconnect to any of them.
 *
 * - `publish` is one `XADD <key> MAXLEN ~ <maxLength> *`.
 * - Replay is `XRANGE <key> <id> + COUNT <n>`: the id itself must still be in the stream
 *   (otherwise: truncated).
 * - Live delivery is one dedicated connection per engine looping `XREAD BLOCK` from the last id it
 *   delivered, so a Redis blip neither hangs nor skips events (see `LiveReader`).
 *
 * Two connections per engine (on a Cluster, one per node for commands and one per partition for live
 * reads): create one engine per process and share it between channels.
 *
 * @example
 * ```ts
 * const engine = redisEngine({ url: process.env.REDIS_URL });
 * const chat = createChannel(engine, 'chat');
 * ```
 */
export function redisEngine(options: RedisEngineOptions = {}): ChannelEngine {
  const prefix = options.keyPrefix ?? 'sse:';
  if (!prefix.isWellFormed()) throw new RangeError('keyPrefix must be well-formed UTF-16');
  const maxLength = positive(options.maxLength ?? 10_000, 'maxLength');
  const maxAgeMs = options.maxAgeMs === undefined ? undefined : positive(options.maxAgeMs, 'maxAgeMs');
  const blockMs = positive(options.blockMs ?? 500, 'blockMs');
  if (blockMs > 1000) throw new RangeError('blockMs must be at most 1000');
  const timeout = positive(options.commandTimeoutMs ?? 5000, 'commandTimeoutMs');
  let closed = false;
  const report = guarded(options.onError);
  // A closed engine reports nothing more: what failed after close() (a connection attempt node-redis
  // was waiting to make, a read under way) is its shutdown, not a failure.
  const onError = (error: unknown) => {
    if (!closed) report(error);
  };
  const readCount = positive(options.readCount ?? 500, 'readCount');
  if (options.cluster && options.url !== undefined)
    throw new RangeError('Give either url or cluster, not both');
  const refreshMs = options.cluster?.topologyRefreshMs;
  // Node fires a timer of over 2^31-1 ms at once: the refresh would run in a loop.
  if (refreshMs !== undefined && positive(refreshMs, 'cluster.topologyRefreshMs') > 2 ** 31 - 1)
    throw new RangeError('cluster.topologyRefreshMs must be at most 2147483647');
  const partitions = options.partitions ?? (options.cluster ? 16 : undefined);
  const layout =
    partitions === undefined ? undefined : new PartitionLayout(prefix, partitionCount(partitions));
  const partitionMaxLength = positive(options.partitionMaxLength ?? 10_000, 'partitionMaxLength');

  const connections = openConnections({
    url: options.url ?? 'redis://127.0.0.1:6379',
    cluster: options.cluster,
    clientOptions: options.clientOptions,
    timeout,
    onError,
  });
  const { main } = connections;
  const commands = new TimedClient(main, timeout, connections.connecting, connections.stalled);
  const largeEntries = new LargeEntries(commands, onError);
  const readingClients: RedisClient[] = [];
  const readers: { close(): void }[] = [];
  const newReader = <T>(decode: (entry: Entry) => T) => {
    const reading = connections.reading();
    readingClients.push(reading);
    const reader = new LiveReader(commands, new TimedClient(reading, timeout), {
      blockMs,
      readCount,
      onError,
      decode,
      single: options.cluster === undefined,
    });
    readers.push(reader);
    return reader;
  };
  let bus: LiveBus;
  if (layout) {
    // On one Redis, one reader reads every partition. On a Cluster, the partitions' keys are in
    // different slots, which no one XREAD may mix: one reader each, created when first listened to.
    const shared = options.cluster ? undefined : newReader(decodeRouted);
    const perPartition = new Map<number, LiveReader<Routed>>();
    const readerOf = (partition: number) => {
      if (shared) return shared;
      let reader = perPartition.get(partition);
      if (!reader) {
        reader = newReader(decodeRouted);
        perPartition.set(partition, reader);
      }
      return reader;
    };
    bus = new PartitionBus(readerOf, commands, layout, onError);
  } else {
    const reader = newReader((entry) => fromEntry(entry.id, entry.message).message);
    bus = { listen: (topic, listener) => reader.listen(keyOf(topic), listener) };
  }
  // Injective: keys are UTF-8, which is one-to-one on well-formed strings only.
  function keyOf(topic: string): string {
    if (!topic.isWellFormed()) throw new RedisTopicError(topic);
    return layout ? layout.topicKey(topic) : `${prefix}{${topic}}`;
  }

  return {
    async append(topic, message) {
      // Refused here, as memoryEngine refuses them: Redis would take some that break the id rule
      // (`5`, `5-*`), and refuse 0-0 as a failed command, as if Redis were at fault.
      const own = message.id === undefined ? undefined : parseStreamId(message.id);
      if (message.id !== undefined && (own === undefined || (own.ms === 0n && own.seq === 0n)))
        throw new RangeError(
          `A stored event's id must be <ms>-<seq> above 0-0, not ${JSON.stringify(message.id)}`,
        );
      const key = keyOf(topic);
      const fields = toFields(message);
      const trim = { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: maxLength } } as const;
      let id: string;
      try {
        id = await commands.run((client) =>
          layout
            ? appendToPartition(client, {
                topic,
                topicKey: key,
                partitionKey: layout.partitionKey(layout.partitionOf(topic)),
                id: message.id ?? '*',
                fields,
                maxLength,
                partitionMaxLength,
              })
            : client.xAdd(key, message.id ?? '*', fields, trim),
        );
      } catch (error) {
        // The caller's id, not Redis, is at fault, as memoryEngine says: asked of Redis rather than
        // checked first, which would cost a round trip per publish and still race other publishers.
        if (isIdNotAfterLast(error))
          throw new RangeError(
            `Event id ${message.id} is not after the last id of topic ${JSON.stringify(topic)}`,
            { cause: error },
          );
        throw new RedisEngineError('publish', topic, error);
      }
      // Trimming by age is housekeeping: the event is stored whether or not this succeeds.
      const oldest = maxAgeMs === undefined ? 0 : Date.now() - maxAgeMs;
      // Not below 0: Redis refuses a negative id, and no entry is older than the clock anyway.
      if (oldest > 0)
        commands
          .run((client) => client.xTrim(key, 'MINID', oldest, { strategyModifier: '~' }))
          .catch(onError);
      return id;
    },

    async read(topic: string, afterId: string, limit: ReadLimit) {
      const key = keyOf(topic);
      const page = largeEntries.page(key);
      try {
        return await commands.run((client, expired) =>
          readPage(client, key, afterId, limit, onError, expired, page),
        );
      } catch (error) {
        // Over a connection that was up, an entry may be too large to ever arrive in time: the next
        // reads find out, or go on as before. A connection still coming back proves nothing.
        if (error instanceof RedisTimeoutError && error.connected && !closed)
          void largeEntries.timedOut(key, {
            from: page.from,
            end: page.end,
            count: page.count,
            fetchedFrom: page.fetchedFrom,
          });
        throw new RedisEngineError('read', topic, error);
      }
    },

    async listen(topic: string, listener: LiveListener) {
      keyOf(topic);
      const closedError = () => new Error('The Redis engine is closed');
      if (closed) throw new RedisEngineError('listen', topic, closedError());
      let unlisten: () => void;
      try {
        unlisten = await bus.listen(topic, listener);
      } catch (error) {
        throw new RedisEngineError('listen', topic, closed ? closedError() : error);
      }
      // Closed while it started: no event would ever reach it.
      if (closed) {
        unlisten();
        throw new RedisEngineError('listen', topic, closedError());
      }
      return unlisten;
    },

    async close() {
      closed = true;
      connections.close();
      largeEntries.close();
      for (const reader of readers) reader.close();
      for (const reading of readingClients) if (reading.isOpen) reading.destroy();
      if (!main.isOpen) return;
      // Pending publishes finish if Redis answers in time; if it does not, nothing is worth waiting for.
      if (main.isReady) await commands.run(main.close()).catch(() => main.destroy());
      else main.destroy();
    },
  };
}

/**
 * `onError`, kept from throwing into the engine: called from node-redis's `error` events, a throw
 * is an uncaught exception that ends the process, and from the live loop it ends live delivery.
 * Without one, errors go to `console.error`: an engine has no framework log to hand them to, and
 * an outage nobody hears of looks like a quiet topic.
 */
function guarded(onError: ((error: unknown) => void) | undefined): (error: unknown) => void {
  if (onError === undefined) return (error) => console.error('rxsse: Redis engine:', error);
  const failed = (thrown: unknown) => console.error("rxsse: the Redis engine's onError threw", thrown);
  return (error) => {
    try {
      const result: unknown = onError(error);
      // An async onError's rejection would be unhandled: it is heard like a throw.
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function')
        (result as PromiseLike<unknown>).then(undefined, failed);
    } catch (thrown) {
      failed(thrown);
    }
  };
}

function partitionCount(value: number): number {
  if (!(Number.isInteger(value) && value >= 1 && value <= 1024))
    throw new RangeError('partitions must be an integer from 1 to 1024');
  return value;
}

function positive(value: number, name: string): number {
  if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`${name} must be a positive integer`);
  return value;
}

/** Redis's refusal of an XADD id at or below the stream's last (also from within the append script). */
function isIdNotAfterLast(error: unknown): boolean {
  return (
    error instanceof ErrorReply &&
    error.message.startsWith(
      'ERR The ID specified in XADD is equal or smaller than the target stream top item',
    )
  );
}
