import type { GapNotice } from './gap-notice.js';
import type { EventQueue } from './queue.js';

/**
 * An overflow policy: an event of `size` bytes would take `queue` past `cap`. It returns `'close'`
 * to end the stream, `'skip'` to drop the new event, or the number of the source's queued events it
 * dropped to make room for it. `gap` is there for a source with a gap event, which tells its client
 * where events went missing.
 */
export type OverflowRule = (
  queue: EventQueue,
  size: number,
  cap: number,
  gap: GapNotice | undefined,
) => 'close' | 'skip' | number;

/** The overflow policies by name: adding one here is all a new policy takes. */
export const overflowPolicies = {
  /** End the response: the client reconnects with `Last-Event-ID`. */
  close: () => 'close',
  /** Keep what is queued, discard the new event. */
  'drop-newest': () => 'skip',
  /** Discard the oldest queued events until the new one fits (and the gap event that tells of them). */
  'drop-oldest': (queue, size, cap, gap) =>
    gap ? gap.dropOldest(queue, size, cap) : queue.dropOldest(cap - size),
} satisfies Record<string, OverflowRule>;

/** What to do when a slow client's queue would pass `maxQueueBytes`. */
export type OverflowPolicy = keyof typeof overflowPolicies;

/** Whether `policy` drops queued events one by one, so its queue must keep them apart, unjoined. */
export function dropsQueuedEvents(policy: OverflowPolicy): boolean {
  return policy === 'drop-oldest';
}

/** @throws {TypeError} naming the policies, when `policy` is not one. */
export function checkOverflowPolicy(policy: string): void {
  if (!Object.hasOwn(overflowPolicies, policy)) {
    const names = Object.keys(overflowPolicies).map((name) => `'${name}'`);
    throw new TypeError(`onOverflow must be one of ${names.join(', ')}, got ${JSON.stringify(policy)}`);
  }
}
