import {
  type ChannelEngine,
  type LiveBus,
  type LiveListener,
  parseStreamId,
  type ReadLimit,
} from '@rxsse/core/channel';
import type { RedisClient } from './client.js';
import { type CommandConnection, openConnections } from './connections.js';
import { TimedClient } from './deadline.js';
import { isIdNotAfterLast, RedisEngineError, RedisTimeoutError, RedisTopicError } from './errors.js';
import { LargeEntries } from './large-entries.js';
import { LiveReader } from './live-reader.js';
import { checkEngineOptions, type RedisEngineOptions } from './options.js';
import { appendToPartition, PartitionLayout } from './partition.js';
import { decodeRouted, PartitionBus, type Routed } from './partition-bus.js';
import { ReadGate } from './read-gate.js';
import { Refusals, refusedCommand } from './refusals.js';
import { fromEntry, toFields } from './stream-fields.js';
import { type Entry, readPage } from './stream-read.js';

/**
 * History reads an engine runs at once (see `ReadGate`): of 2000 reads of 400 KB each, asked at once
 * of one Redis, 1,500 to 2,000 were served within 5 s in turns of 8, fewer in turns of 2, 4, 16 or
 * 32, and about 400 sent all at once.
 */
const READS_AT_ONCE = 8;

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
 * Three connections per engine, for reads, publishes and live delivery (on a Cluster, one per node
 * for reads, one per node for publishes, and one per partition for live reads): create one engine per
 * process and share it between channels.
 *
 * @throws {TypeError} naming the option, when one has the wrong type (`null` options, a `keyPrefix`
 *   that is no string, ...).
 * @throws {RangeError} naming the option and its value, when one is out of range.
 * @example
 * ```ts
 * const engine = redisEngine({ url: process.env.REDIS_URL });
 * const chat = createChannel(engine, 'chat');
 * ```
 */
export function redisEngine(options: RedisEngineOptions = {}): ChannelEngine {
  checkEngineOptions(options);
  const prefix = options.keyPrefix ?? 'sse:';
  const maxLength = options.maxLength ?? 10_000;
  const { maxAgeMs } = options;
  const blockMs = options.blockMs ?? 500;
  const timeout = options.commandTimeoutMs ?? 5000;
  let closed = false;
  const report = guarded(options.onError);
  // A closed engine reports nothing more: what failed after close() (a connection attempt node-redis
  // was waiting to make, a read under way) is its shutdown, not a failure.
  const onError = (error: unknown) => {
    if (!closed) report(error);
  };
  const readCount = options.readCount ?? 500;
  const partitions = options.partitions ?? (options.cluster ? 16 : undefined);
  const layout = partitions === undefined ? undefined : new PartitionLayout(prefix, partitions);
  const partitionMaxLength = options.partitionMaxLength ?? 10_000;

  const connections = openConnections({
    url: options.url ?? 'redis://127.0.0.1:6379',
    cluster: options.cluster,
    clientOptions: options.clientOptions,
    timeout,
    onError,
  });
  const timed = ({ client, connecting, stalled }: CommandConnection) =>
    new TimedClient(client, timeout, connecting, stalled);
  const commands = timed(connections.main);
  // Publishes have a connection of their own: while Redis holds writes back (a failover), it holds
  // the connection a publish came on, and replays sent behind it would wait, or time out, with it.
  const writes = timed(connections.writes);
  const refusals = new Refusals(onError);
  /** Redis refused `XTRIM` (told once): no publish sends it again. */
  let trimRefused = false;
  const largeEntries = new LargeEntries(commands, onError, refusals);
  const reads = new ReadGate(READS_AT_ONCE, timeout);
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
      refusals,
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
    bus = new PartitionBus(readerOf, commands, layout, onError, refusals);
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
        id = await writes.run((client) =>
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
      const oldest = maxAgeMs === undefined || trimRefused ? 0 : Date.now() - maxAgeMs;
      // Not below 0: Redis refuses a negative id, and no entry is older than the clock anyway.
      if (oldest > 0)
        writes
          .run((client) => client.xTrim(key, 'MINID', oldest, { strategyModifier: '~' }))
          .catch((error: unknown) => {
            if (!refusedCommand(error, 'xtrim')) return onError(error);
            // Refused for good (an ACL, a renamed command): each publish would repeat it.
            trimRefused = true;
            refusals.refused('XTRIM', error, 'entries older than maxAgeMs stay, until maxLength trims them');
          });
      return id;
    },

    async read(topic: string, afterId: string, limit: ReadLimit, signal?: AbortSignal) {
      const key = keyOf(topic);
      const page = largeEntries.page(key);
      // Over a connection that was up, an entry may be too large to ever arrive in time: the next
      // reads find out, or go on as before. A connection still coming back proves nothing, nor
      // does a read that failed waiting for its turn.
      const suspect = (error: unknown): never => {
        if (error instanceof RedisTimeoutError && error.connected && !closed)
          void largeEntries.timedOut(key, {
            from: page.from,
            end: page.end,
            count: page.count,
            fetchedFrom: page.fetchedFrom,
          });
        throw error;
      };
      const read = () =>
        commands
          .run((client, expired) => readPage(client, key, afterId, limit, onError, refusals, expired, page))
          .catch(suspect);
      try {
        return await reads.read(key, afterId, read, signal);
      } catch (error) {
        throw new RedisEngineError('read', topic, error);
      }
    },

    async listen(topic: string, listener: LiveListener) {
      keyOf(topic);
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
      reads.close(closedError);
      connections.close();
      largeEntries.close();
      for (const reader of readers) reader.close();
      for (const reading of readingClients) if (reading.isOpen) reading.destroy();
      // Pending publishes finish if Redis answers in time; if it does not, nothing is worth waiting for.
      await Promise.all([commands, writes].map(closeClient));
    },
  };
}

/** Closes `timed`'s client once the commands sent on it are answered, or within its timeout. */
async function closeClient(timed: TimedClient): Promise<void> {
  const { client } = timed;
  if (!client.isOpen) return;
  if (client.isReady) await timed.run(client.close()).catch(() => client.destroy());
  else client.destroy();
}

/** What a call made of a closed engine fails with (as the cause of its `RedisEngineError`). */
const closedError = () => new Error('The Redis engine is closed');

/**
 * `onError`, kept from throwing into the engine: called from node-redis's `error` events, a throw
 * is an uncaught exception that ends the process, and from the live loop it ends live delivery.
 * Without one, errors go to `console.error`: an engine has no framework log to hand them to, and
 * an outage nobody hears of looks like a quiet topic.
 */
function guarded(onError: ((error: unknown) => void) | undefined): (error: unknown) => void {
  const log = (error: unknown) => console.error('rxsse: Redis engine:', error);
  if (onError === undefined) return log;
  return (error) => {
    // An onError that failed did not take the error either: both are logged.
    const failed = (thrown: unknown) => {
      console.error("rxsse: the Redis engine's onError threw", thrown);
      log(error);
    };
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
