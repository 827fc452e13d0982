import type { MessageEvent } from '../encode/types.js';

/**
 * A source may carry under this key the event a stream sends where its overflow policy
 * (`drop-oldest`, `drop-newest`) dropped some of the source's events: a channel's truncation event,
 * so that its client is told instead of missing them silently. It is called with the id of the
 * last event the stream sent before it (`null` if none).
 */
export const SOURCE_GAP_EVENT: unique symbol = Symbol.for('rxsse.sourceGapEvent');

/** A source that says where its events were dropped, see {@link SOURCE_GAP_EVENT}. */
export interface WithSourceGapEvent {
  [SOURCE_GAP_EVENT]?: (lastEventId: string | null) => MessageEvent<unknown>;
}
