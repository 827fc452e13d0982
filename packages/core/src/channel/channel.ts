import { Observable, throwError } from 'rxjs';
import { SseFormatError, SseRangeError } from '../encode/errors.js';
import {
  checkFormatOptions,
  FORMAT_OPTION_NAMES,
  formatEvent,
  hearRefusedPromises,
} from '../encode/format.js';
import type { FormatOptions, MessageEvent } from '../encode/types.js';
import { utf8Length } from '../encode/utf8.js';
import { SOURCE_HEADERS, type WithSourceHeaders } from '../http/headers.js';
import { checkOptionNames, checkOptionsObject } from '../http/option-names.js';
import { describeValue } from '../http/source.js';
import { type GapEventFactory, SOURCE_GAP_EVENT, type WithSourceGapEvent } from '../http/source-gap.js';
import { SOURCE_OPENS_FIRST, type WithSourceOpensFirst } from '../http/source-open.js';
import { SOURCE_RELEASE, type WithSourceRelease } from '../http/source-release.js';
import { unlessAborted } from './aborted.js';
import type { ChannelEngine, StoredMessage } from './engine.js';
import { ChannelUnavailableError, checkEngineId, EngineContractError, UnknownFieldError } from './errors.js';
import { type ChannelEvent, ChannelFeed, type TruncationEventFactory } from './feed.js';
import { otherField } from './message-fields.js';
import { type Replay, type ReplayLimit, readReplay } from './replay.js';
import {
  checkTruncationType,
  DEFAULT_TRUNCATION_EVENT_TYPE,
  type HistoryTruncatedEvent,
  resumeIdToName,
  TRUNCATED_HEADERS,
  type TruncationReason,
} from './truncation.js';

/** Options of {@link createChannel}. */
export interface ChannelOptions {
  /**
   * Most history one subscription replays. A client that missed more gets the truncation signal
   * instead of a partial replay, and continues live. What the subscription's live listener holds
   * while its history is read is sent after the replay, and not counted in it: events published
   * meanwhile, which the client did not miss (and any a live bus still catching up hands it from
   * just before it listened, within what a subscription holds). The replay is queued for the
   * client at once, so keep `bytes` well under the route's `maxQueueBytes` (events take a few
   * dozen bytes more on the wire than they count here, where each line of string data is counted
   * as it is sent; more if the routes' `serialize` writes several lines or more than JSON: data
   * that is not a string is counted as its JSON, see `ReplayLimit.bytes` for why). While its
   * history is read, a resuming subscription holds up to `max(1000, events)` live events, each
   * up to `maxMessageBytes`: a large `events` raises what each resuming client may hold.
   * @defaultValue `{ events: 1000, bytes: 524_288 }`, each limit left out or `undefined` kept
   */
  maxReplay?: { [K in keyof ReplayLimit]?: ReplayLimit[K] | undefined } | undefined;
  /**
   * The `type` of the event that tells a subscriber events may be missing (see
   * `HistoryTruncatedEvent`). Not `message`, `error` or `open`.
   * @defaultValue 'history-truncated'
   */
  truncationEventType?: string | undefined;
  /**
   * Told how each resume went, as its stream starts (subscribes to the source): `hit` (missed
   * events replayed), `miss` (nothing was missed) or `truncated` (the truncation signal is sent,
   * also for live events lost while history was read or the handler went on); of a first
   * connection, only `truncated`, for live events it lost so. Then `truncated` again for each
   * truncation signal the subscription sends once live (a gap in the engine's live events), so
   * every time a client is told events are missing is counted (a backed-up client whose stream
   * still holds an unsent notice is told of a second gap in that one notice, counted twice). A
   * client that left before its stream started is not told of. `prometheusMetrics().replay` fits.
   * If it throws (or, async, rejects), the subscription's source fails with that error, as with a
   * throwing `filter`.
   */
  onReplay?: ((outcome: 'hit' | 'miss' | 'truncated') => void) | undefined;
  /**
   * The encoder options of the routes that stream this channel (`strict`, `ids`, `serialize`,
   * `maxDataLines`, ...): `publish` refuses what they would refuse, so a message no subscriber can
   * be sent is never stored (it would make every subscriber skip it, or, with
   * `onInvalidMessage: 'close'`, reconnect and meet it again forever). The truncation event is not
   * one of them: it is always sent as JSON.
   */
  format?: FormatOptions | undefined;
  /**
   * Largest event `publish` accepts, in UTF-8 bytes on the wire, without the `id:` line the engine
   * adds (at most 46 bytes more). Keep it well under the routes' `maxQueueBytes`, which no single
   * event may pass.
   * @defaultValue 262_144 (256 KiB)
   */
  maxMessageBytes?: number | undefined;
}

