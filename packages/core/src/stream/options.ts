import { checkFormatOptions, FORMAT_OPTION_NAMES, kindOf } from '../encode/format.js';
import type { FormatOptions, MessageEvent } from '../encode/types.js';
import { checkHeaderOverrides, type HeaderOverrides } from '../http/headers.js';
import { checkOptionNames, checkOptionsObject } from '../http/option-names.js';
import { describeValue } from '../http/source.js';
import { checkDuration, checkIntegerDuration } from './duration.js';
import { checkStreamGroup, openStreams, type StreamGroup } from './group.js';
import type { StreamMetrics } from './metrics.js';
import { checkOverflowPolicy, type OverflowPolicy } from './overflow.js';
import type { CloseReason, StreamStats } from './stats.js';

/**
 * What to do with a message the stream cannot send: one the encoder refuses (`SseFormatError`,
 * `SseRangeError`), whose serializer throws, or larger than `maxQueueBytes`.
 */
export type InvalidMessagePolicy = 'skip' | 'close';

/** Options of one event stream. Resolve them once per route with {@link resolveStreamOptions}. */
export interface StreamOptions extends FormatOptions {
  /**
   * Most bytes queued for a client that reads slower than the source emits, beyond what the
   * transport buffers. An Observable cannot be paused: a synchronous burst larger than this meets
   * `onOverflow` by design. Raise it, or use an `AsyncIterable` source, which is pulled only when
   * the client has room.
   * @defaultValue 1_048_576 (1 MiB)
   */
  maxQueueBytes?: number | undefined;
  /**
   * `'close'` ends the response (the client reconnects with `Last-Event-ID`); `'drop-oldest'` and
   * `'drop-newest'` discard events and count them in `stats.dropped`. A channel's subscriber is then
   * sent the channel's truncation event (reason `gap`) after them, so it knows events are missing.
   * @defaultValue 'close'
   */
  onOverflow?: OverflowPolicy | undefined;
  /**
   * What to do with a message that cannot be sent: one the encoder refuses, whose `serialize`
   * throws, or larger than `maxQueueBytes`. `'skip'` reports it (`onError`), counts it
   * (`stats.refused`) and goes on, so one bad message never traps a reconnecting client in a loop;
   * `'close'` ends the stream with reason `'error'`. A channel's truncation event is sent as JSON,
   * whatever `serialize` and `strict`, so neither refuses it.
   * @defaultValue 'skip'
   */
  onInvalidMessage?: InvalidMessagePolicy | undefined;
  /**
   * What a value the source emits that is not a message object (a string, a number) is:
   * `'refuse'`d as invalid (see `onInvalidMessage`), or the `'data'` of an event, `{ data: value }`,
   * as NestJS's `@Sse()` sends it (the default of `@rxsse/nestjs` routes). Message objects never
   * pay for it; `null` and `undefined` are refused either way.
   * @defaultValue 'refuse'
   */
  bareValues?: 'refuse' | 'data' | undefined;
  /**
   * Close a client that accepted no bytes for this many ms while data waited. `false` disables it.
   * This holds after the stream ended too (source complete or failed, `maxLifetime`, a `close()`
   * outside a group's shutdown, which has its deadline instead): the response is dropped if the
   * client takes none of what the end left in the transport for this many ms; one that takes
   * some in each such window keeps it until it has it all (on a transport whose sink has `pending()`).
   * @defaultValue 30_000
   */
  stallTimeout?: number | false | undefined;
  /**
   * Send a comment once a whole interval of this many ms passed without any write, to keep proxies
   * from closing the connection: it comes one to two intervals after the last write, so keep it
   * under half of any idle timeout on the way (a proxy's, Node's `server.timeout`). `false`
   * disables heartbeats.
   * @defaultValue 15_000
   */
  heartbeat?: number | false | undefined;
  /**
   * End each stream after this many ms, scaled by a random 80-100 % per connection, so rolling
   * deploys and token expiry do not make every client reconnect at once. The client reconnects
   * with `Last-Event-ID`.
   */
  maxLifetime?: number | undefined;
  /**
   * The group the route's streams join, for graceful shutdown and gauges.
   * @defaultValue `openStreams`, the whole process
   */
  group?: StreamGroup | undefined;
  /** Counters to update as streams open, write, drop and close. */
  metrics?: StreamMetrics | undefined;
  /** Reconnection time (ms, an integer) sent to the client before the first event. */
  retry?: number | undefined;
  /**
   * Headers to add, replace (a string) or remove (`null`). Checked when the route is set up: a
   * name that is not a token, or a value with CR, LF, NUL or a character past U+00FF, throws a
   * `TypeError` there, not at every request; so does a `Content-Type` other than
   * `text/event-stream` (in lowercase, with no parameter but `charset=utf-8`), or a
   * `Content-Length`, `Content-Encoding` or
   * `Transfer-Encoding` (but `chunked`), which would corrupt the stream.
   */
  headers?: HeaderOverrides | undefined;
  /**
   * The last event to send when the source errors, before the response ends. Its type must not be
   * `error` (browsers would route it to `onerror`): the encoder refuses it, as in any message, unless
   * `allowReservedTypes` is set. Return `undefined` to send nothing.
   * @example
   * ```ts
   * errorEvent: (err) => ({ type: 'stream-error', data: { message: 'try again later' } })
   * ```
   */
  errorEvent?: ((error: unknown) => MessageEvent | undefined) | undefined;
  /** Called once when the stream ends, with its reason (and the error, for `'error'`). */
  onClose?: ((reason: CloseReason, stats: StreamStats, error?: unknown) => void) | undefined;
  /**
   * Told every error of the stream: the source's, a skipped message's, and any throw of the other
   * callbacks and `metrics` hooks (an async one's rejection too). Without it, each goes to the
   * framework's own log (Fastify's `request.log`, Koa's `app.on('error')`, Nest's `Logger`, else
   * `console.error` with the method and path): nothing fails silently.
   */
  onError?: ((error: unknown) => void) | undefined;
}

