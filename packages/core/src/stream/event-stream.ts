import type { Observable } from 'rxjs';
import { cachedFormatter, encodeText, type FormatReader, sharedBytes } from '../encode/encoder-cache.js';
import { SseRangeError } from '../encode/errors.js';
import { formatOwnEvent, formatRetry, hearRefusedPromises } from '../encode/format.js';
import type { MessageEvent } from '../encode/types.js';
import { utf8Length } from '../encode/utf8.js';
import { checkSourceHeaders, type HeaderOverrides, removedHeaders, sseHeaders } from '../http/headers.js';
import type { Sink } from '../http/sink.js';
import {
  checkEventSource,
  describeValue,
  type EventSourceLike,
  isObject,
  isSubscribable,
} from '../http/source.js';
import { type GapEventFactory, SOURCE_GAP_EVENT, type WithSourceGapEvent } from '../http/source-gap.js';
import { SOURCE_OPENS_FIRST, type WithSourceOpensFirst } from '../http/source-open.js';
import { flushThisTick } from './flush-tick.js';
import { GapNotice, smallGapEvent } from './gap-notice.js';
import type { GroupMember, StreamGroup } from './group.js';
import { type HeartbeatTarget, joinHeartbeat, leaveHeartbeat } from './heartbeat.js';
import { streamLifetime } from './lifetime.js';
import type { StreamMetrics } from './metrics.js';
import { type ResolvedStreamOptions, resolveStreamOptions, type StreamOptions } from './options.js';
import { dropsQueuedEvents, overflowPolicies } from './overflow.js';
import { CHUNK_UNITS, EventQueue } from './queue.js';
import { consoleReporter, type ErrorReporter, reportTo } from './report.js';
import {
  type FeedTarget,
  heard,
  IteratorFeed,
  madeIterator,
  ObservableFeed,
  releaseHeld,
  type SourceFeed,
} from './source-feed.js';
import type { CloseReason, StreamStats } from './stats.js';
import { unrefTimer, watchProgress } from './timers.js';

/** An AsyncIterable's iterator, made as its stream starts. */
type MessageIterator = AsyncIterator<MessageEvent<unknown>>;

const HEARTBEAT = ':\n';

/**
 * The stream taking a message while user code it calls may end it (a `serialize`, a `wrote` or
 * `dropped` hook that closes its group): the end counts that message dropped. Process-wide, as a
 * field would cost every connection; saved and restored around each message, since such code may
 * push to another stream meanwhile.
 */
let taking: EventStream | undefined;
/**
 * The stream ending (its teardown, then what is queued, a gap event, an error event, the retry hint
 * and `end()`): a `destroy()` of it meanwhile (by a `wrote` hook, its `onError`) clears this, and
 * nothing more goes to the sink it dropped. Process-wide and saved and restored around each end, as
 * {@link taking}.
 */
let ending: EventStream | undefined;
// Never a stream's notice: the constructor assigns it only so that `#gap` is a changing field.
const NO_GAP = new GapNotice(() => ({ data: '' }), {
  ended: () => true,
  format: () => '',
  refuse: () => {},
});

/**
 * Runs one event-stream connection: takes messages from a source, encodes each once, queues them
 * within a byte cap while the client is slow, writes them in one chunk per tick (per 64 KiB for a
 * tick that emits more), keeps the connection alive with idle-only heartbeats, and ends with
 * exactly one {@link CloseReason}. Create it with {@link streamEvents}.
 *
 * The stream itself holds the lifecycle: writing, the stall and lifetime timers, and the one
 * teardown. Its parts each have a module: the queue and its overflow policies (`queue.ts`,
 * `overflow.ts`), the gap event of a source that carries one (`gap-notice.ts`: where it goes, its
 * text, and room for it under the cap; the stream counts what is dropped and writes), feeding from
 * the source (`source-feed.ts`), the end-of-tick flush (`flush-tick.ts`) and the heartbeat wheel
 * (`heartbeat.ts`).
 */
