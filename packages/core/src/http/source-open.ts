/**
 * A source may carry `true` under this key for its stream to open (answer 200 with its headers)
 * before it subscribes: a failure at once then ends an open stream, for EventSource to reconnect,
 * instead of refusing the request with the framework's error status. A channel's sources carry it:
 * an engine that is unavailable is an outage its clients come back from.
 */
export const SOURCE_OPENS_FIRST: unique symbol = Symbol.for('rxsse.sourceOpensFirst');

/** A source that opens its stream before it is subscribed, see {@link SOURCE_OPENS_FIRST}. */
export interface WithSourceOpensFirst {
  [SOURCE_OPENS_FIRST]?: true;
}