/** Options of {@link Channel.subscribe}. A handler's `{ lastEventId, signal }` context fits as is. */
export interface SubscribeOptions<M extends MessageEvent<unknown> = MessageEvent> {
  /**
   * The id the client last saw: events after it are replayed first. Any text a client sends is
   * taken: one that is no stream id (`<ms>-<seq>`) is no channel's, so it is answered with the
   * truncation signal without reading history, and its truncation event names `null`, not the id.
   * `null` (what `Headers.get()` gives for none), as `undefined` and `''`, is no resume.
   */
  lastEventId?: string | null | undefined;
  /**
   * Releases the subscription if the client leaves before the source is subscribed to. While
   * `subscribe` still waits for the engine, it then rejects with the signal's reason (which a
   * transport counts as the client's close), and reads no more history.
   */
  signal?: AbortSignal | undefined;
  /**
   * Which events this subscriber receives (e.g. only its user's). It only drops messages: those
   * kept are the channel's own objects, so they are still encoded once per route. It decides at
   * once: one that returns a Promise (an `async` filter) errors its subscriber with a `TypeError`.
   * It is handed a message's `data`, `id`, `type` and `retry`, the same live and replayed, on every
   * engine (`publish` refuses other fields): filter by what is in `data`. Data other than a string
   * is what its JSON reads back (a `Date` in it is its string); data that was a `Date` itself is a
   * `String` object (see `dataFromJson`).
   */
  filter?: ((message: StoredMessage<M>) => boolean) | undefined;
}

/**
 * What {@link Channel.subscribe} resolves to: a source any adapter's handler may return. Piped
 * through operators (`.pipe(map(...))`), the Observable they make tells the stream none of what this
 * one does (its truncation header, that it opens first, how to let go of its listener), and its
 * truncation events pass through them: give `subscribe` the handler's context (its `signal`), so
 * that a HEAD or a client gone first lets go of the listener, and let operators pass events of the
 * truncation type on unchanged. The `filter` option filters without either.
 */
export type ChannelSource<M extends MessageEvent<unknown> = MessageEvent> = Observable<
  ChannelEvent<StoredMessage<M>>
> &
  WithSourceHeaders;

/**
 * A topic that many connections subscribe to, on a {@link ChannelEngine}: `publish` stores an event
 * and fans it out, `subscribe` replays what a reconnecting client missed and continues live.
 * Create one with {@link createChannel}.
 */
export class Channel<M extends MessageEvent<unknown> = MessageEvent> {
  readonly #engine: ChannelEngine;
  readonly #replayLimit: ReplayLimit;
  readonly #maxHeld: number;
  readonly #truncation: TruncationEventFactory;
  readonly #truncationType: string;
  readonly #onReplay: ChannelOptions['onReplay'];
  readonly #format: FormatOptions;
  readonly #maxMessageBytes: number;

  /** @internal Use {@link createChannel}. */
  constructor(
    engine: ChannelEngine,
    /** The topic: every channel of this name on the same engine shares its events. */
    readonly topic: string,
    options: ChannelOptions = {},
  ) {
    if (typeof topic !== 'string' || !topic.isWellFormed()) {
      throw new TypeError(`A channel's topic must be a well-formed string, got ${JSON.stringify(topic)}`);
    }
    checkTypes(engine, options);
    this.#engine = engine;
    this.#onReplay = options.onReplay;
    this.#format = options.format ?? {};
    checkFormatOptions(this.#format);
    this.#maxMessageBytes = positive(options.maxMessageBytes ?? 262_144, 'maxMessageBytes');
    this.#replayLimit = {
      events: positive(options.maxReplay?.events ?? 1000, 'maxReplay.events'),
      bytes: positive(options.maxReplay?.bytes ?? 524_288, 'maxReplay.bytes'),
    };
    // Live events wait here while history is read: a few pages' worth of publishing, at most.
    this.#maxHeld = Math.max(1000, this.#replayLimit.events);
    const type = checkTruncationType(options.truncationEventType ?? DEFAULT_TRUNCATION_EVENT_TYPE);
    this.#truncationType = type;
    this.#truncation = (lastEventId, reason) => ({ type, data: { lastEventId, reason } });
  }

