import type { HeaderOverrides } from '../http/headers.js';
import { parseStreamId } from './stream-id.js';

/**
 * The response header a channel subscription sets when the history it was asked to replay is
 * incomplete: `SSE-History-Truncated: true`. Also sent as an event, see {@link HistoryTruncatedEvent}.
 */
export const HISTORY_TRUNCATED_HEADER = 'SSE-History-Truncated';

/** The default `type` of the truncation event. */
export const DEFAULT_TRUNCATION_EVENT_TYPE = 'history-truncated';

/**
 * Why events may be missing:
 * - `'history'`: the client's `Last-Event-ID` is unknown to the store or older than what it keeps;
 * - `'limit'`: more events followed it than the channel's `maxReplay` allows to replay;
 * - `'gap'`: the live feed lost events (e.g. Redis restarted without its data), or the route's
 *   `onOverflow` policy (`drop-oldest`, `drop-newest`) dropped events for a slow client, or a replay
 *   larger than its queue: the event then follows the dropped ones.
 */
export type TruncationReason = 'history' | 'limit' | 'gap';

/**
 * The event a subscriber receives, instead of a silent gap, where events may be missing. It has no
 * `id`, so a client that reconnects right after it still sends the id it had. Events after it are
 * complete again. Its `data` is always sent as JSON, whatever the route's `serialize`, `strict` or
 * `onInvalidMessage`: a route's encoding is for its own data, and must not keep this event from a
 * client (which would then miss events unaware, or, closed for it, reconnect for ever).
 *
 * @example
 * ```ts
 * source.addEventListener('history-truncated', () => reloadFullState());
 * ```
 */
export interface HistoryTruncatedEvent {
  type: string;
  data: {
    /**
     * The last id the client had before the gap, `null` if none, or if the id it resumed from can
     * be no channel's (no stream id: a client may send any text, of any length, and it is never
     * echoed). So the event stays a hundred bytes or so, within any route's `maxQueueBytes`.
     */
    lastEventId: string | null;
    reason: TruncationReason;
  };
}

/** Headers a truncated subscription's source carries (applied over the route's own). */
export const TRUNCATED_HEADERS: HeaderOverrides = Object.freeze({ [HISTORY_TRUNCATED_HEADER]: 'true' });

const RESERVED = new Set(['', 'message', 'error', 'open']);

/**
 * Checks a truncation event type: not one a client cannot tell apart (`message`), not one browsers
 * route to `onerror`/`onopen`, and a valid event type.
 */
export function checkTruncationType(type: string): string {
  if (typeof type !== 'string')
    throw new TypeError(`The truncation event type must be a string, not ${JSON.stringify(type)}`);
  if (RESERVED.has(type) || /[\r\n\0]/.test(type) || !type.isWellFormed())
    throw new RangeError(
      `The truncation event type must be a non-reserved event type, not ${JSON.stringify(type)}`,
    );
  return type;
}

/**
 * What a truncation event names for the id a client resumed from: the id as sent if it can be a
 * channel's (a stream id, at most 41 characters), else `null`. Echoed whole, a client's id of any
 * length would make the event larger than the route's queue, refused, and the client would miss
 * events unaware, or, closed for it, reconnect with the same id for ever.
 */
export function resumeIdToName(lastEventId: string | undefined): string | null {
  return lastEventId !== undefined && parseStreamId(lastEventId) !== undefined ? lastEventId : null;
}
