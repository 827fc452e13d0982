import type { Observable } from 'rxjs';
import { cachedFormatter, encodeText } from './encoder-cache.js';
import { SseRangeError } from './errors.js';
import { formatRetry } from './format.js';
import { type HeaderOverrides, removedHeaders, sseHeaders } from './headers.js';
import { type HeartbeatTarget, joinHeartbeat, leaveHeartbeat } from './heartbeat.js';
import type { StreamMetrics } from './metrics.js';
import {
  type CloseReason,
  type ResolvedStreamOptions,
  resolveStreamOptions,
  type StreamOptions,
  type StreamStats,
} from './options.js';
import type { Sink } from './sink.js';
import { checkEventSource, type EventSourceLike, isSubscribable } from './source.js';
import type { MessageEvent } from './types.js';
import { utf8Length } from './utf8-length.js';

export type { EventSourceLike } from './source.js';

/** The subscriber a stream hands its Observable source. */
interface StreamSubscriber {
  readonly closed: boolean;
  add(teardown: unknown): void;
  unsubscribe(): void;
}

/** Where a stream's errors go when no `onError` takes them: the framework's own log. */
export type ErrorReporter = (error: unknown) => void;

const consoleReporter: ErrorReporter = (error) => console.error('rxsse: unhandled event-stream error', error);

/**
 * A source may carry response headers of its own under this key (a channel says
 * `SSE-History-Truncated` this way); they are applied over the route's `headers` option.
 */
export const SOURCE_HEADERS: unique symbol = Symbol.for('rxsse.sourceHeaders');

/** A source with headers of its own, see {@link SOURCE_HEADERS}. */
export interface WithSourceHeaders {
  [SOURCE_HEADERS]?: HeaderOverrides;
}

const utf8 = new TextEncoder();
const HEARTBEAT = utf8.encode(':\n');
/**
 * A tick that emits more than this (in UTF-16 units, about bytes) writes it out as it goes, in
 * chunks of about this size, instead of all at the end of the tick: the client reads the first
 * chunk while the source produces the rest (a 100,000-event burst arrives ~1.3x sooner), and no
 * single write joins megabytes of text.
 */
const CHUNK_UNITS = 64 * 1024;
/** UTF-8 bytes per UTF-16 unit, at most: a queue of n units holds at most 3n bytes. */
const MAX_BYTES_PER_UNIT = 3;

/**
 * Runs one event-stream connection: takes messages from a source, encodes each once, queues them
 * within a byte cap while the client is slow, writes them in one chunk per tick (per 64 KiB for a
 * tick that emits more), keeps the connection alive with idle-only heartbeats, and ends with
 * exactly one {@link CloseReason}. Create it with {@link streamEvents}.
 */
export class EventStream implements HeartbeatTarget {
  /** @internal Set on every write; the heartbeat wheel clears it. */
  busy = false;
  /** Counters, final once the stream closed. */
  readonly stats: StreamStats = {
    events: 0,
    bytes: 0,
    heartbeats: 0,
    dropped: 0,
    peakQueuedBytes: 0,
    refused: 0,
  };

  #reason: CloseReason | undefined;
  /** Formatted events waiting for the transport, encoded together at the next write. */
  #queue: string[] = [];
  #head = 0;
  /** UTF-16 length of the queue: its UTF-8 size is between this and 3 times this. */
  #queuedUnits = 0;
  /**
   * UTF-8 sizes of `#queue[0 .. sizes.length)`, and their sum from `#head` on. Sizes are measured
   * only once the queue could come near the cap: a byte count is a scan of every event, which a
   * queue far below the cap (nearly every queue) need not pay. Nor its array: created on first use.
   */
  #sizes: number[] | undefined;
  #measuredBytes = 0;
  #writable = true;
  #flushScheduled = false;
  #drainRegistered = false;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #lifetimeTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatSlot: Set<HeartbeatTarget> | undefined;
  #subscriber: StreamSubscriber | undefined;
  #iterator: AsyncIterator<MessageEvent<unknown>> | undefined;
  #wakePull: (() => void) | undefined;
  readonly #format: (message: MessageEvent<unknown>) => string;
  readonly #onAbort = () => this.#finish('client');

  /** @internal Use {@link streamEvents}. */
  constructor(
    private readonly sink: Sink,
    private readonly options: ResolvedStreamOptions,
    private readonly report: ErrorReporter = consoleReporter,
  ) {
    this.#format = cachedFormatter(options);
  }

