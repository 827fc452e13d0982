import type { MessageEvent } from '../encode/types.js';
import { utf8Length } from '../encode/utf8.js';
import type { GapEventFactory } from '../http/source-gap.js';
import type { EventQueue } from './queue.js';

/** The stream, as its gap events see it. */
export interface GapTarget {
  /** True once the stream ended: refusing a gap event may end it (`onInvalidMessage: 'close'`). */
  readonly ended: () => boolean;
  /**
   * The text of the gap event made for `name`, the id it names.
   * @throws why it cannot be sent: then refused.
   */
  readonly format: (message: MessageEvent<unknown>, name: string | null) => string;
  /** The source's factory threw, or its gap event cannot be sent: refused as a message that cannot be sent. */
  readonly refuse: (error: unknown) => void;
}

/** A gap event among the queued events, and the id it names. */
interface Gap {
  readonly name: string | null;
}

/** A queued event's id (`undefined`: it sets none), or a gap event. */
type Item = string | undefined | Gap;

/**
 * Where a source's gap event (`SOURCE_GAP_EVENT`) goes in one stream's queue. A hole is told by one
 * gap event right after the last event before it, naming that event's id: after the queue's last
 * event where the newest was dropped (`owed` until the next one is queued), and before the queue's
 * first where the oldest were. It keeps the id of each queued event, and where the gap events are,
 * the source's own among them (see `SUBSCRIBER_GAP_EVENT`); it makes each gap event's text (through
 * its {@link GapTarget}, which refuses one that cannot be sent) and makes room for it under the cap.
 * The stream keeps the counting and the writing.
 */
export class GapNotice {
  /**
   * What makes the gap event owed after the queue's last event, which goes before the next: the
   * source's gap event where the newest was dropped, or one the source sent itself that found no
   * room yet. `undefined` when none is owed.
   */
  owed: GapEventFactory | undefined = undefined;
  /** The queued events, oldest first from `#head`. */
  #items: Item[] = [];
  #head = 0;
  /** Where in `#items` the last event queued with an id is; before `#head` once it is gone. */
  #lastAt = -1;
  /** The client's last event id, of the events written, and whether the last one written was a gap event. */
  #writtenId: string | null = null;
  #writtenGap = false;

  constructor(
    private readonly event: GapEventFactory,
    private readonly target: GapTarget,
  ) {}

  /** The gap event owed after the queue's last event, as text; one that cannot be sent is owed no more. */
  owedText(): string | undefined {
    return this.#text(false);
  }

  /** Queues the owed gap event, `text` of `size` bytes from {@link owedText}, after the queue's last event. */
  queueOwed(queue: EventQueue, text: string, size: number): void {
    queue.add(text, size);
    this.#queuedGap();
  }

  /**
   * Queues the owed gap event alone, though no event followed the drop, if `queue` has room for it
   * under `cap`. Returns whether it did: then the queue is the stream's to write.
   */
  queueAlone(queue: EventQueue, cap: number): boolean {
    const text = this.owedText();
    if (text === undefined || this.target.ended()) return false;
    const size = utf8Length(text);
    if (queue.bytes() + size > cap) return false;
    this.queueOwed(queue, text, size);
    return true;
  }

  /**
   * The source sent a gap event of its own, which `make` makes: it is owed after the queue's last
   * event, in place of the stream's own one if that is owed (it tells of the same hole), and queued
   * at once if there is room, as {@link queueAlone} does. Returns whether it was.
   */
  own(make: GapEventFactory, queue: EventQueue, cap: number): boolean {
    this.owed = make;
    return this.queueAlone(queue, cap);
  }

  /**
   * The `drop-oldest` policy for a source with a gap event: drops the oldest events of `queue` (not
   * merged) to make room for `size` bytes and for the gap event that tells of them. It goes first,
   * since the hole is between the last event written and the first one left. Returns how many of the
   * source's events it dropped, or `'skip'` when the two cannot fit under `cap`.
   */
  dropOldest(queue: EventQueue, size: number, cap: number): number | 'skip' {
    const first = this.#text(true);
    if (this.target.ended()) return 0;
    const firstSize = first === undefined ? 0 : utf8Length(first);
    if (firstSize + size > cap) return 'skip';
    const dropped = this.#dropped(queue.dropOldest(cap - size - firstSize)) + this.#dropStale(queue);
    if (first !== undefined) this.#putFirst(queue, first, firstSize);
    return dropped;
  }

