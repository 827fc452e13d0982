import type { Observable } from 'rxjs';
import type { MessageEvent } from '../encode/types.js';
import { describeValue, isThenable } from '../http/source.js';
import {
  type GapEventFactory,
  SUBSCRIBER_DEMAND,
  SUBSCRIBER_GAP_EVENT,
  type WithSubscriberDemand,
  type WithSubscriberGapEvent,
} from '../http/source-gap.js';
import { SOURCE_RELEASE, type WithSourceRelease } from '../http/source-release.js';
import type { CloseReason } from './stats.js';
import { nextTurn } from './timers.js';

/** The stream, as its source's feed sees it. */
export interface FeedTarget {
  /** Set once the stream ended. */
  readonly closeReason: CloseReason | undefined;
  /** True while the transport has room. */
  readonly writable: boolean;
  /**
   * A pushing source sends its first message: the stream opens before it takes it (it subscribes
   * first, so that a source that fails at once can be refused before any byte). `message`, in hand
   * meanwhile, is that first message, if it opens with one.
   */
  open(message?: MessageEvent<unknown>): void;
  /** A message from a pushing source: queued, written at the end of the tick. */
  push(message: MessageEvent<unknown>): void;
  /** Whether the stream places a pushing source's own gap events; it keeps no ids otherwise. */
  readonly placesGaps: boolean;
  /** A gap event of a pushing source's own, see `SUBSCRIBER_GAP_EVENT`, once the stream is open. */
  pushGap(make: GapEventFactory): void;
  /** A message pulled while the transport has room: written at once. */
  send(message: MessageEvent<unknown>): void;
  /** The source completed or failed. */
  end(reason: 'complete' | 'error', error?: unknown): void;
  /** An error of user code that must not end the stream (a teardown, an iterator's `return()`). */
  reportError(error: unknown): void;
  /**
   * Reports as {@link reportError} does, holding nothing of the stream: for a promise of user code
   * that may settle long after the stream ended, or never.
   */
  laterReporter(): (error: unknown) => void;
}

/** A source being fed into a stream. */
export interface SourceFeed {
  /** The transport has room again. */
  resume(): void;
  /**
   * The stream ended: release the source (unsubscribe, or the iterator's `return()`). Returns how
   * many messages the source sent before the end that the stream never took (they waited behind
   * the one in hand when user code the stream called ended it), for the stream to count dropped.
   */
  stop(): number;
}

/**
 * Feeds an Observable: one small object instead of three closures. It is an rxjs subscriber by shape
 * (`closed`, `add`, `remove`, `unsubscribe`), so rxjs hands it to the source as is: a synchronous
 * source sees `closed` turn true the moment the stream ends, and stops there instead of producing
 * everything before `subscribe()` returns.
 */
export class ObservableFeed implements SourceFeed, WithSubscriberGapEvent, WithSubscriberDemand {
  /**
   * Nearly every feed holds one teardown (a Subject's): it has a slot of its own, where an array
   * for it would cost ~56 bytes more per connection. Any later ones go to {@link #moreTeardowns}.
   */
  #teardown: unknown;
  #moreTeardowns: unknown[] | undefined;
  /**
   * The stream, until unsubscribed. A source that keeps its subscriber after the teardown (a
   * listener it never removes) then holds this feed alone, as an rxjs subscriber lets go of its
   * destination, not the stream and its connection.
   */
  #target: FeedTarget | undefined;
  /** Where the errors of teardowns go once the stream is let go of. */
  #report: ((error: unknown) => void) | undefined;
  /**
   * `null` while the stream takes a message, with what the source sent meanwhile (a metrics hook or
   * a `serialize` that emits into it) waiting behind it: taken at once, it would be queued ahead of
   * the message it interrupted, or lost if it ended the stream, and a hook that emits on every drop
   * would recurse until the stack overflowed. {@link UNOPENED} until the source's first message, for
   * a stream that opens then: the check costs the messages after it nothing.
   */
  #waiting: (MessageEvent<unknown> | SourceEnd | SourceGap)[] | null | undefined;