  /** Why the stream ended, or `undefined` while it is open. */
  get closeReason(): CloseReason | undefined {
    return this.#reason;
  }

  /** Aborted once the connection is closed, whoever closed it. */
  get signal(): AbortSignal {
    return this.sink.signal;
  }

  /** Bytes waiting for a slow client, beyond what the transport buffers. */
  get queuedBytes(): number {
    return this.#measure();
  }

  /** @internal */
  start(source: EventSourceLike<MessageEvent<unknown>>): this {
    const { sink, options } = this;
    this.#count('opened');
    if (sink.onClose) {
      if (!sink.onClose(this.#onAbort)) {
        this.#finish('client');
        return this;
      }
    } else if (sink.signal.aborted) {
      this.#finish('client');
      return this;
    } else sink.signal.addEventListener('abort', this.#onAbort);
    options.group.add(this);
    const own = (source as WithSourceHeaders)[SOURCE_HEADERS];
    const overrides = own ? { ...options.headers, ...own } : options.headers;
    sink.open(sseHeaders(sink.http2, overrides), removedHeaders(overrides));
    if (options.retry !== undefined) this.#write(utf8.encode(formatRetry(options.retry)), 0);
    if (options.heartbeat !== false) this.#heartbeatSlot = joinHeartbeat(options.heartbeat, this);
    if (options.maxLifetime !== undefined) {
      // 80-100 % of the lifetime, so clients that connected together do not all reconnect together,
      // in steps of 1/1000 of it: Node keeps one timer list per distinct duration, and an unref'd
      // timer's list outlives clearTimeout() until the duration has passed.
      const step = Math.max(1, Math.ceil(options.maxLifetime / 1000));
      const lifetime = Math.max(
        1,
        Math.round((options.maxLifetime * (0.8 + 0.2 * Math.random())) / step) * step,
      );
      this.#lifetimeTimer = unrefTimer(setTimeout(() => this.#finish('lifetime'), lifetime));
    }
    if (isSubscribable(source)) this.#subscribe(source);
    else this.#iterate(source);
    return this;
  }

  /**
   * @internal Answers a request that arrived while its server shuts down: headers (with
   * `Connection: close` on HTTP/1), the retry hint, and the end, so an EventSource comes back
   * later, to another instance. Reported as opened and closed with `'shutdown'`.
   */
  turnAway(retryHint: number | undefined): this {
    const { sink, options } = this;
    this.#count('opened');
    const overrides = { ...options.headers, connection: 'close' };
    sink.open(sseHeaders(sink.http2, overrides), removedHeaders(overrides));
    this.#finish('shutdown', undefined, retryHint);
    return this;
  }

  /**
   * Ends the stream from the server side: writes what is queued (then `retry: retryHint`, if
   * given, so the client reconnects after that long), then ends the response.
   */
  close(reason: 'shutdown' | 'lifetime' = 'shutdown', retryHint?: number): void {
    this.#finish(reason, undefined, retryHint);
  }

  /** Drops the connection at once (a shutdown whose deadline passed). */
  destroy(): void {
    this.#finish('shutdown');
    this.sink.destroy();
  }

  /** @internal Called by the heartbeat wheel when nothing was written for a whole interval. */
  beat(): void {
    if (this.#reason !== undefined || !this.#writable || this.#queuedUnits > 0) return;
    this.stats.heartbeats++;
    this.#count('heartbeat');
    this.#write(HEARTBEAT, 0);
    // A heartbeat is not activity: the next idle interval deserves one too.
    this.busy = false;
  }

  /**
   * The stream's subscriber: one small object instead of three closures. It is an rxjs subscriber
   * by shape (`closed`, `add`, `remove`, `unsubscribe`), so rxjs hands it to the source as is: a
   * synchronous source sees `closed` turn true the moment the stream ends, and stops there instead
   * of producing everything before `subscribe()` returns.
   */
  static #Subscriber = class {
    closed = false;
    #teardowns: unknown[] | undefined;
    constructor(readonly stream: EventStream) {}
    next(message: MessageEvent<unknown>): void {
      this.stream.#push(message);
    }
    error(error: unknown): void {
      this.stream.#finish('error', error);
    }
    complete(): void {
      this.stream.#finish('complete');
    }
    add(teardown: unknown): void {
      if (!teardown || teardown === this) return;
      if (this.closed) this.#run(teardown);
      else {
        this.#teardowns ??= [];
        this.#teardowns.push(teardown);
      }
    }
    remove(teardown: unknown): void {
      const index = this.#teardowns?.indexOf(teardown) ?? -1;
      if (index >= 0) this.#teardowns!.splice(index, 1);
    }
    unsubscribe(): void {
      if (this.closed) return;
      this.closed = true;
      const teardowns = this.#teardowns;
      this.#teardowns = undefined;
      if (teardowns) for (const teardown of teardowns) this.#run(teardown);
    }
    #run(teardown: unknown): void {
      try {
        if (typeof teardown === 'function') teardown();
        else (teardown as { unsubscribe(): void }).unsubscribe();
      } catch (error) {
        this.stream.#reportError(error);
      }
    }
  };

  static #pending: EventStream[] = [];
  static #flushPending = (): void => {
    const pending = EventStream.#pending;
    EventStream.#pending = [];
    for (const stream of pending) stream.#flush();
  };

