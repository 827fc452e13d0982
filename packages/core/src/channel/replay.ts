import { describeValue } from '../http/source.js';
import { unlessAborted } from './aborted.js';
import type { HistoryPage, HistoryStore, ReadLimit, StoredMessage } from './engine.js';
import { checkEngineId, EngineContractError } from './errors.js';
import { messageSize } from './message-size.js';
import {
  compareStreamIds,
  formatStreamId,
  isZeroStreamId,
  parseStreamId,
  type StreamId,
} from './stream-id.js';
import type { TruncationReason } from './truncation.js';

/** The most a subscription replays; past it the subscriber gets the truncation signal instead. */
export interface ReplayLimit {
  /** Most events. */
  events: number;
  /**
   * Most bytes, as `messageSize` counts them, and 6 more for each line break in string data (each
   * line after the first costs `data: ` and a line end on the wire): within a few dozen bytes an
   * event of the replay's size on the wire.
   *
   * Data that is not a string is counted as its JSON, also when the routes' `serialize` writes it
   * otherwise (several lines, say `JSON.stringify(data, null, 2)`, or longer text): counting what
   * `serialize` writes would run it on every replayed event twice, since the store counts pages
   * without the routes' options, and each route's stream formats the event again from the data
   * object the channel hands out (its filters and operators see the object, not text). Lower
   * `bytes` by what such a `serialize` adds.
   */
  bytes: number;
}

/**
 * What a subscription replays: every event after the client's id, or nothing and why, and whether
 * the store knew the id (then the client had every event up to it).
 */
export type Replay =
  | { events: StoredMessage[]; truncated: false }
  | { events: []; truncated: true; reason: TruncationReason; known: boolean };

/** What a subscription's live listener holds while its history is read (its `ChannelFeed`). */
export interface HeldEvents {
  /** The first event held that the client did not have, while none held was lost before it. */
  heldFrom(): StreamId | undefined;
  /** The id after which the bus hands the listener every event, while none held was lost. */
  heldAfter(): StreamId | undefined;
}

/** Events per store read: reads stay small while the total is bounded by the replay limit. */
const PAGE_EVENTS = 500;

/**
 * Reads everything after `afterId`, page by page, up to `limit`. All or nothing: if the store lost
 * part of it, or more remains than `limit` allows, nothing is replayed and the reason is returned,
 * so a client never receives history with a hole it is not told about. An `afterId` that is no
 * stream id is unknown, and read from no store. Rejects with `signal`'s reason once it aborts: no
 * page is read for a client that left; with {@link EngineContractError} for a page over the limit
 * it was asked for, or whose ids are not each above the one before.
 *
 * `held` tells what the subscription's live listener holds (events published while history is read,
 * and every one after the id its bus started after), while none it held was lost: that history is
 * held already, and the client did not miss it, so it is neither read nor counted against `limit`.
 * A store that trims it meanwhile takes nothing from the client, and one that had the id the bus
 * started after reads no history at all.
 */
export async function readReplay(
  store: HistoryStore,
  topic: string,
  afterId: string,
  limit: ReplayLimit,
  signal?: AbortSignal,
  held?: HeldEvents,
): Promise<Replay> {
  const events: StoredMessage[] = [];
  let bytes = 0;
  let cursor = afterId;
  let last = parseStreamId(afterId);
  // No engine hands out such an id (the id rule), nor 0-0 (no id is below it): unknown to every
  // store, it reaches none of them, however long a client made it. A bus that started after 0-0
  // (an empty topic) holds no event its client had, since it had none.
  if (last === undefined || isZeroStreamId(last))
    return { events: [], truncated: true, reason: 'history', known: false };
  const complete: Replay = { events, truncated: false };
  // Only the very id: one above it is none the store handed out (or one from before it lost its data).
  const startedAfter = held?.heldAfter();
  if (startedAfter !== undefined && compareStreamIds(last, startedAfter) === 0) return complete;
  const overLimit: Replay = { events: [], truncated: true, reason: 'limit', known: true };
  const read = async (asked: ReadLimit) => {
    signal?.throwIfAborted();
    // As a promise whatever the engine answers, as for `listen`: a page handed back at once would
    // fail every resume of a client with a signal (each adapter's), and only theirs.
    const reading = (async () => store.read(topic, cursor, asked, signal))();
    const page = await unlessAborted(reading, signal);
    checkPage(page, asked, topic);
    return page;
  };
  for (;;) {
    const page = await read({
      count: Math.min(PAGE_EVENTS, limit.events - events.length),
      bytes: limit.bytes - bytes,
    });
    // Truncated past the first page: what followed the client's id was trimmed while it was read.
    if (page.truncated) return { events: [], truncated: true, reason: 'history', known: cursor !== afterId };
    const from = held?.heldFrom();
    const after = held?.heldAfter();
    const cut = page.events.findIndex((event) => isHeld(event.id, from, after));
    // The store's count is the whole page's: one cut short is counted event by event.
    bytes += cut < 0 ? page.bytes : 0;
    for (const event of cut < 0 ? page.events : page.events.slice(0, cut)) {
      last = checkFollows(event, last, topic);
      events.push(event);
      bytes += extraLineBytes(event.data) + (cut < 0 ? 0 : messageSize(event));
    }
    // What the store counted fits, but not on the wire: all or nothing, as for any limit.
    if (bytes > limit.bytes) return overLimit;
    // Read up to the id the bus started after (an id the store knows, as it answered): what follows is held.
    const reached = after !== undefined && compareStreamIds(last, after) >= 0;
    if (cut >= 0 || !page.more || reached) return complete;
    if (page.events.length > 0) cursor = page.events[page.events.length - 1]!.id;
    if (page.events.length > 0 && events.length < limit.events) continue;
    // More remains than the limit allows: the events up to the id the bus started after are held
    // by no one; past it, unless the next event is one the live listener holds.
    if (after !== undefined || from === undefined) return overLimit;
    const next = await read({ count: 1, bytes: Number.MAX_SAFE_INTEGER });
    const first = next.events[0];
    const covered = !next.truncated && (first === undefined ? !next.more : isHeld(first.id, from, after));
    return covered ? complete : overLimit;
  }
}