export class EventStream implements HeartbeatTarget, GroupMember, FeedTarget, FormatReader {
  /** @internal Set on every write; the heartbeat wheel clears it. */
  busy = false;
  /** @internal The format cache's entry this stream took last. */
  formatted = 0;
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
  /** Created at the first event: an idle connection costs no queue. */
  #queue: EventQueue | undefined;
  #writable = true;
  #flushScheduled = false;
  /**
   * Made the first time the transport is full, when the drain listener is registered: most streams
   * never fill theirs, and an idle connection then spends one field on this, not two.
   */
  #backpressure: { stallTimer: ReturnType<typeof setTimeout> | undefined } | undefined;
  #lifetimeTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatSlot: Set<HeartbeatTarget> | undefined;
  #feed: SourceFeed | undefined;
  /** For a source with a gap event (a channel's truncation event): where it goes when events are dropped. */
  #gap: GapNotice | undefined;
  /**
   * An Observable's stream until it opens: the headers it opens with, or how its source failed
   * before its first message (the stream is then refused, and never opens).
   */
  #unopened: HeaderOverrides | SourceFailure | undefined;
  readonly #format: (message: MessageEvent<unknown>, reader: FormatReader) => string;
  readonly #onAbort = () => {
    this.#finish('client');
    // The client left while the stream ended (a runtime, or a hook, cancelled a Web body as the end
    // wrote to it): what the end had left is dropped, not counted as sent.
    this.#dropEnding();
  };

  /** @internal Use {@link streamEvents}. */
  constructor(
    private readonly sink: Sink,
    private readonly options: ResolvedStreamOptions,
    private readonly report: ErrorReporter = consoleReporter,
    /** The streams of the server that serves this one, when the transport knows it. */
    private readonly server?: StreamGroup,
  ) {
    this.#format = cachedFormatter(options);
    // V8 compiles reads of a field that no object ever reassigned as reads of a constant: the
    // first stream to end would discard the compiled push path of every stream (on Node 20, a
    // fresh process's next 100,000-event burst took ~7 % more CPU, and V8 compiled it all again).
    // Reassigned here, `#reason` is a changing field from the first stream on.
    this.#reason = 'complete';
    this.#reason = undefined;
    // So is `#gap`, which only a channel's stream sets.
    this.#gap = NO_GAP;
    this.#gap = undefined;
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
    return this.#queue?.bytes() ?? 0;
  }

  /** @internal True while the transport has room. */
  get writable(): boolean {
    return this.#writable;
  }

  /** Whether the stream's group, or its server's, is shutting down. */
  get #shuttingDown(): boolean {
    return this.options.group.closing || this.server?.closing === true;
  }

  /**
   * @internal
   * @throws what an Observable fails with before its first message: the stream is refused.
   */
  start(source: EventSourceLike<MessageEvent<unknown>>): this {
    // An AsyncIterable's iterator is made before the stream opens: one that cannot be made is
    // refused as an Observable that fails at once is, for the framework's own error status.
    // Passed along, not kept in a field: one more field took a connection ~45 B more heap.
    const subscribable = isSubscribable(source);
    let made: MessageIterator | undefined;
    let subscribedFirst: boolean;
    let overrides: HeaderOverrides | undefined;
    let gapEvent: GapEventFactory | undefined;
    try {
      // The source's own symbols, read once and before anything is counted or made: a getter of
      // them that throws (a Proxy's) refuses the source too.
      subscribedFirst = subscribable && !opensFirst(source);
      overrides = this.#overrides(source);
      gapEvent = (source as WithSourceGapEvent)[SOURCE_GAP_EVENT];
      if (!subscribable) {
        made = source[Symbol.asyncIterator]();
        // As `for await` refuses it: a stream with nothing to pull would stay open, fed by nothing.
        if (!isObject(made)) {
          throw new TypeError(
            `An AsyncIterable's [Symbol.asyncIterator]() gave ${describeValue(made)}, not an iterator`,
          );
        }
      }
    } catch (error) {
      this.#reason = 'error';
      throw error;
    }
    try {
      if (subscribedFirst && !this.#shuttingDown)
        this.#subscribeFirst(source as Observable<MessageEvent<unknown>>, overrides, gapEvent);
      else this.#start(source, made, overrides, gapEvent);
    } catch (error) {
      // Only the sink throws here (a transport of the user's): the stream ends as on a later write.
      // It may have ended it before it threw (a close listener it called): the source is released
      // after the end either way.
      this.#sinkFailed(error);
      return this.#feed === undefined ? this.#unfed(source, made) : this;
    }
    const unopened = this.#unopened;
    if (unopened instanceof SourceFailure) throw unopened.error;
    return this;
  }

  /**
   * Subscribes an Observable before the stream opens: one that fails at once, before its first
   * message (`throwError`, a `defer` that throws), is refused as a handler's throw is, for the
   * framework to answer with its own error status. The stream opens at the source's first message,
   * or once `subscribe()` returns, whichever comes first; until then the source has sent nothing,
   * so nothing waits to be written.
   */
  #subscribeFirst(
    source: Observable<MessageEvent<unknown>>,
    overrides: HeaderOverrides | undefined,
    gapEvent: GapEventFactory | undefined,
  ): void {
    const { sink } = this;
    this.#unopened = overrides ?? NO_OVERRIDES;
    if (!this.#listenForClose()) {
      this.#gone(source);
      return;
    }
    // A sink's onClose() may call its listener at once: the source is never subscribed then.
    if (this.#reason !== undefined) return;
    // A pending member while subscribed, as a handler setting up is: a shutdown that begins meanwhile
    // waits for it, and it is turned away as it opens, where one that found no stream would be over.
    const { options, server } = this;
    options.group.add(this, true);
    server?.add(this, true);
    this.#noteGapEvent(gapEvent);
    // The stream holds its feed before subscribing: a source may end it synchronously.
    const feed = new ObservableFeed(this);
    this.#feed = feed;
    feed.start(source, true);
    // The feed opened the stream, unless the source failed first.
    if (this.#unopened instanceof SourceFailure) {
      // No close listener is left to end what never began (one a sink keeps finds it ended).
      if (!sink.onClose) sink.signal.removeEventListener('abort', this.#onAbort);
      options.group.delete(this);
      server?.delete(this);
      this.#feed = undefined;
    }
  }

  /**
   * @internal The stream opens: before an Observable's first message, once its `subscribe()`
   * returned, or as it completes with nothing sent. Counted as opened, it joins its groups, writes
   * the headers and is armed, as a stream of any other source is before it is fed. `message`: the
   * source's first, which opens it, in hand meanwhile: an end as it opens (its client gone while the
   * `opened` hook runs, a shutdown that hook began) counts it dropped.
   */
  open(message?: MessageEvent<unknown>): void {
    if (message === undefined) this.#open();
    else this.#taking(this.#open, message);
  }

  #open(): void {
    const overrides = this.#unopened;
    if (overrides === undefined || overrides === OPENING || overrides instanceof SourceFailure) return;
    // Counted while still unopened: a shutdown its hook begins (a group's close) waits, and turns it
    // away below, after its headers.
    this.#unopened = OPENING;
    const { options } = this;
    this.#count('opened');
    // Its client may have left meanwhile.
    if (this.#reason !== undefined) return;
    this.#unopened = undefined;
    if (this.#shuttingDown) {
      // A shutdown began while the source was subscribed: it goes unheard (a message that opened it
      // is in hand, and the end counts it dropped).
      this.#turnAway(shutdownHint(options, this.server));
      return;
    }
    // A pending member until now (see #subscribeFirst).
    options.group.delete(this);
    this.server?.delete(this);
    options.group.add(this);
    this.server?.add(this);
    this.#openSink(overrides);
  }

  /** Writes the headers, then arms the stream; a sink that throws ends it as on a later write. */
  #openSink(overrides: HeaderOverrides | undefined): void {
    const { sink } = this;
    try {
      if (sink.open(sseHeaders(sink.http2, overrides), removedHeaders(overrides, sink.http2)) === false)
        this.#full();
      // open() may have ended the stream (the client left as the headers went out, a group's close):
      // nothing is armed or written after the end.
      if (this.#reason === undefined) this.#arm();
    } catch (error) {
      this.#sinkFailed(error);
    }
  }

  /** Listens for the client's leaving: false if it is gone already. */
  #listenForClose(): boolean {
    const { sink } = this;
    if (sink.onClose) return sink.onClose(this.#onAbort);
    if (sink.signal.aborted) return false;
    sink.signal.addEventListener('abort', this.#onAbort);
    return true;
  }

  /** The route's header overrides, and the source's own over them. */
  #overrides(source: EventSourceLike<MessageEvent<unknown>>): HeaderOverrides | undefined {
    const own = checkSourceHeaders(source);
    return own ? { ...this.options.headers, ...own } : this.options.headers;
  }

  /** Keeps `gapEvent`, the source's `SOURCE_GAP_EVENT`, if it is one. */
  #noteGapEvent(gapEvent: GapEventFactory | undefined): void {
    if (typeof gapEvent !== 'function') return;
    this.#gap = new GapNotice(gapEvent, {
      ended: () => this.#reason !== undefined,
      format: (message, name) => this.#gapText(message, name),
      // A gap event is the stream's own: refusing it leaves the message in hand to the end it brings.
      refuse: (error) => this.#refuse(error, false),
    });
  }

  /**
   * An AsyncIterable's stream, one turned away, or one of a source that opens first (see
   * `SOURCE_OPENS_FIRST`): opened before it is fed.
   */
  #start(
    source: EventSourceLike<MessageEvent<unknown>>,
    made: MessageIterator | undefined,
    overrides: HeaderOverrides | undefined,
    gapEvent: GapEventFactory | undefined,
  ): this {
    const { options, server } = this;
    if (options.metrics) {
      // A pending member while its `opened` hook runs, as an Observable's stream is: a shutdown the
      // hook begins (a group's close) waits for it, and turns it away below, after its headers.
      this.#unopened = OPENING;
      options.group.add(this, true);
      server?.add(this, true);
      this.#count('opened');
      options.group.delete(this);
      server?.delete(this);
      this.#unopened = undefined;
    }
    if (!this.#listenForClose()) return this.#gone(source, made);
    // A sink's onClose() may call its listener at once: the stream then joins no group.
    if (this.#reason !== undefined) return this.#unfed(source, made);
    if (this.#shuttingDown) {
      // The handler resolved while the group (or the server) shuts down: the close already ended
      // the streams it knew of, so one begun now would escape it and hold the server open.
      this.#adopt(source, made);
      return this.#turnAway(shutdownHint(options, this.server));
    }
    options.group.add(this);
    this.server?.add(this);
    this.#noteGapEvent(gapEvent);
    this.#openSink(overrides);
    if (this.#reason !== undefined) return this.#unfed(source, made);
    // The stream holds its feed before subscribing: a source may end it synchronously.
    if (isSubscribable(source)) {
      const feed = new ObservableFeed(this);
      this.#feed = feed;
      feed.start(source);
    } else if (made) {
      const feed = new IteratorFeed(this);
      this.#feed = feed;
      feed.start(made);
    }
    return this;
  }

  /** Joins the heartbeat wheel, arms the lifetime and writes the retry hint, once the stream is open. */
  #arm(): void {
    const { options } = this;
    if (options.heartbeat !== false) this.#heartbeatSlot = joinHeartbeat(options.heartbeat, this);
    if (options.maxLifetime !== undefined) {
      const lifetime = streamLifetime(options.maxLifetime, Math.random());
      // The stream as the timer's argument: a closure over it would cost every such stream ~100 B.
      this.#lifetimeTimer = unrefTimer(setTimeout(EventStream.#endLifetime, lifetime, this));
    }
    // After the timers, which the teardown clears: its `wrote` hook may end the stream.
    if (options.retry !== undefined) this.#write(formatRetry(options.retry), 0);
  }

  static #endLifetime(stream: EventStream): void {
    stream.#finish('lifetime');
  }

  /** Ended while it started: the source is never fed, and an iterator the handler made is returned. */
  #unfed(source: EventSourceLike<MessageEvent<unknown>>, made?: MessageIterator): this {
    this.#adopt(source, made);
    this.#feed?.stop();
    this.#feed = undefined;
    return this;
  }

  /**
   * The client left before the stream began (while an async handler ran). An Observable holds
   * nothing until subscribed, but an iterator the handler already made (an async generator,
   * `events.on`) may hold what only its `return()` releases: the one teardown returns it.
   */
  #gone(source: EventSourceLike<MessageEvent<unknown>>, made?: MessageIterator): this {
    this.#adopt(source, made);
    this.#finish('client');
    return this;
  }

  /**
   * Holds a source that will not be fed, so that the teardown still returns its iterator. An
   * Observable holds nothing yet, unless it says otherwise (a channel's listener, see
   * `SOURCE_RELEASE`): that is let go of at once.
   */
  #adopt(source: unknown, made?: MessageIterator): void {
    const report = (error: unknown) => this.reportError(error);
    const iterator = made ?? madeIterator<MessageEvent<unknown>>(source, report);
    if (iterator === undefined) {
      // What an Observable holds before it is subscribed (a channel's listener) goes at once.
      releaseHeld(source, report);
      return;
    }
    const feed = new IteratorFeed(this);
    feed.adopt(iterator);
    this.#feed = feed;
  }

  /**
   * @internal Answers a request that arrived while its server shuts down: headers (with
   * `Connection: close` on HTTP/1), the retry hint, and the end, so an EventSource comes back
   * later, to another instance. Reported as opened and closed with `'shutdown'`. `source`, if the
   * handler made one already, is released unsubscribed.
   */
  turnAway(retryHint: number | undefined, source?: unknown): this {
    this.#count('opened');
    this.#adopt(source);
    return this.#turnAway(retryHint);
  }

  /**
   * @internal Answers a HEAD: the stream's headers alone (with those `source`, its handler's, carries
   * of its own), and the end. Reported as opened and closed with `'complete'`, a stream of no events,
   * so that it is counted as its GET would be; while its server shuts down (`turnedAway`), as its GET
   * is turned away: `Connection: close` on HTTP/1, closed with `'shutdown'`. Otherwise one whose
   * client is gone already is counted as its GET is then, closed with `'client'`.
   */
  answerHead(turnedAway: boolean, source?: unknown): this {
    const { sink, options } = this;
    // Never subscribed: what it holds goes (its transport ends an iterator it made).
    releaseHeld(source, (error) => this.reportError(error));
    this.#count('opened');
    // No retry hint: a HEAD's answer has no body to carry one. (A shutdown aborts a transport's
    // signal too: whether the client left as well cannot be told here.)
    if (turnedAway) return this.#turnAway(undefined);
    if (!this.#listenForClose()) {
      this.#finish('client');
      return this;
    }
    try {
      const headers = isObject(source) ? this.#overrides(source as EventSourceLike) : options.headers;
      sink.open(sseHeaders(sink.http2, headers), removedHeaders(headers, sink.http2));
    } catch (error) {
      this.#sinkFailed(error);
      return this;
    }
    this.#finish('complete');
    return this;
  }

  #turnAway(retryHint: number | undefined): this {
    const { sink, options } = this;
    const overrides = { ...options.headers, connection: 'close' };
    try {
      sink.open(sseHeaders(sink.http2, overrides), removedHeaders(overrides, sink.http2));
    } catch (error) {
      this.#sinkFailed(error);
      return this;
    }
    this.#finish('shutdown', undefined, retryHint);
    return this;
  }

  /**
   * Ends the stream from the server side: writes what is queued (then `retry: retryHint`, if
   * given, so the client reconnects after that long), then ends the response.
   * @throws {SseRangeError} unless `retryHint` is an integer in 0..2^31-1; the stream stays open.
   */
  close(reason: 'shutdown' | 'lifetime' = 'shutdown', retryHint?: number): void {
    // Checked before the teardown begins: a throw halfway through would leave the response open.
    if (retryHint !== undefined) formatRetry(retryHint);
    // A shutdown met while the source is subscribed: the stream is turned away as it opens, with
    // the shutdown's hint, as a request that arrives during one is.
    if (this.#unopened !== undefined) return;
    this.#finish(reason, undefined, retryHint);
  }

  /** Drops the connection at once (a shutdown whose deadline passed). */
  destroy(): void {
    this.#finish('shutdown');
    this.#dropEnding();
    this.#destroySink();
  }

  /**
   * Called while the stream ended (destroyed by a `wrote` hook or its `onError`, or its client
   * gone): what it had left is dropped with the connection, and nothing more is written.
   */
  #dropEnding(): void {
    if (ending !== this) return;
    ending = undefined;
    const queue = this.#queue;
    if (queue) {
      this.#notePeak(queue.bytes());
      this.#clearQueue(queue);
    }
  }

  /** @internal Called by the heartbeat wheel when nothing was written for a whole interval. */
  beat(): void {
    if (this.#reason !== undefined || !this.#writable || (this.#queue?.length ?? 0) > 0) return;
    // Counted before the write, as a chunk's events are: a sink may end the stream from inside it.
    this.stats.heartbeats++;
    try {
      this.#write(HEARTBEAT, 0);
    } catch (error) {
      this.stats.heartbeats--;
      this.#sinkFailed(error);
      return;
    }
    this.#count('heartbeat');
    // A heartbeat is not activity: the next idle interval deserves one too.
    this.busy = false;
  }

  /** @internal A message from an Observable: queued within the cap, written at the end of the tick. */
  push(message: MessageEvent<unknown>): void {
    if (this.#reason !== undefined) return;
    const queue = this.#taking(this.#enqueue, message);
    if (queue === undefined) return;
    this.#gap?.queued(message.id);
    this.#writeSoon(queue);
  }

  /** `take(message)`, this stream meanwhile the one {@link taking} a message. */
  #taking<T>(take: (message: MessageEvent<unknown>) => T, message: MessageEvent<unknown>): T {
    const outer = taking;
    taking = this;
    try {
      return take.call(this, message);
    } finally {
      taking = outer;
    }
  }

  /** Whether this stream was {@link taking} a message: no longer, as its caller counts that message. */
  #handOver(): boolean {
    if (taking !== this) return false;
    taking = undefined;
    return true;
  }

  /** Formats `message` and queues it within the cap: the queue, unless it was not queued. */
  #enqueue(message: MessageEvent<unknown>): EventQueue | undefined {
    const text = this.#tryFormat(message);
    // A `serialize` of the user's may have ended the stream: nothing goes after the end.
    if (text === undefined || this.#reason !== undefined) return undefined;
    const queue = this.#openQueue();
    const cap = this.options.maxQueueBytes;
    if (this.#gap?.owed || queue.mayPass(text, cap)) {
      if (!this.#queueMeasured(queue, text, cap)) return undefined;
    } else queue.add(text);
    return queue;
  }

  /** The queue, made at the stream's first event. */
  #openQueue(): EventQueue {
    this.#queue ??= new EventQueue(!dropsQueuedEvents(this.options.onOverflow));
    return this.#queue;
  }

  /** Writes what was just queued: at once past a chunk, else at the end of the tick. */
  #writeSoon(queue: EventQueue): void {
    if (!this.#writable) return;
    // A tick that emits more than a chunk writes it as it goes: the client reads the first chunk
    // while the source produces the rest (a 100,000-event burst arrives ~1.3x sooner).
    if (queue.size >= CHUNK_UNITS) this.#writeChunks(queue);
    else if (!this.#flushScheduled) {
      // One write per tick: everything emitted in this tick goes out together, nothing waits longer.
      this.#flushScheduled = true;
      flushThisTick(this);
    }
  }

  /**
   * @internal Whether the stream places a source's own gap events: it keeps ids for a source with
   * a gap event.
   */
  get placesGaps(): boolean {
    return this.#gap !== undefined;
  }

  /**
   * @internal A gap event of the source's own (see `SUBSCRIBER_GAP_EVENT`), once the stream is open
   * and {@link placesGaps}: made for the id the client has after the queue's last event, and queued
   * as the stream's own gap events are, at once if there is room, else before the next event (which
   * makes room for both) or alone once the client has room.
   */
  pushGap(make: GapEventFactory): void {
    const gap = this.#gap;
    if (gap === undefined || this.#reason !== undefined) return;
    const queue = this.#openQueue();
    if (!gap.own(make, queue, this.options.maxQueueBytes)) return;
    this.#notePeak(queue.bytes());
    this.#writeSoon(queue);
  }

  /**
   * Queues `text` where the queue could pass `cap`, or a gap event waits to go before it: counted in
   * exact bytes, and past the cap met by the overflow policy. False if the event was not queued.
   */
  #queueMeasured(queue: EventQueue, text: string, cap: number): boolean {
    const size = utf8Length(text);
    if (size > cap) {
      this.#refuseLarger(size);
      return false;
    }
    for (;;) {
      const gap = this.#gap?.owed ? this.#gap.owedText() : undefined;
      if (this.#reason !== undefined) return false;
      const gapSize = gap === undefined ? 0 : utf8Length(gap);
      if (queue.bytes() + gapSize + size <= cap) {
        if (gap !== undefined) this.#gap!.queueOwed(queue, gap, gapSize);
        queue.add(text, size);
        this.#notePeak(queue.bytes());
        return true;
      }
      // The cap bounds what a slow client leaves waiting, not what one tick emits: a transport with
      // room takes the queue first (a tick writes once, at its end, or per 64 KiB).
      if (this.#writable && queue.length > 0) {
        this.#writeChunks(queue);
        continue;
      }
      if (!this.#overflow(queue, gapSize + size, cap)) return false;
    }
  }

  /** Makes room for `size` bytes by the overflow policy; false when the event is dropped instead. */
  #overflow(queue: EventQueue, size: number, cap: number): boolean {
    const { onOverflow } = this.options;
    // No room for the gap event and this one even in an empty queue: this one is dropped.
    const outcome = size > cap ? 'skip' : overflowPolicies[onOverflow](queue, size, cap, this.#gap);
    // The event in hand is counted here, not by an end that a `dropped` hook brings.
    if (outcome === 'close' || outcome === 'skip') this.#handOver();
    if (outcome === 'close') {
      // The event that passed the cap is lost with the queued ones (which the close counts).
      this.#dropped(1);
      this.#finish('overflow');
      return false;
    }
    if (outcome === 'skip') {
      this.#dropped(1);
      // Events were lost: a source that says how is told where, so its client is not left unaware.
      this.#gap?.skipped();
      return false;
    }
    this.#dropped(outcome);
    return this.#reason === undefined;
  }

  /**
   * @internal A message pulled from an AsyncIterable while the transport had room: written at once,
   * unless a write meanwhile (a heartbeat's) filled it; it then waits for the drain, first in line.
   */
  send(message: MessageEvent<unknown>): void {
    const text = this.#taking(this.#tryFormat, message);
    // A `serialize` of the user's may have ended the stream: nothing goes after the end.
    if (text === undefined || this.#reason !== undefined) return;
    // The same rule as for a pushed message, whatever the source.
    if (!this.#withinCap(text)) return;
    if (!this.#writable) {
      this.#openQueue().add(text);
      return;
    }
    try {
      this.#write(text, 1);
    } catch (error) {
      this.#sinkFailed(error);
    }
  }

  /**
   * @internal The source completed or failed. Failed before it sent anything, while it was
   * subscribed, the stream is refused instead: it never opens, counts nothing and reports nothing,
   * and `start()` throws the error for the transport to answer, as a handler's throw.
   */
  end(reason: 'complete' | 'error', error?: unknown): void {
    if (this.#unopened !== undefined) {
      if (reason === 'error') {
        if (this.#unopened instanceof SourceFailure) return;
        this.#unopened = new SourceFailure(error);
        // Ended for the feed, which lets go of the source once subscribe() returns.
        this.#reason = 'error';
        return;
      }
      this.open();
    }
    // A source that ends as its client leaves (on the abort of the sink's signal, whose listeners
    // added before the stream's run first) ends with its client: what waits for it is dropped.
    if (!this.sink.onClose && this.sink.signal.aborted) this.#finish('client');
    else this.#finish(reason, error);
  }

  /** @internal Writes what the tick queued. */
  flush(): void {
    this.#flushScheduled = false;
    const queue = this.#queue;
    if (this.#reason !== undefined || !this.#writable || queue === undefined) return;
    if (queue.length > 0) this.#writeChunks(queue);
    // A gap event owed (after a drop, or the source's own that found no room) goes alone once the
    // client has room, though no event followed it.
    if (!this.#gap?.owed || !this.#writable || this.#reason !== undefined) return;
    if (this.#gap.queueAlone(queue, this.options.maxQueueBytes)) this.#writeChunks(queue);
  }

  /** @internal Hands an error to `onError`, else to the framework's log; neither may throw out of the stream. */
  reportError(error: unknown): void {
    reportTo(this.options.onError, this.report, error);
  }

  /** @internal {@link reportError} for a promise that may settle long after the stream ended: holds only where errors go. */
  laterReporter(): ErrorReporter {
    const { options, report } = this;
    const { onError } = options;
    return (error) => reportTo(onError, report, error);
  }

  /**
   * The message's text, or `undefined` when it cannot be sent (then refused, see `onInvalidMessage`).
   * `inHand`: the message is the one the stream is taking (false for its own error event).
   */
  #tryFormat(message: MessageEvent<unknown>, inHand = true): string | undefined {
    try {
      return this.#format(message, this);
    } catch (error) {
      // Only a value that failed as a message is looked at: message objects cost nothing here.
      if (this.options.bareValues === 'data' && isBareValue(message))
        return this.#tryFormat({ data: message }, inHand);
      hearRefusedPromises(message, error, () => this.laterReporter());
      this.#refuse(error, inHand);
      return undefined;
    }
  }

  /**
   * A gap event's text, or `undefined` when it cannot be sent: refused as any message. It is rxsse's
   * own event, in rxsse's own encoding: a route's `serialize` (or `strict`) that refused it would
   * leave the client unaware of the events it tells of, and, with `onInvalidMessage: 'close'`, make
   * it reconnect to meet the same refusal for ever. For that reason too, one larger than
   * `maxQueueBytes` (owed, it would never fit, and every event after it would be dropped to make
   * room for it) is reported and sent as a small notice naming `name` instead (`smallGapEvent`);
   * only one whose notice is larger still is refused.
   * @throws why it cannot be sent, for its {@link GapNotice} to refuse.
   */
  #gapText(message: MessageEvent<unknown>, name: string | null): string {
    const text = this.#ownText(message);
    if (this.#fits(text)) return text;
    const cap = this.options.maxQueueBytes;
    this.reportError(
      new SseRangeError(
        'data',
        `a gap event of ${utf8Length(text)} bytes is larger than maxQueueBytes (${cap}): sent as its type, lastEventId and reason alone`,
      ),
    );
    const small = this.#ownText(smallGapEvent(message, name));
    if (this.#fits(small)) return small;
    throw largerError(utf8Length(small), cap);
  }

  /**
   * A gap event in rxsse's own encoding.
   * @throws why it cannot be encoded.
   */
  #ownText(message: MessageEvent<unknown>): string {
    try {
      return formatOwnEvent(message);
    } catch (error) {
      hearRefusedPromises(message, error, () => this.laterReporter());
      throw error;
    }
  }

  /**
   * Whether `text` fits `maxQueueBytes`: a text of n units is at most 3n bytes, so only a long one
   * is measured.
   */
  #fits(text: string): boolean {
    const cap = this.options.maxQueueBytes;
    return text.length * 3 <= cap || utf8Length(text) <= cap;
  }

  /** Whether `text` fits `maxQueueBytes`; one larger is refused. */
  #withinCap(text: string): boolean {
    if (this.#fits(text)) return true;
    this.#refuseLarger(utf8Length(text));
    return false;
  }

  /**
   * `inHand`: the message the stream is taking is the one refused. A gap event refused is the
   * stream's own: the message in hand, if any, is still dropped by the end that may follow.
   */
  #refuse(error: unknown, inHand = true): void {
    // The message in hand is counted refused, not dropped too by the end that may follow. An end
    // that came while it was formatted (a `serialize` that closed the stream, then threw) counted
    // it dropped already: its stats are final.
    if (inHand && !this.#handOver() && this.#reason !== undefined) {
      this.reportError(error);
      return;
    }
    this.stats.refused++;
    this.#count('refused');
    // Once the stream ended (an error event), there is nothing left to close: only report.
    if (this.options.onInvalidMessage === 'close' && this.#reason === undefined) this.#finish('error', error);
    else this.reportError(error);
  }

  /**
   * Refuses a message of `size` bytes, more than `maxQueueBytes`. No client of this route could
   * ever receive it from a pushing source: closing would only make it reconnect and meet the same
   * message again; and a route sends the same messages whatever its source.
   */
  #refuseLarger(size: number): void {
    this.#refuse(largerError(size, this.options.maxQueueBytes));
  }

  #notePeak(bytes: number): void {
    if (bytes > this.stats.peakQueuedBytes) this.stats.peakQueuedBytes = bytes;
  }

  /** Drops what the queue holds, counting the source's events: a gap event queued is the stream's own. */
  #clearQueue(queue: EventQueue): void {
    const count = queue.clear();
    this.#dropped(this.#gap ? this.#gap.cleared(count) : count);
  }

  #dropped(count: number): void {
    if (count === 0) return;
    this.stats.dropped += count;
    this.#count('dropped', count);
  }

  /** Writes the queue while the stream runs: a sink that throws ends this stream, and no other. */
  #writeChunks(queue: EventQueue): void {
    try {
      this.#writeQueue(queue);
    } catch (error) {
      this.#sinkFailed(error);
    }
  }

  /**
   * Writes the queue a chunk of about 64 KiB at a time while the transport has room (`all`: every
   * chunk, at the end). A transport that drains takes one chunk; the rest waits here, counted and
   * under the cap, where the overflow policy still sees it.
   */
  #writeQueue(queue: EventQueue, all = false): void {
    do {
      const count = queue.length;
      const chunk = queue.take();
      const taken = count - queue.length;
      const own = this.#gap ? this.#gap.taken(taken) : taken;
      // What the queue held: this chunk and what waits behind it. Every chunk's, not the first's
      // alone: a hook the write calls (`wrote`) may queue more, which goes out in this same loop.
      this.#write(chunk, taken, own, queue.length > 0 ? queue.bytes() : 0);
    } while (queue.length > 0 && (all || this.#writable));
  }

  /**
   * Hands `text`, `events` events, `lost` of them the source's (counted dropped if the sink throws;
   * a gap event is the stream's own), to the sink: as text where it takes text, else as bytes.
   * `behind`: the bytes a queue still holds behind this chunk, for its peak (-1: the text was never
   * queued), noted before the write as the stats are: a hook the write calls may end the stream,
   * whose stats are final then.
   * Returns its UTF-8 size.
   */
  #write(text: string, events: number, lost = events, behind = -1): number {
    this.busy = true;
    const { sink } = this;
    // A transport that encodes text itself is handed text, unless others take the same bytes: a
    // buffer of rxsse's own per chunk, left to the GC, cost a 100,000-event burst ~15 % of its time.
    const chunk = sink.writeText ? sharedBytes(text) : encodeText(text);
    const bytes = chunk ? chunk.length : utf8Length(text);
    // Counted before the write: a sink may end the stream from inside it, reporting these stats.
    if (behind >= 0) this.#notePeak(bytes + behind);
    this.stats.events += events;
    this.stats.bytes += bytes;
    let room: boolean | undefined;
    try {
      room = chunk ? sink.write(chunk) : sink.writeText!(text);
    } catch (error) {
      // Never handed over: lost, as what is still queued is once the sink broke.
      this.stats.events -= events;
      this.stats.bytes -= bytes;
      this.#dropped(lost);
      throw error;
    }
    // Told once the chunk is out: a hook that ends the stream (a group's close) then writes the
    // rest of the queue after it, not this chunk after the end.
    this.#count('wrote', events, bytes);
    // Only false says full, as for open(): a sink of plain JavaScript may return nothing.
    if (room === false) this.#full();
    return bytes;
  }

  /** The transport is full: nothing more is written until it drains, and the stall timer runs. */
  #full(): void {
    this.#writable = false;
    // Once the stream ended, a full transport only matters to the stall after the end (see there).
    if (this.#reason !== undefined) return;
    const { stallTimeout } = this.options;
    const firstTime = this.#backpressure === undefined;
    this.#backpressure ??= { stallTimer: undefined };
    const backpressure = this.#backpressure;
    if (stallTimeout !== false && backpressure.stallTimer === undefined) {
      // A client on a slow link takes some, not enough to drain: it stalls once it takes nothing.
      watchProgress(
        stallTimeout,
        () => this.#pending(),
        () => this.#finish('stall'),
        (timer) => {
          backpressure.stallTimer = timer;
        },
      );
    }
    // Most streams never fill their transport: the drain listener is registered the first time.
    // After the stall timer: a sink that drained already may call it at once, which disarms it.
    if (firstTime) this.sink.onDrain(() => this.#drained());
  }

  #drained(): void {
    if (this.#reason !== undefined) return;
    this.#writable = true;
    this.#disarmStall();
    this.#feed?.resume();
    this.flush();
  }

  #disarmStall(): void {
    const backpressure = this.#backpressure;
    if (backpressure === undefined) return;
    clearTimeout(backpressure.stallTimer);
    backpressure.stallTimer = undefined;
  }

  /**
   * A sink method threw (a transport of the user's): the connection is broken, so the stream ends
   * with `'error'`, reported, and the sink is only destroyed, never written to again. A throw of
   * the teardown's own calls is only reported.
   */
  #sinkFailed(error: unknown): void {
    if (this.#reason === undefined) this.#finish('error', error, undefined, true);
    else this.reportError(error);
  }

  #destroySink(): void {
    try {
      this.sink.destroy();
    } catch (error) {
      this.reportError(error);
    }
  }

  /** The one place a stream ends: every reason runs the same teardown (`broken`: the sink threw). */
  #finish(reason: CloseReason, error?: unknown, retryHint?: number, broken = false): void {
    if (this.#reason !== undefined) return;
    const unopened = this.#unopened;
    if (unopened !== undefined) {
      // The client left before the stream opened (as its close listener was added, or while its
      // `opened` hook ran): counted as opened and closed, as every stream that was not refused.
      if (unopened !== OPENING) {
        // Still opening while counted, as in `#open`: a group's close its hook begins leaves the
        // stream to this end, instead of ending it first through a sink that was never opened.
        this.#unopened = OPENING;
        this.#count('opened');
        if (this.#reason !== undefined) return;
      }
      this.#unopened = undefined;
    }
    this.#reason = reason;
    const outer = ending;
    ending = this;
    try {
      this.#teardown(reason, error, retryHint, broken);
    } finally {
      ending = outer;
    }
    this.#count('closed', reason, this.stats);
    try {
      heard(this.options.onClose?.(reason, this.stats, error), this.laterReporter());
    } catch (thrown) {
      this.reportError(thrown);
    }
  }

  /**
   * Releases what the ended stream holds, then ends its sink after what is queued, or destroys it.
   * User code it calls (a hook, `onError`) may `destroy()` the stream meanwhile: nothing more is
   * written then.
   */
  #teardown(reason: CloseReason, error: unknown, retryHint: number | undefined, broken: boolean): void {
    // A message the stream was taking when user code it called ended it can no longer be sent.
    if (this.#handOver()) this.#dropped(1);
    const { sink, options } = this;
    if (!sink.onClose) sink.signal.removeEventListener('abort', this.#onAbort);
    options.group.delete(this);
    this.server?.delete(this);
    if (this.#heartbeatSlot) leaveHeartbeat(options.heartbeat as number, this, this.#heartbeatSlot);
    this.#disarmStall();
    clearTimeout(this.#lifetimeTimer);
    // What the source sent while the stream took the message in hand is lost with it.
    const unsent = this.#feed?.stop() ?? 0;
    this.#heartbeatSlot = this.#feed = this.#lifetimeTimer = undefined;
    this.#dropped(unsent);

    if (reason === 'error') this.reportError(error);
    const queue = this.#queue;
    if (broken || reason === 'client' || reason === 'overflow' || reason === 'stall') {
      if (queue) {
        this.#notePeak(queue.bytes());
        this.#clearQueue(queue);
      }
      this.#destroySink();
    } else if (ending === this) {
      try {
        // Queued events are bounded by the cap: hand them over, and let the transport flush them.
        if (queue && queue.length > 0) this.#writeQueue(queue, true);
        // Events dropped last are told too, so the client resumes knowing it missed them.
        const gap = this.#gap?.owed && ending === this ? this.#gap.owedText() : undefined;
        if (gap !== undefined && ending === this) this.#write(gap, 1, 0);
        if (reason === 'error' && ending === this) this.#writeErrorEvent(error);
        if (retryHint !== undefined && ending === this) this.#write(formatRetry(retryHint), 0);
        if (ending !== this) return;
        sink.end();
        // A group's close has its deadline for what the transport still holds; nothing else does,
        // a `close()` of the app's own included.
        if (!(reason === 'shutdown' && this.#shuttingDown)) this.#flushAfterEnd();
      } catch (thrown) {
        // The sink broke while ending: what it did not take is lost, and the connection dropped.
        if (queue) this.#clearQueue(queue);
        this.reportError(thrown);
        this.#destroySink();
      }
    }
  }

  /**
   * Bytes the end left in the transport stay in the stream's groups until they are out, so a
   * shutdown that comes meanwhile waits for them within its deadline, and get the stall rule below.
   */
  #flushAfterEnd(): void {
    if (!(this.#pending() > 0 || !this.#writable) || this.sink.signal.aborted) return;
    // Optional: a process-wide group may come from an older copy of rxsse, which has no such set.
    this.options.group.addFlushing?.(this);
    this.server?.addFlushing?.(this);
    this.#stallAfterEnd();
  }

  /**
   * The end left bytes in the transport, full or not: a client that takes none of them for
   * `stallTimeout` is dropped, as it would have been while the stream ran, instead of holding its
   * connection and those bytes for good (Node times out nothing once a response has ended, and no
   * heartbeat fills a transport that had room any more). One that takes some in each
   * `stallTimeout` (as the sink's `pending()` tells) keeps it until it has them all: what is left
   * may be far more than the transport's buffer, which a stream that runs refills only once it
   * drained. The close reason stays the one the stream ended with; the timer goes once the
   * response has flushed.
   */
  #stallAfterEnd(): void {
    const { sink } = this;
    const { stallTimeout } = this.options;
    if (stallTimeout === false || sink.signal.aborted) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    watchProgress(
      stallTimeout,
      () => this.#pending(),
      () => this.#destroySink(),
      (next) => {
        timer = next;
      },
    );
    sink.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  }

  /** What the ended stream's transport still holds; NaN (never progress) when it cannot tell. */
  #pending(): number {
    try {
      return this.sink.pending?.() ?? Number.NaN;
    } catch (error) {
      this.reportError(error);
      return Number.NaN;
    }
  }

  #writeErrorEvent(error: unknown): void {
    let message: MessageEvent<unknown> | undefined;
    try {
      message = this.options.errorEvent?.(error);
    } catch (thrown) {
      this.reportError(thrown);
      return;
    }
    if (!message) return;
    // A malformed error event must not turn a clean end into a corrupt stream: the encoder's
    // refusal skips it, counted and reported, as it does any message (an async errorEvent's
    // Promise too, whose rejection is heard there).
    const text = this.#tryFormat(message, false);
    // Its `errorEvent`, or the route's `serialize`, may have dropped the connection meanwhile. The
    // stream's own event, as a gap event: none of the source's is lost if the sink throws on it.
    if (text !== undefined && ending === this) this.#write(text, 1, 0);
  }

  /** Calls a metrics hook; one that throws is reported, never fatal. */
  #count<K extends keyof StreamMetrics>(hook: K, ...args: Parameters<NonNullable<StreamMetrics[K]>>): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    try {
      const result = (metrics[hook] as ((...a: unknown[]) => unknown) | undefined)?.apply(metrics, args);
      // Hooks run on every write: a synchronous one costs no closure.
      if (result !== undefined) heard(result, this.laterReporter());
    } catch (error) {
      this.reportError(error);
    }
  }
}

/**
 * Starts streaming `source` to `sink`. Headers go out at once, or, for an Observable, once it sent
 * its first message, completed, or returned from `subscribe()`, whichever comes first (unless it
 * carries `SOURCE_OPENS_FIRST`); the returned stream reports its close reason through
 * `options.onClose` and {@link EventStream.closeReason}. Errors no `onError` takes go to `report`
 * (a transport passes its framework's log; `console.error` by default). While `options.group`
 * closes (a handler that resolved during a shutdown), the request is turned away as
 * {@link turnAwayEventStream} does, and `source` is never subscribed. A transport that knows the server
 * passes `server` (`serverStreams(server)`): the stream is one of its streams too, which the
 * server's shutdown ends, whatever `options.group` is; and it is turned away while that closes.
 *
 * @throws {TypeError} before anything is written, when `source` is neither an Observable nor an
 *   AsyncIterable.
 * @throws what an Observable fails with when subscribed, before its first message: nothing is
 *   written, counted or reported, for the transport to answer it as a handler's throw.
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
  server?: StreamGroup,
): EventStream {
  const checked = checkEventSource(source);
  return new EventStream(sink, resolveStreamOptions(options), report, server).start(checked);
}

/**
 * Answers a request that arrives while `options.group` (or the server) shuts down, instead of
 * running its handler: status 200, `Connection: close` on HTTP/1, a `retry:` hint (the shutdown's,
 * else the route's) and the end. An EventSource then reconnects later, to another instance,
 * where an error status would make it give up for good. A `source` the handler already returned
 * is never subscribed, and an iterator is `return()`ed. The hint is that of `server`'s shutdown
 * while it runs.
 */
export function turnAwayEventStream(
  sink: Sink,
  options?: StreamOptions,
  report?: ErrorReporter,
  source?: unknown,
  server?: StreamGroup,
): EventStream {
  const resolved = resolveStreamOptions(options);
  return new EventStream(sink, resolved, report).turnAway(shutdownHint(resolved, server), source);
}

/**
 * Answers a HEAD with the headers its GET would get, those of `source` (what its handler returned,
 * never subscribed) among them, and no body. Reported as a stream that opened and closed with
 * `'complete'` (metrics and `onClose`), so every request of a route is counted, whatever its
 * method. While the route's group or the server shuts down (`closing`), it gets the status and
 * headers of a GET turned away then ({@link turnAwayEventStream}, `Connection: close` on HTTP/1),
 * and is counted as that GET is, closed with `'shutdown'`.
 */
export function answerHeadEventStream(
  sink: Sink,
  options?: StreamOptions,
  report?: ErrorReporter,
  closing = false,
  source?: unknown,
): EventStream {
  const resolved = resolveStreamOptions(options);
  return new EventStream(sink, resolved, report).answerHead(closing || resolved.group.closing, source);
}

/** The hint of the shutdown that turns a request away: the server's while it closes, else the group's. */
function shutdownHint(options: ResolvedStreamOptions, server: StreamGroup | undefined): number | undefined {
  const hint = server?.closing ? server.reconnectHint() : undefined;
  return hint ?? options.group.reconnectHint() ?? options.retry;
}

/** Why an event of `size` bytes is refused: it is larger than `cap`, the route's `maxQueueBytes`. */
function largerError(size: number, cap: number): SseRangeError {
  return new SseRangeError('data', `an event of ${size} bytes is larger than maxQueueBytes (${cap})`);
}

/** A value that is not a message object, nor `null` or `undefined`: `{ data: value }` under `bareValues: 'data'`. */
function isBareValue(value: unknown): boolean {
  return typeof value !== 'object' && typeof value !== 'function' && value !== undefined;
}

function opensFirst(source: EventSourceLike<MessageEvent<unknown>>): boolean {
  return (source as WithSourceOpensFirst)[SOURCE_OPENS_FIRST] === true;
}

/** Headers of a route that overrides none: a stream holds them until it opens. */
const NO_OVERRIDES: HeaderOverrides = Object.freeze({});

/** What an Observable's stream holds while its `opened` hook runs (see `open`). */
const OPENING: HeaderOverrides = Object.freeze({});

/** How an Observable failed before its first message: its stream is refused, never opened. */
class SourceFailure {
  constructor(readonly error: unknown) {}
}
