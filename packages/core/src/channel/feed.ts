import type { Subscriber } from 'rxjs';
import { isThenable } from '../http/source.js';
import {
  SUBSCRIBER_DEMAND,
  SUBSCRIBER_GAP_EVENT,
  type WithSubscriberDemand,
  type WithSubscriberGapEvent,
} from '../http/source-gap.js';
import type { GapKind, LiveListener, StoredMessage } from './engine.js';
import { checkEngineId } from './errors.js';
import type { Replay } from './replay.js';
import { compareStreamIds, parseStreamId, type StreamId } from './stream-id.js';
import type { HistoryTruncatedEvent, TruncationReason } from './truncation.js';

/**
 * Where events may be missing among the held ones. A class, told apart with `instanceof`: a held
 * message may have any fields of its own, `gap` among them.
 */
class HeldGap {
  constructor(
    readonly gap: TruncationReason,
    readonly kind?: GapKind,
  ) {}
}

type Held = StoredMessage | HeldGap;

/** What one subscriber of a channel is sent. */
export type ChannelEvent<M extends StoredMessage = StoredMessage> = M | HistoryTruncatedEvent;

/** Told how a subscription's resume went, then of each truncation it sends once live. */
export type ReplayHook = (outcome: 'hit' | 'miss' | 'truncated') => unknown;

/** How a feed turns a gap into the event a client sees. */
export type TruncationEventFactory = (
  lastEventId: string | null,
  reason: TruncationReason,
) => HistoryTruncatedEvent;

/**
 * One subscriber's live events. Registered with the bus before history is read, it holds what
 * arrives until {@link ChannelFeed.start}, which sends the replay, then the held events the replay
 * did not already contain, then everything live. Events are only ever sent in increasing id order.
 */
export class ChannelFeed implements LiveListener {
  #held: Held[] | undefined = [];
  #subscriber: Subscriber<ChannelEvent> | undefined;
  /** Ids at or below it were sent (or the client had them): a later copy is a duplicate. */
  #floor: StreamId | undefined;
  #lastSent: string | null;
  /** The bus ended while events were held: the subscriber completes once they are sent. */
  #ended = false;
  /**
   * {@link start} told of a truncation and sent no event since: the next one it finds tells of the
   * same hole. One found later is news, even with no event between: the client may have reloaded.
   */
  #told = false;
  #onReplay: ReplayHook | undefined;
  /** The first truncation sent is the one {@link start}'s outcome told of. */
  #outcomeTruncated = false;
  /** Every event after it reaches this listener, as the bus told ({@link startsAfter}). */
  #startsAfter: StreamId | undefined;

  constructor(
    private readonly topic: string,
    /** This subscription's: `null` names the id the client resumed from, if any. */
    private readonly truncation: TruncationEventFactory,
    private readonly filter: ((message: StoredMessage) => boolean) | undefined,
    /** Most events held while history is read; past it they are dropped for a truncation signal. */
    private readonly maxHeld: number,
    lastEventId: string | undefined,
  ) {
    this.#lastSent = lastEventId ?? null;
  }

  /**
   * The id after which the bus hands this listener every event, while none held was lost: history
   * after it is held already (see `readReplay`).
   */
  heldAfter(): StreamId | undefined {
    return this.heldGap ? undefined : this.#startsAfter;
  }

  /**
   * The id of the first event held that the client did not have, while none held was lost before
   * it: history from it on is held already (see `readReplay`).
   */
  heldFrom(): StreamId | undefined {
    const had = this.#lastSent === null ? undefined : parseStreamId(this.#lastSent);
    for (const item of this.#held ?? []) {
      if (item instanceof HeldGap) return undefined;
      const id = parseStreamId(item.id);
      // A bus that catches up may hand a new listener events from before it registered.
      if (id !== undefined && (had === undefined || compareStreamIds(id, had) > 0)) return id;
    }
    return undefined;
  }

  /** Whether a gap is already known among the held events. */
  get heldGap(): boolean {
    return this.#held?.some((item) => item instanceof HeldGap) ?? false;
  }

  startsAfter(id: string): void {
    this.#startsAfter = parseStreamId(id);
  }

  event(message: StoredMessage): void {
    const held = this.#held;
    if (held === undefined) this.#send(message);
    else if (held.length < this.maxHeld) held.push(message);
    else {
      // Holding more would be unbounded memory: keep the fact that events were lost instead, and
      // whether the store may have restarted its ids lower among them.
      const restarted = held.some(
        (item) => item instanceof HeldGap && item.gap === 'gap' && item.kind !== 'continue',
      );
      this.#held = [restarted ? new HeldGap('gap', 'restart') : new HeldGap('limit'), message];
    }
  }