  /**
   * Stores `message` and delivers it to every subscriber; resolves to its id (the store assigns one
   * if the message has none). Rejects if the message was not stored, e.g. when the store is down:
   * nothing is ever dropped silently. Messages must not be mutated once published.
   *
   * A message is its `data`, `id`, `type` and `retry`, what the wire carries: one with any other
   * field (`{ data, userId }`, even `userId: undefined`) is refused, on every engine, so what a
   * `filter` reads is the same in development (memory) and production (Redis). Put what subscribers
   * are filtered by in `data`.
   *
   * @throws {SseFormatError} (as a rejection) for a message the channel's `format` options refuse,
   *   or one of the channel's truncation event type.
   * @throws {UnknownFieldError} (as a rejection) for one with a field beyond `data`, `id`, `type`
   *   and `retry`, naming it.
   * @throws {SseRangeError} (as a rejection) for one larger than `maxMessageBytes`, or with too
   *   many data lines or a bad `retry`.
   * @throws {RangeError} (as a rejection, the engine's) for an own `id` that is no stream id, is
   *   `0-0`, or is not after the topic's last id: nothing is stored.
   * @throws {EngineContractError} (as a rejection) when the engine answers with an id that breaks
   *   the id rule (the message may be stored).
   */
  async publish(message: M): Promise<string> {
    // Checked here, once: a stored message that no subscriber can be sent would poison every
    // subscriber's stream, and every replay after it.
    let text: string;
    try {
      text = formatEvent(message, this.#format);
    } catch (error) {
      // `publish` rejects naming it already: the Promise's own rejection has nowhere else to go.
      hearRefusedPromises(message, error, () => ignore);
      throw error;
    }
    const size = utf8Length(text);
    // After the encoder, which names what is no message object at all.
    const field = otherField(message);
    if (field !== undefined) throw new UnknownFieldError(this.topic, field);
    // Clients would take it for the channel's own signal that events were lost.
    if (message.type === this.#truncationType) {
      throw new SseFormatError(
        'type',
        `${JSON.stringify(message.type)} is the channel's truncation event type`,
      );
    }
    if (size > this.#maxMessageBytes) {
      throw new SseRangeError(
        'data',
        `an event of ${size} bytes is larger than the channel's maxMessageBytes (${this.#maxMessageBytes})`,
      );
    }
    const id = await this.#engine.append(this.topic, message);
    checkEngineId(id, this.topic);
    return id;
  }

  /**
   * A source for one client: with a `lastEventId`, first the events after it (or, if they cannot all
   * be replayed, the truncation event and the `SSE-History-Truncated: true` header), then live
   * events, each once and in order. The stream sends the truncation event as JSON, whatever the
   * route's `serialize`, `strict` or `onInvalidMessage`, so a route's own encoding never keeps it
   * from the client (see `HistoryTruncatedEvent`). Subscribe to the result once. If the engine
   * cannot be reached, the source fails with {@link ChannelUnavailableError}: the stream answers 200
   * and ends, and the client reconnects with the same `Last-Event-ID` (it would not after an error
   * status).
   * When the engine closes, the source completes after what it was sent: the stream ends with
   * reason `complete`, and the client reconnects too. Return the source itself from the handler:
   * piped through operators, it loses the truncation header, and the truncation event a route that
   * drops events (`onOverflow`) sends after them; and its truncation events name the last id it
   * sent, which such a route may have dropped, and go through the route's encoding as its own
   * events do (a `serialize` of the route's may refuse them). Pass the request's `signal` (the
   * handler's context): it releases the subscription when its client leaves before the source is
   * subscribed. Without it, a transport that never subscribes (a HEAD, a client gone first) still
   * releases the source itself, but not one piped through operators.
   *
   * @throws {TypeError} (as a rejection) for a `filter` that is not a function, or a `lastEventId`
   *   that is not a string.
   * @throws the reason of `options.signal` (as a rejection), once it aborts while the engine has not
   *   answered yet: the listener is released and no more history is read.
   * @example
   * ```ts
   * app.get('/chat', sse((req, context) => chat.subscribe(context)));
   * ```
   */
  async subscribe(options: SubscribeOptions<M> = {}): Promise<ChannelSource<M>> {
    const { lastEventId, signal } = options;
    // `null` is what `Headers.get()` gives for no header: no resume, as `undefined`.
    if (lastEventId != null && typeof lastEventId !== 'string') {
      throw new TypeError(`lastEventId must be a string, got ${describeValue(lastEventId)}`);
    }
    const resume = lastEventId != null && lastEventId !== '' ? lastEventId : undefined;
    const filter = options.filter as ((message: StoredMessage) => boolean) | undefined;
    if (filter !== undefined && typeof filter !== 'function') {
      throw new TypeError(`filter must be a function, got ${describeValue(filter)}`);
    }
    signal?.throwIfAborted();
    const named = resumeIdToName(resume);
    const truncation = subscriptionTruncation(this.#truncation, named);
    const feed = new ChannelFeed(this.topic, truncation, filter, this.#maxHeld, named ?? undefined);
    // Listen first, then read: an event published in between is in one or the other, never lost.
    const listening = (async () => this.#engine.listen(this.topic, feed))();
    let unlisten: () => void;
    try {
      unlisten = await unlessAborted(listening, signal);
    } catch (error) {
      if (!signal?.aborted) return unavailable(this.topic, error);
      // The client left first: what the engine registers for it later is released then.
      listening.then(unlistenOrReport, () => {});
      throw signal.reason;
    }
    if (typeof unlisten !== 'function') {
      // Nothing can let go of the listener: the engine's bug, told as the source's error.
      feed.abandon();
      return opensFirst(
        throwError(
          () =>
            new EngineContractError(
              `The channel engine's listen to topic "${this.topic}" resolved to ${describeValue(unlisten)}, not the function that unregisters it`,
            ),
        ),
      );
    }
    let replay: Replay = { events: [], truncated: false };
    if (resume !== undefined) {
      try {
        replay = await readReplay(this.#engine, this.topic, resume, this.#replayLimit, signal, feed);
      } catch (error) {
        unlistenOrReport(unlisten);
        if (signal?.aborted) throw signal.reason;
        // A bug in the engine, not an outage: named as such, as for an id that breaks the id rule.
        if (error instanceof EngineContractError) return opensFirst(throwError(() => error));
        return unavailable(this.topic, error);
      }
    }
    const outcome = replayOutcome(this.#onReplay, resume !== undefined);
    return feedSource(feed, replay, unlisten, signal, truncation, outcome) as unknown as ChannelSource<M>;
  }
}

/**
 * A channel for `topic` on `engine`. Switching engines is the only change between one process
 * and many.
 *
 * @throws {TypeError} naming it, for an `engine` that is not a `ChannelEngine`, a topic that is not a
 *   well-formed string, or an option of the wrong type.
 * @throws {RangeError} naming it, for a limit out of range or a reserved `truncationEventType`.
 * @example
 * ```ts
 * const engine = memoryEngine(); // or redisEngine({ url: process.env.REDIS_URL }) from @rxsse/redis
 * const chat = createChannel(engine, 'chat');
 * app.get('/chat', sse((req, context) => chat.subscribe(context)));
 * app.post('/chat', async (req, res) => res.json({ id: await chat.publish({ data: req.body }) }));
 * ```
 */
export function createChannel<M extends MessageEvent<unknown> = MessageEvent>(
  engine: ChannelEngine,
  topic: string,
  options?: ChannelOptions,
): Channel<M> {
  return new Channel<M>(engine, topic, options);
}

type FeedSource = Observable<ChannelEvent> &
  WithSourceHeaders &
  WithSourceGapEvent &
  WithSourceOpensFirst &
  WithSourceRelease;

/**
 * The truncation events of one subscription: a stream that has sent its client no id yet names
 * `null`, where the client still has the id it resumed from (its Last-Event-ID, if it can be a
 * channel id, see `resumeIdToName`). The reason is `gap` unless given: so it is also the source's
 * gap event, one function for both.
 */
function subscriptionTruncation(
  truncation: TruncationEventFactory,
  resume: string | null,
): (lastEventId: string | null, reason?: TruncationReason) => HistoryTruncatedEvent {
  return (lastEventId, reason = 'gap') => truncation(lastEventId ?? resume, reason);
}

function feedSource(
  feed: ChannelFeed,
  replay: Replay,
  unlisten: () => void,
  signal: AbortSignal | undefined,
  truncation: GapEventFactory,
  onReplay: ChannelOptions['onReplay'],
): FeedSource {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    signal?.removeEventListener('abort', left);
    unlisten();
  };
  // Only until the source is subscribed to: then its subscriber releases it, and the stream hears
  // what the engine's unlisten throws. Thrown from an abort listener, it would end the process.
  const left = () => {
    if (released) return;
    released = true;
    unlistenOrReport(unlisten);
    feed.abandon();
  };
  if (signal?.aborted) left();
  else signal?.addEventListener('abort', left, { once: true });

  // As the stream starts, as its outcome is (see `ChannelFeed.start`).
  const truncatedReplay = replay.truncated;
  const truncated = () => truncatedReplay || feed.heldGap;
  // Sent once, then dropped: the source lives as long as the stream, the replayed events need not.
  let pending: Replay | undefined = replay;
  const source: FeedSource = new Observable<ChannelEvent>((subscriber) => {
    if (pending === undefined) {
      subscriber.error(new Error('A channel subscription can be subscribed to only once'));
      return;
    }
    const sending = pending;
    pending = undefined;
    signal?.removeEventListener('abort', left);
    feed.start(subscriber, sending, onReplay);
    return release;
  });
  Object.defineProperty(source, SOURCE_HEADERS, {
    get: () => (truncated() ? TRUNCATED_HEADERS : undefined),
    enumerable: true,
  });
  // A route whose overflow policy drops events (a slow client's live ones) sends the truncation
  // event where it dropped them: no client misses events unaware.
  source[SOURCE_GAP_EVENT] = truncation;
  // It may fail at once (onReplay failed): the client must come back then.
  source[SOURCE_OPENS_FIRST] = true;
  // A transport that never subscribes (a HEAD, a client gone first) lets go of its listener: a
  // handler need not have passed the request's signal. What unlisten throws is the transport's to report.
  source[SOURCE_RELEASE] = () => {
    if (!released) feed.abandon();
    release();
  };
  return source;
}

/**
 * `onReplay` as a subscription tells it: every outcome of a resume, and of a first connection only
 * `truncated`, when it lost live events while its handler went on or once live (its client is told
 * so too).
 */
function replayOutcome(onReplay: ChannelOptions['onReplay'], resuming: boolean): ChannelOptions['onReplay'] {
  if (resuming || onReplay === undefined) return onReplay;
  return (outcome) => (outcome === 'truncated' ? onReplay(outcome) : undefined);
}

/** Unregisters from the engine where nothing could hear it throw: a bug in the engine, logged. */
function unlistenOrReport(unlisten: () => void): void {
  try {
    unlisten();
  } catch (error) {
    console.error("rxsse: a channel engine's unlisten threw", error);
  }
}

/**
 * The source of a subscription the engine could not serve. Not a rejection: the framework would
 * answer it with an error status, and EventSource clients never reconnect after a non-200 answer.
 * A source that fails lets the stream answer 200 and end, and the client comes back.
 */
function unavailable<M extends MessageEvent<unknown>>(topic: string, cause: unknown): ChannelSource<M> {
  return opensFirst(throwError(() => new ChannelUnavailableError(topic, cause)));
}

/**
 * Marks a source that fails at once for its stream to open first: refused, the request would get
 * an error status, after which EventSource clients never reconnect.
 */
function opensFirst<M extends MessageEvent<unknown>>(source: Observable<unknown>): ChannelSource<M> {
  return Object.assign(source, { [SOURCE_OPENS_FIRST]: true as const }) as unknown as ChannelSource<M>;
}

const ENGINE_METHODS = ['append', 'read', 'listen', 'close'] as const;

const CHANNEL_OPTION_NAMES = Object.keys({
  maxReplay: true,
  truncationEventType: true,
  onReplay: true,
  format: true,
  maxMessageBytes: true,
} satisfies Record<keyof ChannelOptions, true>);

/**
 * Checks what a channel only calls later, so that a wrong engine (a Redis client itself) or
 * callback fails here, naming it, not as an unavailable channel on every subscribe.
 * @throws {TypeError} naming the argument or option.
 */
function checkTypes(engine: ChannelEngine, options: ChannelOptions): void {
  const methods = engine as unknown as Partial<Record<string, unknown>> | null;
  if (
    typeof methods !== 'object' ||
    methods === null ||
    ENGINE_METHODS.some((name) => typeof methods[name] !== 'function')
  ) {
    throw new TypeError(
      `engine must be a ChannelEngine (memoryEngine(), redisEngine()), got ${describeValue(engine)}`,
    );
  }
  checkOptionsObject(options);
  checkOptionNames('channel', options, CHANNEL_OPTION_NAMES);
  const { onReplay, maxReplay, format } = options;
  if (onReplay !== undefined && typeof onReplay !== 'function') {
    throw new TypeError(`onReplay must be a function, got ${typeof onReplay}`);
  }
  if (maxReplay !== undefined && (typeof maxReplay !== 'object' || maxReplay === null)) {
    throw new TypeError(`maxReplay must be an object { events, bytes }, got ${describeValue(maxReplay)}`);
  }
  if (maxReplay !== undefined) checkOptionNames('maxReplay', maxReplay, ['events', 'bytes']);
  if (format !== undefined && (typeof format !== 'object' || format === null)) {
    throw new TypeError(`format must be an object, got ${describeValue(format)}`);
  }
  if (format !== undefined) checkOptionNames('format', format, FORMAT_OPTION_NAMES);
}

function positive(value: number, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describeValue(value)}`);
  if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`${name} must be a positive integer`);
  return value;
}

function ignore(): void {}
