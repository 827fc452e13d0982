import type { MessageEvent } from '../encode/types.js';

/**
 * A source may carry under this key the event a stream sends where its overflow policy
 * (`drop-oldest`, `drop-newest`) dropped some of the source's events: a channel's truncation event,
 * so that its client is told instead of missing them silently. It is called with the id of the
 * last event the stream sent before it (`null` if none). The stream encodes what it makes with
 * rxsse's own encoding, JSON data, not the route's `serialize` or `strict`: those are made for the
 * route's data, and refusing the gap event would leave the client unaware of the gap. One larger
 * than the route's `maxQueueBytes` is reported (`onError`) and sent as a small notice instead: its
 * `type`, and as data `{ lastEventId, reason }`.
 */
export const SOURCE_GAP_EVENT: unique symbol = Symbol.for('rxsse.sourceGapEvent');

/** Makes a gap event for the id of the last event the client gets before it (`null` if none). */
export type GapEventFactory = (lastEventId: string | null) => MessageEvent<unknown>;

/** A source that says where its events were dropped, see {@link SOURCE_GAP_EVENT}. */
export interface WithSourceGapEvent {
  [SOURCE_GAP_EVENT]?: GapEventFactory;
}

/**
 * A stream's subscriber to a source with a gap event carries under this key how that source sends
 * a gap event of its own (a channel's truncation event, for events its store lost): the stream
 * queues what the factory makes for the id its client has there. Only the stream knows that id: its
 * drop policy may have dropped the last events the source sent, or it refused one. It then places
 * the event as it places its own, so that a later drop leaves none naming an id the client never
 * got. Returns false where the stream keeps no ids (a source without a gap event): the source names
 * the id itself then.
 */
export const SUBSCRIBER_GAP_EVENT: unique symbol = Symbol.for('rxsse.subscriberGapEvent');

/** A subscriber that places a source's own gap events, see {@link SUBSCRIBER_GAP_EVENT}. */
export interface WithSubscriberGapEvent {
  [SUBSCRIBER_GAP_EVENT]?: (make: GapEventFactory) => boolean;
}

/**
 * A stream's subscriber to an Observable carries under this key whether the stream can take more: a
 * source that pulls its events from elsewhere (an AsyncIterable that an Observable chain stands in
 * front of, as NestJS's interceptors do) asks before each pull, and waits while the stream's
 * transport is full, instead of filling the stream's queue until its overflow policy acts. Returns
 * `undefined` while it can take more, else a promise that resolves once it can, or once the stream
 * ended (the subscriber is closed then).
 */
export const SUBSCRIBER_DEMAND: unique symbol = Symbol.for('rxsse.subscriberDemand');

/** A subscriber that says when it can take more, see {@link SUBSCRIBER_DEMAND}. */
export interface WithSubscriberDemand {
  [SUBSCRIBER_DEMAND]?: () => Promise<void> | undefined;
}