  constructor(target: FeedTarget) {
    this.#target = target;
  }

  /** Whether unsubscribed: the stream is let go of then, so no field of its own is needed. */
  get closed(): boolean {
    return this.#target === undefined;
  }

  /**
   * Subscribes; the stream must hold this feed first, since the source may end it synchronously.
   * `unopened`: the stream opens at the source's first message (see {@link FeedTarget.open}).
   */
  start(source: Observable<MessageEvent<unknown>>, unopened = false): void {
    const target = this.#target!;
    if (unopened) this.#waiting = UNOPENED;
    try {
      // rxjs returns the subscriber itself; another Observable may return its own subscription.
      const subscription: unknown = source.subscribe(this);
      if (subscription !== this) this.add(subscription);
    } catch (error) {
      // A hand-written subscribe() may throw after it ended the stream: its bug is still heard.
      if (target.closeReason === undefined) target.end('error', error);
      else target.laterReporter()(error);
    }
    if (this.#waiting === UNOPENED) {
      // Nothing sent yet: the stream opens as subscribe() returns, unless it ended meanwhile.
      if (target.closeReason === undefined) this.#take(NO_MESSAGE, true);
      else this.#waiting = undefined;
    }
    // The source may have completed, errored or been closed synchronously inside subscribe().
    if (target.closeReason !== undefined) this.unsubscribe();
  }

