import { checkOptionNames, checkOptionsObject, describeValue } from '@rxsse/core';
import type { RedisClientOptions } from 'redis';
import type { ClusterOptions } from './connections.js';

/** Options of `redisEngine`. */
export interface RedisEngineOptions {
  /**
   * A `redis:`, `rediss:` (TLS) or `unix:` (a socket's path) URL.
   * @defaultValue `'redis://127.0.0.1:6379'`
   */
  url?: string | undefined;
  /**
   * A Redis Cluster instead of `url` (node-redis `createCluster`). Needs the many-topics mode, whose
   * keys keep a publish in one slot: `partitions` defaults to 16 here. `clientOptions` apply to
   * every node's connection.
   */
  cluster?: ClusterOptions | undefined;
  /**
   * More node-redis client options (TLS, credentials, `socket.reconnectStrategy`, ...). The address
   * is `url`'s (or the cluster's): a `socket.host`, `socket.port` or `socket.path` is refused.
   */
  clientOptions?: Omit<RedisClientOptions, 'url'> | undefined;
  /**
   * Stream keys are `<keyPrefix>{<topic>}` (with `partitions`: `<keyPrefix>{<tag>}:<topic>`), one
   * per topic: topics must be well-formed UTF-16 (else {@link RedisTopicError}), and so must the
   * prefix. The braces are a Cluster hash tag.
   * @defaultValue 'sse:'
   */
  keyPrefix?: string | undefined;
  /**
   * Many-topics mode: topics are hashed into this many partitions (at most 1024), and live delivery
   * reads one stream per partition, so its cost follows the traffic, not the number of topics. Each
   * topic keeps its own stream for replay. Keys differ from the default mode (see the README), so
   * switching starts with empty history.
   */
  partitions?: number | undefined;
  /**
   * Entries kept per partition stream, in many-topics mode: how far a live reader may fall behind
   * before its subscribers are told of a gap.
   * @defaultValue 10_000
   */
  partitionMaxLength?: number | undefined;
  /**
   * Entries kept per topic (`XADD … MAXLEN ~ <n>`: Redis trims whole nodes of
   * `stream-node-max-entries`, 100 by default, so up to about that many more may stay).
   * @defaultValue 10_000
   */
  maxLength?: number | undefined;
  /** Also drop entries older than this many ms (`XTRIM … MINID ~`, by the app's clock). */
  maxAgeMs?: number | undefined;
  /**
   * How long the live reader's `XREAD` blocks, in ms (at most 1000): the longest a newly
   * subscribed topic or a recovered Redis waits before its events flow.
   * @defaultValue 500
   */
  blockMs?: number | undefined;
  /**
   * Most entries per topic per live read (halved after a read that timed out, then back up).
   * @defaultValue 500
   */
  readCount?: number | undefined;
  /**
   * Longest any command waits, in ms, whether Redis is unreachable, frozen or cut off: `publish`
   * and each replay page reject with a {@link RedisEngineError} after at most this long, they never
   * hang. A topic's first subscribe asks up to three commands in a row (its start point, and how
   * many entries its empty stream lost), four with `partitions` (its partition's start first), each
   * within this. A live read may block `blockMs` longer.
   * @defaultValue 5000
   */
  commandTimeoutMs?: number | undefined;
  /**
   * Told about connection errors, failed live reads, and stream entries the engine did not write
   * (skipped as a gap); the engine recovers from them on its own.
   * What it throws (or, async, rejects with) goes to `console.error`: it cannot stop the engine or
   * the process.
   * @defaultValue `console.error`
   */
  onError?: ((error: unknown) => void) | undefined;
}

const OPTION_NAMES = Object.keys({
  url: true,
  cluster: true,
  clientOptions: true,
  keyPrefix: true,
  partitions: true,
  partitionMaxLength: true,
  maxLength: true,
  maxAgeMs: true,
  blockMs: true,
  readCount: true,
  commandTimeoutMs: true,
  onError: true,
} satisfies Record<keyof RedisEngineOptions, true>);

const CLUSTER_OPTION_NAMES = Object.keys({
  rootNodes: true,
  topologyRefreshMs: true,
} satisfies Record<keyof ClusterOptions, true>);

