import type { MessageEvent } from '../encode/types.js';
import type { EventQueue } from './queue.js';

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
 * first where the oldest were. It keeps the id of each queued event, and where the gap events are.
 */
export class GapNotice {
  /** The newest event was dropped and no gap event follows the queue's last: one goes before the next. */
  owed = false;
  /** The queued events, oldest first from `#head`. */
  #items: Item[] = [];
  #head = 0;
  /** Where in `#items` the last event queued with an id is; before `#head` once it is gone. */
  #lastAt = -1;
  /** The client's last event id, of the events written, and whether the last one written was a gap event. */
  #writtenId: string | null = null;
  #writtenGap = false;

  constructor(private readonly event: (lastEventId: string | null) => MessageEvent<unknown>) {}

  /** The gap event that goes after the queue's last event. */
  tail(): MessageEvent<unknown> {
    return this.event(this.#tailName());
  }

  /**
   * The gap event that goes before the queue's first event, where the oldest are dropped; undefined
   * when the last event the client got is a gap event already, which tells of these too.
   */
  head(): MessageEvent<unknown> | undefined {
    return this.#writtenGap ? undefined : this.event(this.#writtenId);
  }

  /** An event of the source, with this id, was queued last. */
  queued(id: unknown): void {
    if (typeof id === 'string') this.#lastAt = this.#items.push(id) - 1;
    else this.#items.push(undefined);
  }

  /** The gap event was queued last. */
  queuedGap(): void {
    this.#items.push({ name: this.#tailName() });
    this.owed = false;
  }

  /** The transport took the `count` oldest events. */
  taken(count: number): void {
    const items = this.#items;
    const end = this.#head + count;
    for (let i = this.#head; i < end; i++) {
      const item = items[i];
      this.#writtenGap = typeof item === 'object';
      if (typeof item === 'string') this.#writtenId = item;
    }
    this.#remove(count);
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
   * Drops the oldest events of `queue` (not merged) until `keep` bytes are left, and puts the gap
   * event `first` (`size` bytes, from {@link head}) before the rest. Returns how many of the
   * source's events it dropped.
   */
  dropOldest(queue: EventQueue, keep: number, first: string | undefined, size: number): number {
    const dropped = this.#dropped(queue.dropOldest(keep)) + this.#dropStale(queue);
    if (first !== undefined) this.#putFirst(queue, first, size);
    return dropped;
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

  /** The newest event was dropped: unless a gap event is the last the client gets, one goes before the next. */
  skipped(): void {
    this.owed = true;
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
    if (last) this.owed = false;
  }
}