/**
 * Whether the listener holds the engine's id `id`: at or after the first event it holds, or after
 * the id its bus started after. An id that breaks the id rule fails later.
 */
function isHeld(id: string, from: StreamId | undefined, after: StreamId | undefined): boolean {
  const parsed = parseStreamId(id);
  if (parsed === undefined) return false;
  return (
    (from !== undefined && compareStreamIds(parsed, from) >= 0) ||
    (after !== undefined && compareStreamIds(parsed, after) > 0)
  );
}

/**
 * Checks that a page keeps to the limit it was asked for, with an event list and a byte count: one
 * over it would replay past `maxReplay`, into the client's queue. A bug in the engine, failed as
 * for an id that breaks the id rule.
 * @throws {EngineContractError}
 */
function checkPage(page: HistoryPage, asked: ReadLimit, topic: string): void {
  if (typeof page !== 'object' || page === null) {
    throw new EngineContractError(
      `The channel engine answered a read of topic "${topic}" with ${describeValue(page)}, not a page`,
    );
  }
  const count = Array.isArray(page.events) ? page.events.length : undefined;
  // Written so that a missing or NaN count fails too: added up, it would lift the byte limit off
  // every page after it.
  if (!(count !== undefined && count <= asked.count && page.bytes >= 0 && page.bytes <= asked.bytes)) {
    throw new EngineContractError(
      `The channel engine answered a read of topic "${topic}" with ${count} events of ` +
        `${page.bytes} bytes, asked for at most ${asked.count} events and ${asked.bytes} bytes`,
    );
  }
  // Taken as false, a missing `more` would end the replay before the rest, untold.
  if (typeof page.truncated !== 'boolean' || typeof page.more !== 'boolean') {
    throw new EngineContractError(
      `The channel engine answered a read of topic "${topic}" with truncated ${describeValue(page.truncated)} ` +
        `and more ${describeValue(page.more)}: both must be booleans`,
    );
  }
  const bad = page.events.findIndex((event: unknown) => typeof event !== 'object' || event === null);
  if (bad >= 0) {
    throw new EngineContractError(
      `The channel engine answered a read of topic "${topic}" with an event that is ${describeValue(page.events[bad])}`,
    );
  }
}

/**
 * The id of `event`, checked to follow `last`: sent in the page's order, an event below one sent
 * before it would be dropped as a duplicate, and the client never told.
 * @throws {EngineContractError}
 */
function checkFollows(event: StoredMessage, last: StreamId | undefined, topic: string): StreamId {
  const id = checkEngineId(event.id, topic);
  if (last !== undefined && compareStreamIds(id, last) <= 0) {
    throw new EngineContractError(
      `The channel engine answered a read of topic "${topic}" with the id ${event.id} after ` +
        `${formatStreamId(last)}: history must come oldest first, after the id it is read after`,
    );
  }
  return id;
}

/**
 * What `messageSize` leaves out of string data on the wire: each line break starts another line,
 * `data: ` and a line end, 6 bytes more than the break itself. Short lines would otherwise put a
 * replay counted within `maxReplay.bytes` several times over it into the client's queue.
 */
function extraLineBytes(data: unknown): number {
  if (typeof data !== 'string' || (!data.includes('\n') && !data.includes('\r'))) return 0;
  let breaks = 0;
  for (let i = 0; i < data.length; i++) {
    const char = data.charCodeAt(i);
    if (char === 10) breaks++;
    else if (char === 13) {
      breaks++;
      // CRLF is one line break.
      if (data.charCodeAt(i + 1) === 10) i++;
    }
  }
  return breaks * 6;
}