/** Options with every default filled in, shared by every connection of a route. */
export type ResolvedStreamOptions = StreamOptions & {
  [K in
    | 'maxQueueBytes'
    | 'onOverflow'
    | 'onInvalidMessage'
    | 'stallTimeout'
    | 'heartbeat'
    | 'group']-?: Exclude<StreamOptions[K], undefined>;
} & {
  /** Type-only: only {@link resolveStreamOptions} makes one. */
  readonly [resolvedBrand]: true;
};

declare const resolvedBrand: unique symbol;

/**
 * Marks the objects {@link resolveStreamOptions} made: a non-enumerable symbol, which neither
 * options parsed from a config nor a spread copy of resolved ones (changed, say) can carry to skip
 * every check. Registered, so that another copy of rxsse in the process (an ESM and a CJS build)
 * knows them too, and resolves them no second time per request.
 */
const RESOLVED = Symbol.for('rxsse.resolvedStreamOptions');

/**
 * Fills in defaults once, so every connection of a route shares one options object, and with it
 * the cache that encodes a message shared by many connections only once.
 * @throws {TypeError} naming the option, when one has the wrong type (a `group` that is not a
 *   `StreamGroup`, `metrics` without its hooks, a callback that is not a function, ...), or a name
 *   no stream option has (`maxQueueByte`), with the one it is likely a slip of.
 * @throws {RangeError} naming the option, when a number is out of range, or one of the number
 *   options (`heartbeat`, `maxQueueBytes`, ...) is no number (`'15000'`).
 */
