import type { MessageEvent } from '../encode/types.js';
import type { EngineContractError } from './errors.js';
import type { dataFromJson } from './stored-data.js';

/**
 * A message as a channel hands it out: its `data`, `type` and `retry`, with the id its store gave
 * it. No other field, on any engine (see {@link HistoryStore.append}).
 */
export type StoredMessage<M extends MessageEvent<unknown> = MessageEvent<unknown>> = M & {
  readonly id: string;
};

/** How much one {@link HistoryStore.read} may return. */
export interface ReadLimit {
  /** Most events. */
  count: number;
  /** Most bytes, counted as `messageSize` counts them. */
  bytes: number;
}

/** One page of history. */
export interface HistoryPage {
  /** Events after the requested id, oldest first: the longest run that fits the limit. */
  events: StoredMessage[];
  /** Sum of `messageSize` of `events`. */
  bytes: number;
  /**
   * The requested id is unknown to the store, or older than what it keeps: events that followed
   * it may be gone, so `events` is empty and the caller must say so rather than replay a gap.
   * Any string a client sends as its `Last-Event-ID` may be asked for, one that is no stream id
   * included: it is unknown, never a reason to reject (its client would come back with it for good).
   */
  truncated: boolean;
  /** More events follow the last one returned (the limit cut the page short). */
  more: boolean;
}

/**
 * Where a channel's events are kept. Two calls, so any ordered log can implement it (Redis Streams,
 * NATS JetStream, a database table).
 *
 * **The id rule**: every id an engine hands out (from `append`, in a page, to a listener) is a
 * stream id `<ms>-<seq>` (two unsigned 64-bit integers, see `parseStreamId`), strictly increasing
 * per topic. Channels compare ids to send each event once where replay and live delivery meet; an
 * id that breaks the rule fails the publish or the subscriber with {@link EngineContractError}
 * rather than risk a duplicate or a reordered event.
 */
export interface HistoryStore {
  /**
   * Stores `message` at the end of `topic` and resolves to its id: the message's own `id` if it has
   * one, in its plain form (`5-1` for `0005-01`, as Redis keeps it; an engine may refuse it, e.g. if
   * it is not after the last id), else one the store assigns.
   * Ids follow the id rule above. The event is the message's `data`, `type`, `retry` and id alone:
   * a field beyond them (a channel's `publish` refuses it) is not stored, and no read or listener
   * hands it out, so what a `filter` sees is the same on every engine, live and replayed. Data other
   * than a string is stored as JSON and handed out as {@link dataFromJson} reads it back.
   * Rejects, never resolves, if the message was not stored for certain;
   * with a `RangeError` for an own id that is no stream id, is `0-0` (Redis refuses it: no id is
   * below it), or is not after the topic's last id (the caller's id is at fault, not the store).
   */
  append(topic: string, message: MessageEvent<unknown>): Promise<string>;
  /**
   * The events of `topic` after `afterId`, oldest first, within `limit`: never a page with a hole.
   * If the event right after `afterId` does not fit `limit.bytes`, the page is empty with `more`.
   * A page over `limit`, without its `events` (each an object) or a `bytes` count, with a
   * `truncated` or `more` that is no boolean, or with an id not above the one before it (`afterId`
   * for the first), fails the subscription that read it with {@link EngineContractError}, as does
   * an answer that is no page at all.
   * `signal`, if given, aborts once the subscription that asked left: an engine may drop a read
   * that has not begun (one waiting for a connection or its turn), rejecting with its reason.
   */
  read(topic: string, afterId: string, limit: ReadLimit, signal?: AbortSignal): Promise<HistoryPage>;
}

/** Receives a topic's live events from a {@link LiveBus}. Must not throw. */
export interface LiveListener {
  /**
   * An event appended after the listener was registered, or just before it by a bus that was still
   * catching up (the channel drops those a resuming client had). Each arrives once, in id order; one
   * message object is handed to every listener of the topic in this process, so it is encoded once
   * per route.
   */
  event(message: StoredMessage): void;
  /**
   * Events may have been lost between the last `event` and the next. `kind` says how the ids after
   * it go on: `'continue'`, above every id before it (the reader fell behind the store's trimming),
   * so the channel still sends each event once, even one a resume has just replayed; `'restart'`,
   * the default, possibly lower (the store lost its data), so the channel accepts lower ids again.
   */
  gap(kind?: GapKind): void;
  /**
   * Optional: told once, before `listen` resolves, that every event of the topic after `id` (one the
   * store handed out, the newest the bus had read when the listener registered, or `0-0` if the
   * topic was empty then) reaches it. A resume then reads no history past `id`: what follows is
   * held by the listener, so a store that trims it meanwhile, or a bus still bringing it, costs the
   * client nothing (no false truncation signal), and a client that had `id` reads no history at
   * all. A bus that cannot tell calls nothing.
   */
  startsAfter?(id: string): void;
  /**
   * No event will follow: the bus stopped for good (its engine was closed). Called at most once,
   * never after the listener was unregistered. A channel completes the subscription's source, so
   * its stream ends (close reason `complete`) and its client reconnects. Optional on both sides: a
   * bus that never calls it leaves its subscriptions open, and a listener without it is not told.
   */
  end?(): void;
}

/** How ids go on after a {@link LiveListener.gap}: above those before it, or possibly lower. */
export type GapKind = 'continue' | 'restart';

/**
 * Live delivery of appended events, to every process that listens.
 *
 * Each event must reach a listener once, in id order per topic (see {@link LiveListener.event}). A
 * channel drops a live id at or below the last one its subscriber was sent (or had, at a resume) as
 * a duplicate: that is how a bus that sends an event again, or one a replay already sent, stays
 * harmless. It cannot tell such a copy from an event that arrives out of order and was never sent
 * without remembering every id it sent, so a bus that delivers out of order loses those events for
 * its subscribers, with no error and no truncation event. A bus that cannot keep the order must
 * report a {@link LiveListener.gap} (`'restart'` lets lower ids through) rather than deliver late.
 */
export interface LiveBus {
  /**
   * Registers `listener` for `topic`. Resolves, with the function that unregisters it, once every
   * event appended from then on is certain to reach it: a history read started after that point
   * and the live events together leave no hole. Anything else it resolves to fails the subscription
   * with {@link EngineContractError}.
   */
  listen(topic: string, listener: LiveListener): Promise<() => void>;
}

/**
 * A store and a bus that share ids: what a channel runs on. `memoryEngine()` in `@rxsse/core`
 * (one process), `redisEngine()` in `@rxsse/redis` (any number of processes).
 */
export interface ChannelEngine extends HistoryStore, LiveBus {
  /**
   * Stops live delivery and releases what the engine opened. Every listener still registered is
   * ended ({@link LiveListener.end}) before it resolves, so the subscriptions still open complete:
   * their streams end and their clients reconnect. From then on `append` rejects (no subscriber
   * could receive the event), and `listen` too, so a new subscription's source fails with
   * `ChannelUnavailableError`, and its client reconnects again (to another instance, if any).
   */
  close(): Promise<void>;
}