  next(message: MessageEvent<unknown>): void {
    const target = this.#target;
    if (target === undefined) return;
    const waiting = this.#waiting;
    if (waiting === undefined) this.#take(message);
    else if (waiting === UNOPENED) this.#take(message, true);
    // Sent once the stream ended (by a hook of its teardown, before it unsubscribed): not the stream's.
    else if (target.closeReason === undefined) this.#waited(message);
  }
  [SUBSCRIBER_GAP_EVENT](make: GapEventFactory): boolean {
    const target = this.#target;
    // Once unsubscribed, as `next` does: nothing is sent, and the source need not name it.
    if (target === undefined) return true;
    if (!target.placesGaps) return false;
    // A message as any other: it may open the stream, and waits behind one the stream is taking.
    const waiting = this.#waiting;
    if (waiting === undefined || waiting === UNOPENED) this.#take(NO_MESSAGE, waiting === UNOPENED, make);
    else this.#waited(new SourceGap(make));
    return true;
  }
  [SUBSCRIBER_DEMAND](): Promise<void> | undefined {
    const target = this.#target;
    if (target === undefined || target.writable) return undefined;
    let room = rooms.get(this);
    if (room === undefined) {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      room = { opened, open };
      rooms.set(this, room);
    }
    return room.opened;
  }
  error(error: unknown): void {
    // Once unsubscribed, as `next` does: an end waiting behind a message is the source's last.
    if (this.#target === undefined) return;
    // A failure before any message refuses the stream: it never opens.
    if (this.#waiting === UNOPENED) this.#waiting = undefined;
    if (!this.#waited(new SourceEnd('error', error))) this.#target?.end('error', error);
  }
  complete(): void {
    if (this.#target === undefined) return;
    // Completed with nothing sent: the stream opens first.
    if (this.#waiting === UNOPENED) this.#take(NO_MESSAGE, true);
    if (!this.#waited(new SourceEnd('complete'))) this.#target?.end('complete');
  }

  /** What waits behind the message the stream took, if anything. */
  #sentMeanwhile(): (MessageEvent<unknown> | SourceEnd | SourceGap)[] | null | undefined {
    return this.#waiting;
  }

  /** Whether the stream is taking a message: `sent` then waits behind it. */
  #waited(sent: MessageEvent<unknown> | SourceEnd | SourceGap): boolean {
    if (this.#waiting === undefined) return false;
    this.#waiting ??= [];
    this.#waiting.push(sent);
    return true;
  }

  /**
   * Hands `message` to the stream, then what the source sent while it took it, in the order sent.
   * `opening`: the stream opens first, and what the source sends meanwhile (an `opened` or `wrote`
   * hook that emits into it) waits behind `message` too. `gap`: the source's own gap event, taken
   * in place of a message.
   */
  #take(message: MessageEvent<unknown>, opening = false, gap?: GapEventFactory): void {
    // Held here, not read from the field: a source that unsubscribes meanwhile (see `unsubscribe`)
    // still has this message, and what it sent before, taken.
    const target = this.#target;
    if (target === undefined) return;
    this.#waiting = null;
    try {
      if (opening) target.open(message === NO_MESSAGE ? undefined : message);
      if (message !== NO_MESSAGE) target.push(message);
      else if (gap !== undefined) target.pushGap(gap);
      // Taken from where it waits, oldest first: what the stream has not taken when it ends is still
      // there, for `stop()` to count. A round: what was sent while the stream took the round before.
      const waiting = this.#sentMeanwhile();
      if (!waiting) return;
      let rounds = 0;
      let left = 0;
      while (waiting.length > 0) {
        if (left === 0) {
          if (++rounds > MAX_ROUNDS) {
            target.end('error', new RangeError(ENDLESS));
            return;
          }
          left = waiting.length;
        }
        if (target.closeReason !== undefined) return;
        left--;
        const next = waiting.shift()!;
        if (next instanceof SourceEnd) target.end(next.reason, next.error);
        else if (next instanceof SourceGap) target.pushGap(next.make);
        else target.push(next);
      }
    } finally {
      this.#waiting = undefined;
    }
  }
  add(teardown: unknown): void {
    if (!teardown || teardown === this) return;
    if (isThenable(teardown)) this.#settled(teardown);
    else if (this.closed) this.#run(teardown);
    else if (this.#teardown === undefined) this.#teardown = teardown;
    // A literal holds the second in one slot, where pushing onto `[]` reserves seventeen.
    else if (this.#moreTeardowns) this.#moreTeardowns.push(teardown);
    else this.#moreTeardowns = [teardown];
  }
  remove(teardown: unknown): void {
    if (teardown !== undefined && teardown === this.#teardown) {
      // The next one takes its slot, so they still run in the order they were added.
      this.#teardown = this.#moreTeardowns?.shift();
      return;
    }
    const index = this.#moreTeardowns?.indexOf(teardown) ?? -1;
    if (index >= 0) this.#moreTeardowns!.splice(index, 1);
  }
  unsubscribe(): void {
    const target = this.#target;
    if (target === undefined) return;
    this.#report = target.laterReporter();
    this.#target = undefined;
    this.resume();
    const first = this.#teardown;
    const more = this.#moreTeardowns;
    this.#teardown = this.#moreTeardowns = undefined;
    if (first !== undefined) this.#run(first);
    if (more) for (const teardown of more) this.#run(teardown);
    // The source unsubscribed its own subscriber (a `take(1)` by hand): nothing more can come, and
    // the stream ends as on its completion, instead of holding its client open with no source.
    // While the stream takes a message (a hook unsubscribed), the end waits behind it, as one sent.
    if (target.closeReason !== undefined) return;
    const waiting = this.#waiting;
    if (waiting === undefined || waiting === UNOPENED) target.end('complete');
    else this.#waited(new SourceEnd('complete'));
  }
  resume(): void {
    // A pushed source is not paused (its events wait in the queue); one that pulls may wait for room.
    const room = rooms.get(this);
    if (room === undefined) return;
    rooms.delete(this);
    room.open();
  }
  stop(): number {
    this.unsubscribe();
    // What waits behind the message in hand goes with the source: the messages among it were sent
    // before the end, and are lost.
    const waiting = this.#waiting;
    if (!waiting || waiting === UNOPENED) return 0;
    let unsent = 0;
    for (const sent of waiting) if (!(sent instanceof SourceEnd || sent instanceof SourceGap)) unsent++;
    waiting.length = 0;
    return unsent;
  }

  /**
   * A promise given as a teardown: what an async subscribe function returns (rxjs hands that of
   * `new Observable(async (subscriber) => ...)` to `add`). What it resolves with is the teardown;
   * what it rejects with is the source's error, or reported once the stream ended: unheard, it
   * would end a Node process.
   */
  #settled(subscription: PromiseLike<unknown>): void {
    subscription.then(
      (teardown) => this.add(teardown),
      (error) => {
        if (this.#target) this.error(error);
        else this.#report!(error);
      },
    );
  }

  /** Runs a teardown once unsubscribed: what it throws or rejects with is reported, never thrown. */
  #run(teardown: unknown): void {
    const report = this.#report!;
    try {
      const result =
        typeof teardown === 'function' ? teardown() : (teardown as { unsubscribe(): unknown }).unsubscribe();
      heard(result, report);
    } catch (error) {
      report(error);
    }
  }
}

/**
 * The wait for room of each feed whose source asked for it ({@link SUBSCRIBER_DEMAND}), kept aside:
 * a field would cost every connection, and nearly every source pushes.
 */
const rooms = new WeakMap<ObservableFeed, { opened: Promise<void>; open: () => void }>();

/** See `ObservableFeed.#waiting`: never pushed to. */
const UNOPENED: never[] = [];
/** What {@link ObservableFeed} takes when the stream opens with no message: a source may send `undefined`. */
const NO_MESSAGE = {} as MessageEvent<unknown>;

/**
 * Rounds of messages sent while the stream took those of the round before: a finite hook sends a
 * few; one that sends on every drop (of a client that takes nothing) would send for good.
 */
const MAX_ROUNDS = 1000;
const ENDLESS = `the source sent messages while the stream took those it sent before, ${MAX_ROUNDS} rounds over: a metrics hook or serialize that emits into the source for every message it handles`;

/** A completion or failure the source sent while the stream took one of its messages. */
class SourceEnd {
  constructor(
    readonly reason: 'complete' | 'error',
    readonly error?: unknown,
  ) {}
}

/** A gap event of its own the source sent while the stream took one of its messages. */
class SourceGap {
  constructor(readonly make: GapEventFactory) {}
}

/**
 * @internal Pulls an iterator makes at most before the event loop gets a turn (see `IteratorFeed`):
 * a transport that pulls a route's iterator itself pulls as many.
 */
export const PULLS_PER_TURN = 1024;

/** Feeds an AsyncIterable: pulls one message at a time, and only while the transport has room. */
export class IteratorFeed implements SourceFeed {
  /**
   * The stream, until it ends. A pull may outlive it, waiting on what lives on (a quiet topic, a
   * shared promise): it then holds this feed alone, not the stream and its connection.
   */
  #target: FeedTarget | undefined;
  #iterator: AsyncIterator<MessageEvent<unknown>> | undefined;
  #wake: (() => void) | undefined;

  constructor(target: FeedTarget) {
    this.#target = target;
  }

  /** Pulls `iterator`, the stream's source's (made before the stream opened). */
  start(iterator: AsyncIterator<MessageEvent<unknown>>): void {
    this.#iterator = iterator;
    void this.#pull(iterator);
  }

  /** Holds `iterator` unpulled, for a stream that ends before it starts: {@link stop} ends it. */
  adopt(iterator: AsyncIterator<MessageEvent<unknown>>): void {
    this.#iterator = iterator;
  }

  resume(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Ends the iterator: its `return()` may not delay or skip the close, nor hold the stream. */
  stop(): number {
    const iterator = this.#iterator;
    const target = this.#target;
    this.#iterator = this.#target = undefined;
    if (iterator && target) endIterator(iterator, target.laterReporter());
    this.resume();
    // Pulled one at a time: nothing waits here.
    return 0;
  }

  async #pull(iterator: AsyncIterator<MessageEvent<unknown>>): Promise<void> {
    let pulls = 0;
    try {
      // No local holds the stream across a wait: it is read from the feed each time.
      while (this.#open() !== undefined) {
        if (!this.#open()!.writable) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          continue;
        }
        // An iterator with nothing to wait for (a generator that only yields) resolves each pull in
        // a microtask, and a transport whose client reads as fast never says full: every so many
        // pulls the event loop gets a turn, or its timers, other requests and this client's own
        // close would wait for the source to end.
        if (++pulls === PULLS_PER_TURN) {
          pulls = 0;
          await nextTurn();
          continue;
        }
        let result: IteratorResult<MessageEvent<unknown>>;
        try {
          result = await iterator.next();
        } catch (error) {
          // An iterator whose next() failed is done, as for `for await`: not returned after.
          this.#iterator = undefined;
          throw error;
        }
        if (!this.#received(result)) return;
      }
    } catch (error) {
      this.#open()?.end('error', error);
    }
  }

  /** Hands a pulled result to the stream, if still open; false once there is nothing more to pull. */
  #received(result: IteratorResult<MessageEvent<unknown>>): boolean {
    const target = this.#open();
    if (target === undefined) return false;
    // As `for await` refuses it: read on, its `value` would be refused on every pull, without end.
    if (typeof result !== 'object' || result === null) {
      this.#iterator = undefined;
      throw new TypeError(`the iterator's next() gave ${describeValue(result)}, not an object`);
    }
    if (result.done) {
      // Finished: its own cleanup ran, and `for await` would not return() it either.
      this.#iterator = undefined;
      target.end('complete');
      return false;
    }
    target.send(result.value);
    return true;
  }

  /** The stream while it is open; `undefined` once it ended. */
  #open(): FeedTarget | undefined {
    const target = this.#target;
    return target?.closeReason === undefined ? target : undefined;
  }
}

/**
 * @internal The iterator a handler made already (an async generator, `events.on`), which may hold
 * what only its `return()` releases. An AsyncIterable that is not one holds nothing yet, and is not
 * asked for an iterator only to end it. A source whose getters throw (a Proxy's) is no iterator to
 * end: the throw goes to `report`, since the source is being let go of and nothing else would hear it.
 */
export function madeIterator<T>(
  source: unknown,
  report: (error: unknown) => void,
): AsyncIterator<T> | undefined {
  try {
    const it = source as Partial<AsyncIterator<T>> | null;
    return typeof it?.next === 'function' && typeof it.return === 'function'
      ? (it as AsyncIterator<T>)
      : undefined;
  } catch (error) {
    report(error);
    return undefined;
  }
}

/**
 * @internal Lets go of a source no stream will feed from: what it holds before it is subscribed
 * (see `SOURCE_RELEASE`), and the iterator a handler made ({@link madeIterator}). What either throws
 * goes to `report`.
 */
export function releaseSource(source: unknown, report: (error: unknown) => void): void {
  releaseHeld(source, report);
  endIterator(madeIterator(source, report), report);
}

/** @internal Lets go of what `source` holds before it is subscribed (see `SOURCE_RELEASE`). */
export function releaseHeld(source: unknown, report: (error: unknown) => void): void {
  try {
    const release = (source as WithSourceRelease | null | undefined)?.[SOURCE_RELEASE];
    if (typeof release === 'function') release.call(source);
  } catch (error) {
    report(error);
  }
}

/** @internal Ends an iterator: what its `return()` (user code) throws or rejects with goes to `report`. */
export function endIterator(it: AsyncIterator<unknown> | undefined, report: (error: unknown) => void): void {
  try {
    heard(it?.return?.(), report);
  } catch (error) {
    report(error);
  }
}

/**
 * A callback typed to return nothing may still be async (`onClose: async () => ...`): its rejection
 * is a throw too, handed to `onRejected` instead of becoming an unhandled rejection, which ends a
 * Node process by default.
 */
export function heard(result: unknown, onRejected: (error: unknown) => void): void {
  if (isThenable(result)) result.then(undefined, onRejected);
}
