/** One event as the client delivers it. */
export interface SseEvent<T extends string = string, D = string> {
  /** The event type; `message` when the server sent none. */
  readonly type: T;
  /** The data, decoded as the contract declares (with no contract, the text that arrived). */
  readonly data: D;
  /**
   * The last event id at this event, `''` if none: what the client resumes from if it reconnects
   * now. While neither the stream nor `lastEventId` set one, it resumes from the `headers` option's
   * `Last-Event-ID`, if any, which this does not show.
   */
  readonly id: string;
}

/**
 * Why events may be missing, as an rxsse channel reports it: the id the client resumed from is
 * unknown or too old (`history`), more events followed it than the channel replays (`limit`), or the
 * channel's live feed lost events, or the route dropped some for a slow client (`gap`).
 */
export interface HistoryTruncatedData {
  /**
   * The last id the client had before the gap, `null` if none, or if it resumed from an id that can
   * be no channel's (the server never echoes one).
   */
  lastEventId: string | null;
  reason: 'history' | 'limit' | 'gap';
}

/** rxsse's signal that events were lost: reload state that depends on all of them. */
export type HistoryTruncated = SseEvent<'history-truncated', HistoryTruncatedData>;

/** The events of a route with event map `M`: one per type, and rxsse's truncation signal. */
export type EventOf<M extends object> =
  | { [K in keyof M & string]: SseEvent<K, M[K]> }[keyof M & string]
  | HistoryTruncated;

/** The type of rxsse's truncation event. */
export const HISTORY_TRUNCATED = 'history-truncated';