export function resolveStreamOptions(options: StreamOptions = {}): ResolvedStreamOptions {
  // First: transports resolve a route's options again per request, and find them resolved.
  if ((options as { [RESOLVED]?: true } | null)?.[RESOLVED] === true) return options as ResolvedStreamOptions;
  checkOptionsObject(options);
  checkOptionNames('stream', options, STREAM_OPTION_NAMES);
  const resolved = {
    ...options,
    maxQueueBytes: options.maxQueueBytes ?? 1024 * 1024,
    onOverflow: options.onOverflow ?? 'close',
    onInvalidMessage: options.onInvalidMessage ?? 'skip',
    stallTimeout: options.stallTimeout ?? 30_000,
    heartbeat: options.heartbeat ?? 15_000,
    group: options.group ?? openStreams,
  } as ResolvedStreamOptions;
  if (!(resolved.maxQueueBytes > 0) || !Number.isFinite(resolved.maxQueueBytes)) {
    throw new RangeError('maxQueueBytes must be a positive number');
  }
  if (resolved.stallTimeout !== false) checkDuration('stallTimeout', resolved.stallTimeout);
  if (resolved.heartbeat !== false) checkDuration('heartbeat', resolved.heartbeat);
  if (resolved.maxLifetime !== undefined) checkDuration('maxLifetime', resolved.maxLifetime);
  if (resolved.retry !== undefined) checkIntegerDuration('retry', resolved.retry);
  if (resolved.headers !== undefined) {
    checkHeaders(resolved.headers);
    // A copy, as of the other options: a change the caller makes later would skip the check.
    resolved.headers = { ...resolved.headers };
  }
  checkObjects(resolved);
  checkFormatOptions(resolved);
  checkOverflowPolicy(resolved.onOverflow);
  if (!['skip', 'close'].includes(resolved.onInvalidMessage)) {
    throw new TypeError(
      `onInvalidMessage must be 'skip' or 'close', got ${describeValue(resolved.onInvalidMessage)}`,
    );
  }
  if (resolved.bareValues !== undefined && !['refuse', 'data'].includes(resolved.bareValues)) {
    throw new TypeError(`bareValues must be 'refuse' or 'data', got ${describeValue(resolved.bareValues)}`);
  }
  Object.defineProperty(resolved, RESOLVED, { value: true });
  return resolved;
}

/**
 * A route's (or a call's) options over an app's: one set to `undefined` keeps the app's, as one
 * left out does. A spread would reset it to the library's default, and a `group` reset to the
 * process's would leave the app's close waiting on the stream for good.
 */
export function overStreamOptions(defaults: StreamOptions, options: StreamOptions): StreamOptions {
  const merged: Record<string, unknown> = { ...defaults };
  for (const [name, value] of Object.entries(options)) if (value !== undefined) merged[name] = value;
  return merged as StreamOptions;
}

/**
 * Every name of {@link StreamOptions} (the compiler keeps the list whole), for an adapter whose own
 * options carry the stream's beside its own to check with `checkOptionNames`.
 */
export const STREAM_OPTION_NAMES: readonly string[] = [
  ...FORMAT_OPTION_NAMES,
  ...Object.keys({
    maxQueueBytes: true,
    onOverflow: true,
    onInvalidMessage: true,
    bareValues: true,
    stallTimeout: true,
    heartbeat: true,
    maxLifetime: true,
    group: true,
    metrics: true,
    retry: true,
    headers: true,
    errorEvent: true,
    onClose: true,
    onError: true,
  } satisfies Record<Exclude<keyof StreamOptions, keyof FormatOptions>, true>),
];

/** The {@link StreamMetrics} hooks; `refused` and `failed` may be left out. */
const METRICS_HOOKS = ['opened', 'wrote', 'heartbeat', 'dropped', 'closed', 'refused', 'failed'] as const;
const OPTIONAL_HOOKS: readonly string[] = ['refused', 'failed'];

/**
 * Checks the options a stream only calls or reads later, so a wrong one fails here, naming it,
 * instead of every request failing with a TypeError that names none.
 * @throws {TypeError} naming the option.
 */
function checkObjects(options: ResolvedStreamOptions): void {
  for (const name of ['errorEvent', 'onClose', 'onError'] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== 'function') {
      throw new TypeError(`${name} must be a function, got ${kindOf(value)}`);
    }
  }
  checkStreamGroup(options.group);
  const { metrics } = options;
  if (metrics === undefined) return;
  if (typeof metrics !== 'object' || metrics === null) {
    throw new TypeError(
      `metrics must be an object with the StreamMetrics hooks, got ${describeValue(metrics)}`,
    );
  }
  for (const hook of METRICS_HOOKS) {
    const value = metrics[hook];
    if ((value !== undefined || !OPTIONAL_HOOKS.includes(hook)) && typeof value !== 'function') {
      throw new TypeError(`metrics.${hook} must be a function, got ${kindOf(value)}`);
    }
  }
}

function checkHeaders(headers: HeaderOverrides): void {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new TypeError(`headers must be an object of names to values, got ${describeValue(headers)}`);
  }
  checkHeaderOverrides(headers);
}