  gap(kind: GapKind = 'restart'): void {
    if (this.#held === undefined) this.#truncated('gap', kind);
    else this.#held.push(new HeldGap('gap', kind));
  }

  /**
   * The bus will send nothing more (its engine closed). Completes rather than fails: an intended
   * shutdown is no error to log, and a completed source still ends the stream, counted as
   * `complete`, after what it was sent, and the client reconnects.
   */
  end(): void {
    if (this.#held !== undefined) this.#ended = true;
    else this.#subscriber?.complete();
  }

  /** Whether the subscription goes on: `onReplay` threw nothing (an async one fails it later). */
  #report(outcome: 'hit' | 'miss' | 'truncated'): boolean {
    let result: unknown;
    try {
      result = this.#onReplay?.(outcome);
    } catch (error) {
      this.#subscriber?.error(error);
      return false;
    }
    // Left unheard, its rejection would end a Node process by default.
    if (isThenable(result)) result.then(undefined, (error: unknown) => this.fail(error));
    return true;
  }

  /** The subscription cannot go on (its onReplay failed late): fails its subscriber. */
  fail(error: unknown): void {
    // Its stream has ended: nothing could hear it there.
    if (this.#subscriber?.closed === false) this.#subscriber.error(error);
    else console.error("rxsse: a channel's onReplay failed after its stream ended", error);
  }

  /** Its source will never be subscribed to (the client left first): holds nothing more. */
  abandon(): void {
    this.#held = undefined;
  }

  /**
   * Tells `onReplay` the outcome, then sends the truncation signal or `replay`, then the held
   * events, then goes live. Decided now, not when history was read: live events held meanwhile (a
   * handler that awaits more before it returns the source) may overflow, and its client is told so.
   */
  start(subscriber: Subscriber<ChannelEvent>, replay: Replay, onReplay?: ReplayHook): void {
    this.#subscriber = subscriber;
    this.#onReplay = onReplay;
    this.#outcomeTruncated = replay.truncated || this.heldGap;
    const outcome = this.#outcomeTruncated ? 'truncated' : replay.events.length > 0 ? 'hit' : 'miss';
    if (!this.#report(outcome)) return;
    if (replay.truncated) this.#truncated(replay.reason);
    // The client had every event up to its id, unless the store does not know the id: a held event
    // at or below it is a duplicate, after a replay over the limit or trimmed while read too.
    if (this.#lastSent !== null && !(replay.truncated && !replay.known))
      this.#floor = parseStreamId(this.#lastSent);
    this.#catchUp(replay.events, 0);
  }

  /**
   * Sends `items` from `index` on, then the events held meanwhile, in rounds, then goes live. An
   * event that arrives while one is sent (a subscriber that publishes) goes behind the rest: sent at
   * once, it would pass them, and they would be dropped as duplicates of ids already sent. While the
   * stream's transport is full (see `SUBSCRIBER_DEMAND`), it waits, holding live events: a replay
   * queued whole would pass a route's `maxQueueBytes` (a Web body before its runtime's first read,
   * a slow client), and its client would come back with the same id to the same overflow for ever.
   */
  #catchUp(items: readonly Held[], index: number): void {
    const subscriber = this.#subscriber as Subscriber<ChannelEvent> & WithSubscriberDemand;
    for (;;) {
      for (let i = index; i < items.length && !subscriber.closed; i++) {
        const room = subscriber[SUBSCRIBER_DEMAND]?.();
        if (room !== undefined) {
          room.then(() => this.#catchUp(items, i)).then(undefined, (error: unknown) => this.fail(error));
          return;
        }
        const item = items[i] as Held;
        if (item instanceof HeldGap) this.#truncated(item.gap, item.kind);
        else this.#send(item);
      }
      const held = this.#held ?? [];
      if (held.length === 0 || subscriber.closed) break;
      this.#held = [];
      [items, index] = [held, 0];
    }
    this.#held = undefined;
    this.#told = false;
    if (this.#ended) subscriber.complete();
  }

  #send(message: StoredMessage): void {
    const subscriber = this.#subscriber;
    if (!subscriber || subscriber.closed) return;
    // `unknown`: plain JavaScript may return anything from a filter.
    let wanted: unknown;
    try {
      const id = checkEngineId(message.id, this.topic);
      if (this.#floor && compareStreamIds(id, this.#floor) <= 0) return;
      this.#floor = id;
      wanted = this.filter?.(message) ?? true;
      // Only a Promise that a plain-JavaScript `async` filter returns costs more than two comparisons.
      if (wanted !== true && wanted !== false && isThenable(wanted)) refuseAsyncFilter(wanted);
    } catch (error) {
      // A filter that throws, or an engine that broke the id rule: this subscriber cannot go on.
      subscriber.error(error);
      return;
    }
    if (!wanted) return;
    this.#lastSent = message.id;
    this.#told = false;
    subscriber.next(message);
  }

  #truncated(reason: TruncationReason, kind?: GapKind): void {
    // After lost data the store may restart its ids lower: order only holds within one history.
    if (reason === 'gap' && kind !== 'continue') this.#floor = undefined;
    // A truncated replay, then held events lost too: the client reloads once for one hole.
    if (this.#told) return;
    this.#told = this.#held !== undefined;
    if (this.#outcomeTruncated) this.#outcomeTruncated = false;
    else if (!this.#report('truncated')) return;
    const subscriber = this.#subscriber as (Subscriber<ChannelEvent> & WithSubscriberGapEvent) | undefined;
    // A stream names the id its client has: the last one sent here may be one it dropped or refused.
    if (subscriber?.[SUBSCRIBER_GAP_EVENT]?.((lastEventId) => this.truncation(lastEventId, reason))) return;
    subscriber?.next(this.truncation(this.#lastSent, reason));
  }
}

/** Every Promise is truthy: taken for a yes, an async filter would pass every user's events. */
function refuseAsyncFilter(answer: PromiseLike<unknown>): never {
  // Its rejection is this error's to tell: unheard, it would end a Node process.
  answer.then(undefined, () => {});
  throw new TypeError(
    'a channel filter returned a Promise: it must return a boolean at once (no async filter)',
  );
}