/** The longest delay a JavaScript timer honours: a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Checks `redisEngine`'s options before any connection is made, so a wrong one fails there, naming
 * it and what it got, instead of as a property read of `null`, a method missing on a number, or a
 * connection that can never succeed.
 * @throws {TypeError} naming the option, when one has the wrong type.
 * @throws {RangeError} naming the option, when a value is out of range.
 */
export function checkEngineOptions(options: RedisEngineOptions): void {
  checkOptionsObject(options);
  // clientOptions are node-redis's, passed on as they are: their names are its to check.
  checkOptionNames('redisEngine', options, OPTION_NAMES);
  const { url, cluster, clientOptions, keyPrefix, onError } = options;
  if (url !== undefined) checkUrl('url', url, ['redis:', 'rediss:', 'unix:']);
  if (cluster !== undefined) checkCluster(cluster);
  if (cluster && url !== undefined) throw new RangeError('Give either url or cluster, not both');
  if (
    clientOptions !== undefined &&
    (typeof clientOptions !== 'object' || clientOptions === null || Array.isArray(clientOptions))
  )
    throw new TypeError(
      `clientOptions must be an object of node-redis options, got ${describeValue(clientOptions)}`,
    );
  // Replaced by `url` or its default: the engine would connect to another Redis. Not echoed, as it
  // may hold a password.
  if ((clientOptions as { url?: unknown } | undefined)?.url !== undefined)
    throw new TypeError('clientOptions must not hold a url (got one): give it as the url option');
  if (clientOptions?.socket !== undefined) checkSocket(clientOptions.socket, cluster !== undefined, url);
  if (keyPrefix !== undefined && typeof keyPrefix !== 'string')
    throw new TypeError(`keyPrefix must be a string, got ${describeValue(keyPrefix)}`);
  if (keyPrefix !== undefined && !keyPrefix.isWellFormed())
    throw new RangeError(`keyPrefix must be well-formed UTF-16, got ${JSON.stringify(keyPrefix)}`);
  // Redis hashes a key whose first `{` closes at once whole: a partition's key and a topic's, which
  // one script writes together, would then fall in different slots.
  if (cluster && keyPrefix?.includes('{') && keyPrefix[keyPrefix.indexOf('{') + 1] === '}')
    throw new RangeError(
      `keyPrefix ${JSON.stringify(keyPrefix)} starts a hash tag with an empty one, so a Cluster would hash a topic's keys to different slots and refuse every publish (CROSSSLOT)`,
    );
  integer('partitions', options.partitions, 1024, 'an integer from 1 to 1024');
  integer('partitionMaxLength', options.partitionMaxLength);
  if (options.partitionMaxLength !== undefined && options.partitions === undefined && !cluster)
    throw new RangeError('partitionMaxLength needs partitions (or a cluster), got none');
  integer('maxLength', options.maxLength);
  integer('maxAgeMs', options.maxAgeMs);
  integer('blockMs', options.blockMs, 1000, 'an integer from 1 to 1000');
  integer('readCount', options.readCount);
  // A live read waits up to blockMs (at most 1000 ms) longer, on one timer.
  const maxTimeout = MAX_TIMER_MS - 1000;
  integer('commandTimeoutMs', options.commandTimeoutMs, maxTimeout, `an integer from 1 to ${maxTimeout}`);
  if (onError !== undefined && typeof onError !== 'function')
    throw new TypeError(`onError must be a function, got ${describeValue(onError)}`);
}

function checkCluster(cluster: ClusterOptions): void {
  if (typeof cluster !== 'object' || cluster === null || Array.isArray(cluster))
    throw new TypeError(`cluster must be an object { rootNodes }, got ${describeValue(cluster)}`);
  checkOptionNames('cluster', cluster, CLUSTER_OPTION_NAMES);
  const { rootNodes, topologyRefreshMs } = cluster;
  if (!Array.isArray(rootNodes))
    throw new TypeError(`cluster.rootNodes must be an array of { url }, got ${describeValue(rootNodes)}`);
  // node-redis takes none, and would then never connect.
  if (rootNodes.length === 0) throw new RangeError('cluster.rootNodes must name at least one node, got none');
  rootNodes.forEach((node, i) => {
    const name = `cluster.rootNodes[${i}]`;
    if (typeof node !== 'object' || node === null)
      throw new TypeError(`${name} must be an object { url }, got ${describeValue(node)}`);
    checkUrl(`${name}.url`, node.url, ['redis:', 'rediss:'], true);
  });
  // Node fires a longer timer at once: the refresh would run in a loop.
  integer(
    'cluster.topologyRefreshMs',
    topologyRefreshMs,
    MAX_TIMER_MS,
    `a number of ms from 1 to ${MAX_TIMER_MS}`,
  );
}