  /**
   * The text of the gap event that goes before the queue's first event (`first`) or after its last,
   * if any; one the source's factory cannot make, or the stream cannot send, is refused.
   */
  #text(first: boolean): string | undefined {
    // The last event the client got is a gap event already, which tells of these too.
    if (first && this.#writtenGap) return undefined;
    const name = first ? this.#writtenId : this.#tailName();
    try {
      // What a factory makes is checked as any message is: one that made nothing is refused, not
      // left out unheard, where its client would never hear of the hole.
      return this.target.format((first ? this.event : (this.owed ?? this.event))(name), name);
    } catch (error) {
      // Owed no more before it is refused: a refusal that ends the stream (`onInvalidMessage:
      // 'close'`) must not find it owed at the end, to make and refuse it a second time.
      if (!first) this.owed = undefined;
      this.target.refuse(error);
      return undefined;
    }
  }

  /** An event of the source, with this id, was queued last. */
  queued(id: unknown): void {
    if (typeof id === 'string') this.#lastAt = this.#items.push(id) - 1;
    else this.#items.push(undefined);
  }

  /** The gap event was queued last. */
  #queuedGap(): void {
    this.#items.push({ name: this.#tailName() });
    this.owed = undefined;
  }

  /** The transport took the `count` oldest events: returns how many were the source's. */
  taken(count: number): number {
    const items = this.#items;
    const end = this.#head + count;
    let gaps = 0;
    for (let i = this.#head; i < end; i++) {
      const item = items[i];
      this.#writtenGap = typeof item === 'object';
      if (this.#writtenGap) gaps++;
      else if (typeof item === 'string') this.#writtenId = item;
    }
    this.#remove(count);
    return count - gaps;
  }

  /** The stream closed with `count` events queued, none to be sent: returns how many were the source's. */
  cleared(count: number): number {
    return this.#dropped(count);
  }

  /** The `count` oldest events were dropped; returns how many were the source's. */
  #dropped(count: number): number {
    const items = this.#items;
    const end = this.#head + count;
    let gaps = 0;
    for (let i = this.#head; i < end; i++) if (typeof items[i] === 'object') gaps++;
    this.#remove(count);
    this.#settle();
    return count - gaps;
  }

  /**
   * Drops a gap event left first, which would follow `first` with no event between, and one after
   * events without an id only that names an id dropped: the client would not have it. The events
   * before such a one join the hole `first` tells. Returns how many of the source's it dropped.
   */
  #dropStale(queue: EventQueue): number {
    let dropped = 0;
    let i = this.#head;
    while (i < this.#items.length) {
      const item = this.#items[i];
      if (typeof item === 'string') break;
      if (item === undefined) i++;
      else if (i > this.#head && item.name === this.#writtenId) break;
      else {
        const count = i + 1 - this.#head;
        for (let k = 0; k < count; k++) queue.dropFirst();
        dropped += this.#dropped(count);
        i = this.#head;
      }
    }
    return dropped;
  }

  /** Puts the gap event `first` before the queued events. */
  #putFirst(queue: EventQueue, first: string, size: number): void {
    queue.addFirst(first, size);
    // `#lastAt` must not come to point at the gap event: an id gone stays before `#head`.
    if (this.#lastAt < this.#head) this.#lastAt = -1;
    else if (this.#head === 0) this.#lastAt++;
    const gap = { name: this.#writtenId };
    if (this.#head > 0) this.#items[--this.#head] = gap;
    else this.#items.unshift(gap);
    this.#settle();
  }

  /**
   * The newest event was dropped: unless a gap event is the last the client gets, one goes before the
   * next; a source's own one owed already tells of this hole too.
   */
  skipped(): void {
    this.owed ??= this.event;
    this.#settle();
  }

  /** The id the client has after the queue's last event. */
  #tailName(): string | null {
    return this.#lastAt >= this.#head ? (this.#items[this.#lastAt] as string) : this.#writtenId;
  }

  #remove(count: number): void {
    this.#head += count;
    const head = this.#head;
    if (head === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
      this.#lastAt = -1;
    } else if (head > 1024 && head * 2 > this.#items.length) {
      // As the queue does: a client stalled for hours must not grow the array without end.
      this.#items = this.#items.slice(head);
      this.#head = 0;
      this.#lastAt -= head;
    }
  }

  /** A gap event the client gets last already tells of events dropped after it. */
  #settle(): void {
    const items = this.#items;
    const last = items.length > this.#head ? typeof items[items.length - 1] === 'object' : this.#writtenGap;
    if (last) this.owed = undefined;
  }
}

const REASONS = new Set(['history', 'limit', 'gap']);

/**
 * The notice sent in place of a gap event larger than the queue: its `type`, and as data the id it
 * names and its `reason` (`'gap'` unless it gave one a truncation event has), the shape of a
 * channel's truncation event. Refused, the large one would leave its client unaware of the hole.
 */
export function smallGapEvent(made: MessageEvent<unknown>, name: string | null): MessageEvent<unknown> {
  const reason = (made.data as { reason?: unknown } | null | undefined)?.reason;
  return {
    type: made.type,
    data: { lastEventId: name, reason: typeof reason === 'string' && REASONS.has(reason) ? reason : 'gap' },
  };
}
