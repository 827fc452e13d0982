/**
 * A source that holds something before it is subscribed (a channel subscription's place on its
 * engine's live bus) carries under this key how to let go of it, for a transport that never
 * subscribes to it: a HEAD, a request turned away, a client gone before its stream began, a
 * handler's late result. Its unsubscription releases it too, so a source may be released either
 * way, and twice: the second time does nothing.
 */
export const SOURCE_RELEASE: unique symbol = Symbol.for('rxsse.sourceRelease');

/** A source that holds something before it is subscribed, see {@link SOURCE_RELEASE}. */
export interface WithSourceRelease {
  [SOURCE_RELEASE]?: () => void;
}