/**
 * What node-redis takes: a string is parsed only when its client is made. The message names the
 * protocol alone, as a URL may hold a password.
 */
function checkUrl(name: string, url: unknown, protocols: string[], cluster = false): void {
  if (typeof url !== 'string') throw new TypeError(`${name} must be a string, got ${describeValue(url)}`);
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed === undefined || !protocols.includes(parsed.protocol)) {
    const names = `${protocols.slice(0, -1).join(', ')} or ${protocols.at(-1)}`;
    throw new RangeError(
      `${name} must be a ${names} URL, got ${parsed ? `protocol ${parsed.protocol}` : 'a string that is no URL'}`,
    );
  }
  const { protocol } = parsed;
  // node-redis reads the rest as it makes its client: it throws for a form it does not know, and asks
  // Redis to SELECT a database that is no whole number, which fails every connection.
  if (protocol === 'unix:' && !/^unix:\/\/\/[^?#]/.test(url))
    throw new RangeError(
      `${name} must be a unix:///path/to/socket URL (lower case, the path absolute), got another form`,
    );
  const database = protocol === 'unix:' ? parsed.searchParams.get('db') : parsed.pathname.slice(1);
  if (!database) return;
  const number = Number(database);
  if (!Number.isSafeInteger(number) || number < 0)
    throw new RangeError(
      `${name} must name its database by a whole number (redis://host/2, unix:///path?db=2), got ${JSON.stringify(database)}`,
    );
  // A Cluster node refuses SELECT, which node-redis sends for any database but 0.
  if (cluster && number !== 0)
    throw new RangeError(
      `${name} must name database 0 or none (a Redis Cluster has no other), got ${JSON.stringify(database)}`,
    );
}

/**
 * node-redis takes the address (and TLS) from the url, its default included, over a socket's own:
 * the engine would connect to another Redis than the one named there. A Cluster's nodes come from
 * its topology, so an address there would go unused.
 */
function checkSocket(socket: unknown, cluster: boolean, url: string | undefined): void {
  if (typeof socket !== 'object' || socket === null)
    throw new TypeError(`clientOptions.socket must be an object, got ${describeValue(socket)}`);
  const given = (name: string) => (socket as Record<string, unknown>)[name] !== undefined;
  const address = ['host', 'port'].find(given);
  if (address !== undefined)
    throw new TypeError(
      `clientOptions.socket must not hold a host or port (got ${address}): give the address as the url option (or cluster.rootNodes)`,
    );
  // node-redis connects to a socket path whatever the url says.
  if (given('path'))
    throw new TypeError('clientOptions.socket must not hold a path: give a unix: url instead');
  const { tls } = socket as { tls?: unknown };
  const protocol = url === undefined ? 'redis:' : new URL(url).protocol;
  if (!cluster && tls !== undefined && tls !== (protocol === 'rediss:'))
    throw new RangeError(
      `clientOptions.socket.tls is ${String(tls)}, but url is a ${protocol} URL${url === undefined ? ' (the default)' : ''}: TLS takes a rediss: url`,
    );
}

/** Checks an optional integer from 1 to `max`: a `TypeError` unless a number, else a `RangeError`. */
function integer(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER, what = 'a positive integer') {
  if (value === undefined) return;
  if (typeof value !== 'number') throw new TypeError(`${name} must be ${what}, got ${describeValue(value)}`);
  if (!(Number.isInteger(value) && value >= 1 && value <= max))
    throw new RangeError(`${name} must be ${what}, got ${value}`);
}
