import type { MessageEvent } from '../encode/types.js';

/**
 * Where a source's gap event (`SOURCE_GAP_EVENT`) goes in one stream's queue: owed once a drop
 * policy dropped some of the source's events, queued after them, and owed again only if it is
 * dropped itself before the client has it. It also knows the id of the last event before it.
 */
export class GapNotice {
  /** Events were dropped and the gap event is not queued yet: it goes before the next event queued. */
  owed = false;
  /** Events queued before the gap event while it waits in the queue, else -1. */
  #ahead = -1;
  /** The id of the last event queued, and of the last one written with every one before it. */
  #lastId: string | null = null;
  #writtenId: string | null = null;

  constructor(private readonly event: (lastEventId: string | null) => MessageEvent<unknown>) {}

  /** The gap event, after the last event queued, or with none queued (all dropped), the last written. */
  message(queued: boolean): MessageEvent<unknown> {
    return this.event(queued ? this.#lastId : this.#writtenId);
  }

  /** An event of the source, with this id, was queued. */
  queued(id: unknown): void {
    if (typeof id === 'string') this.#lastId = id;
  }

  /** The gap event was queued behind `ahead` events. */
  added(ahead: number): void {
    this.#ahead = ahead;
    this.owed = false;
  }

  /** The transport took `count` events, `empty` the queue. */
  taken(count: number, empty: boolean): void {
    if (this.#ahead >= 0) this.#ahead = this.#ahead >= count ? this.#ahead - count : -1;
    if (empty) this.#writtenId = this.#lastId;
  }

  /** The newest event was dropped: the client is told before the next one. */
  skipped(): void {
    this.owed = true;
  }

  /**
   * `count` of the oldest queued events were dropped; returns how many were the source's. A gap
   * event still queued follows them, so it tells the client already; one among them is owed again.
   */
  droppedOldest(count: number): number {
    if (this.#ahead >= count) {
      this.#ahead -= count;
      return count;
    }
    const gapDropped = this.#ahead >= 0;
    this.#ahead = -1;
    this.owed = true;
    return gapDropped ? count - 1 : count;
  }
}