  #subscribe(source: Observable<MessageEvent<unknown>>): void {
    const subscriber = new EventStream.#Subscriber(this);
    this.#subscriber = subscriber;
    try {
      // rxjs returns the subscriber itself; another Observable may return its own subscription.
      const subscription: unknown = source.subscribe(subscriber);
      if (subscription !== subscriber) subscriber.add(subscription);
    } catch (error) {
      this.#finish('error', error);
    }
    // The source may have completed, errored or been closed synchronously inside subscribe().
    if (this.#reason !== undefined) subscriber.unsubscribe();
  }

  #iterate(source: AsyncIterable<MessageEvent<unknown>>): void {
    let iterator: AsyncIterator<MessageEvent<unknown>>;
    try {
      iterator = source[Symbol.asyncIterator]();
    } catch (error) {
      this.#finish('error', error);
      return;
    }
    this.#pull(iterator);
  }

  async #pull(iterator: AsyncIterator<MessageEvent<unknown>>): Promise<void> {
    this.#iterator = iterator;
    try {
      while (this.#reason === undefined) {
        if (!this.#writable) {
          await new Promise<void>((resolve) => {
            this.#wakePull = resolve;
          });
          continue;
        }
        const result = await iterator.next();
        if (this.#reason !== undefined) return;
        if (result.done) {
          this.#finish('complete');
          return;
        }
        const text = this.#tryFormat(result.value);
        if (text !== undefined) this.#write(encodeText(text), 1);
      }
    } catch (error) {
      this.#finish('error', error);
    }
  }

  /** The message's text, or `undefined` when it cannot be sent (then refused, see `onInvalidMessage`). */
  #tryFormat(message: MessageEvent<unknown>): string | undefined {
    try {
      return this.#format(message);
    } catch (error) {
      this.#refuse(error);
      return undefined;
    }
  }

  #refuse(error: unknown): void {
    this.stats.refused++;
    this.#count('refused');
    if (this.options.onInvalidMessage === 'close') this.#finish('error', error);
    else this.#reportError(error);
  }

  #push(message: MessageEvent<unknown>): void {
    if (this.#reason !== undefined) return;
    const text = this.#tryFormat(message);
    if (text === undefined) return;
    const cap = this.options.maxQueueBytes;
    if ((this.#queuedUnits + text.length) * MAX_BYTES_PER_UNIT > cap) {
      // The queue could pass the cap: from here on, count exact bytes.
      const size = utf8Length(text);
      if (size > cap) {
        // No client of this route could ever receive it: closing would only make it reconnect
        // and meet the same message again.
        this.#refuse(
          new SseRangeError('data', `an event of ${size} bytes is larger than maxQueueBytes (${cap})`),
        );
        return;
      }
      if (this.#measure() + size > cap) {
        if (this.options.onOverflow === 'close') {
          this.#finish('overflow');
          return;
        }
        if (this.options.onOverflow === 'drop-newest') {
          this.#dropped(1);
          return;
        }
        this.#dropOldest(cap - size);
      }
      this.#sizes!.push(size);
      this.#measuredBytes += size;
      this.#notePeak(this.#measuredBytes);
    }
    this.#queue.push(text);
    this.#queuedUnits += text.length;
    if (!this.#writable) return;
    if (this.#queuedUnits >= CHUNK_UNITS) this.#writeQueue();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // One write per tick: everything emitted in this tick goes out together, nothing waits longer.
      // One microtask flushes every stream that has something: a Subject shared by 5,000 streams
      // costs one microtask per emission, not 5,000 closures and microtasks.
      if (EventStream.#pending.push(this) === 1) queueMicrotask(EventStream.#flushPending);
    }
  }

  /** Exact UTF-8 size of the queue, measuring the events not measured yet. */
  #measure(): number {
    const queue = this.#queue;
    this.#sizes ??= [];
    const sizes = this.#sizes;
    for (let i = sizes.length; i < queue.length; i++) {
      const size = utf8Length(queue[i]!);
      sizes.push(size);
      this.#measuredBytes += size;
    }
    return this.#measuredBytes;
  }

  #notePeak(bytes: number): void {
    if (bytes > this.stats.peakQueuedBytes) this.stats.peakQueuedBytes = bytes;
  }

  /** Drops the oldest queued events until at most `keep` bytes remain (all measured). */
  #dropOldest(keep: number): void {
    const sizes = this.#sizes!;
    const queue = this.#queue;
    const from = this.#head;
    while (this.#measuredBytes > keep) {
      this.#measuredBytes -= sizes[this.#head]!;
      this.#queuedUnits -= queue[this.#head]!.length;
      queue[this.#head++] = ''; // let the dropped text go now, not at the next compaction
    }
    this.#dropped(this.#head - from);
    // Compact now and then: a client stalled for hours must not grow the arrays without end.
    if (this.#head > 1024 && this.#head * 2 > sizes.length) {
      this.#queue = queue.slice(this.#head);
      this.#sizes = sizes.slice(this.#head);
      this.#head = 0;
    }
  }

  #dropped(count: number): void {
    if (count === 0) return;
    this.stats.dropped += count;
    this.#count('dropped', count);
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#reason !== undefined || !this.#writable || this.#queuedUnits === 0) return;
    this.#writeQueue();
  }

  /** Writes the whole queue as one chunk, encoded once. */
  #writeQueue(): void {
    const queue = this.#queue;
    const count = queue.length - this.#head;
    const text =
      count === 1 ? queue[this.#head]! : (this.#head === 0 ? queue : queue.slice(this.#head)).join('');
    // Keep the queue (and its capacity) for the next tick: the usual case is one event per tick.
    queue.length = 0;
    this.#sizes = undefined;
    this.#head = 0;
    this.#queuedUnits = 0;
    this.#measuredBytes = 0;
    const chunk = encodeText(text);
    this.#notePeak(chunk.length);
    this.#write(chunk, count);
  }

  /** Hands a chunk of `events` events to the sink; arms the stall timer if the sink is full. */
  #write(chunk: Uint8Array, events: number): void {
    this.busy = true;
    this.stats.events += events;
    this.stats.bytes += chunk.length;
    this.#count('wrote', events, chunk.length);
    if (this.sink.write(chunk) || this.#reason !== undefined) return;
    this.#writable = false;
    // Most streams never fill their transport: the drain listener is registered the first time.
    if (!this.#drainRegistered) {
      this.#drainRegistered = true;
      this.sink.onDrain(() => this.#drained());
    }
    const { stallTimeout } = this.options;
    if (stallTimeout !== false && this.#stallTimer === undefined) {
      this.#stallTimer = unrefTimer(setTimeout(() => this.#finish('stall'), stallTimeout));
    }
  }

  #drained(): void {
    if (this.#reason !== undefined) return;
    this.#writable = true;
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    this.#wakePull?.();
    this.#wakePull = undefined;
    this.#flush();
  }

  /** The one place a stream ends: every reason runs the same teardown. */
  #finish(reason: CloseReason, error?: unknown, retryHint?: number): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    const { sink, options } = this;
    if (!sink.onClose) sink.signal.removeEventListener('abort', this.#onAbort);
    options.group.delete(this);
    if (this.#heartbeatSlot) leaveHeartbeat(options.heartbeat as number, this, this.#heartbeatSlot);
    clearTimeout(this.#stallTimer);
    clearTimeout(this.#lifetimeTimer);
    this.#subscriber?.unsubscribe();
    if (this.#iterator) this.#closeIterator(this.#iterator);
    this.#wakePull?.();
    this.#heartbeatSlot = this.#subscriber = this.#iterator = this.#wakePull = undefined;
    this.#stallTimer = this.#lifetimeTimer = undefined;

    if (reason === 'error') this.#reportError(error);
    if (reason === 'client' || reason === 'overflow' || reason === 'stall') {
      this.#dropped(this.#queue.length - this.#head);
      this.#notePeak(this.#measure());
      this.#queue = [];
      this.#sizes = undefined;
      this.#queuedUnits = 0;
      this.#measuredBytes = 0;
      sink.destroy();
    } else {
      // Queued events are bounded by the cap: hand them over, and let the transport flush them.
      if (this.#queuedUnits > 0) this.#writeQueue();
      if (reason === 'error') this.#writeErrorEvent(error);
      if (retryHint !== undefined) this.#write(utf8.encode(formatRetry(retryHint)), 0);
      sink.end();
    }
    this.#count('closed', reason, this.stats);
    try {
      options.onClose?.(reason, this.stats, error);
    } catch (thrown) {
      this.#reportError(thrown);
    }
  }

  /**
   * Ends an AsyncIterable source. Its `return()` is the user's code: it may throw, reject, return
   * anything or never settle; none of that may delay or skip the close.
   */
  #closeIterator(iterator: AsyncIterator<MessageEvent<unknown>>): void {
    try {
      const result: unknown = iterator.return?.();
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
        (result as PromiseLike<unknown>).then(undefined, (error: unknown) => this.#reportError(error));
      }
    } catch (error) {
      this.#reportError(error);
    }
  }

  #writeErrorEvent(error: unknown): void {
    try {
      const message = this.options.errorEvent?.(error);
      if (message) this.#write(encodeText(this.#format(message)), 1);
    } catch (thrown) {
      // A malformed error event must not turn a clean end into a corrupt stream.
      this.#reportError(thrown);
    }
  }

  /** Calls a metrics hook; one that throws is reported, never fatal. */
  #count<K extends keyof StreamMetrics>(hook: K, ...args: Parameters<NonNullable<StreamMetrics[K]>>): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    try {
      (metrics[hook] as ((...a: unknown[]) => void) | undefined)?.apply(metrics, args);
    } catch (error) {
      this.#reportError(error);
    }
  }

  /** Hands an error to `onError`, else to the framework's log; neither may throw out of the stream. */
  #reportError(error: unknown): void {
    const { onError } = this.options;
    if (onError) {
      try {
        onError(error);
        return;
      } catch (thrown) {
        this.#unhandled(thrown);
      }
    }
    this.#unhandled(error);
  }

  #unhandled(error: unknown): void {
    try {
      this.report(error);
    } catch {
      // The last resort failed too: there is nowhere left to tell.
    }
  }
}

/**
 * Starts streaming `source` to `sink`. Headers go out at once; the returned stream reports its
 * close reason through `options.onClose` and {@link EventStream.closeReason}. Errors no `onError`
 * takes go to `report` (a transport passes its framework's log; `console.error` by default).
 *
 * @throws {TypeError} before anything is written, when `source` is neither an Observable nor an
 *   AsyncIterable.
 * @example
 * ```ts
 * const stream = streamEvents(interval(1000).pipe(map((n) => ({ data: { n } }))), sink);
 * ```
 */
export function streamEvents<M extends MessageEvent<unknown>>(
  source: EventSourceLike<M>,
  sink: Sink,
  options?: StreamOptions,
  report?: ErrorReporter,
): EventStream {
  const checked = checkEventSource(source);
  return new EventStream(sink, resolveStreamOptions(options), report).start(checked);
}

/**
 * Answers a request that arrives while `options.group` (or the server) shuts down, instead of
 * running its handler: status 200, `Connection: close` on HTTP/1, a `retry:` hint (the shutdown's,
 * else the route's) and the end. An EventSource then reconnects later, to another instance,
 * where an error status would make it give up for good.
 */
export function turnAwayEventStream(
  sink: Sink,
  options?: StreamOptions,
  report?: ErrorReporter,
): EventStream {
  const resolved = resolveStreamOptions(options);
  return new EventStream(sink, resolved, report).turnAway(resolved.group.reconnectHint() ?? resolved.retry);
}

function unrefTimer<T>(timer: T): T {
  // Stream timers must never keep the process alive on their own.
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
