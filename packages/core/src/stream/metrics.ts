import type { CloseReason, StreamStats } from './stats.js';

/**
 * Hooks a metrics system implements to watch every request of a route (see `@rxsse/prometheus`
 * for a ready one). Each is called synchronously on the stream's path: keep them to counter
 * increments. Open connections and queue depth are gauges: read them from a `StreamGroup`.
 *
 * Every request the route receives is counted once, on every transport alike: as a stream,
 * `opened` then one `closed` with the reason `onClose` gets too (a HEAD, a client gone before its
 * stream began, a request turned away while shutting down, each a stream of its own), or, when
 * its handler failed before any byte, as `failed`, which no `onClose` follows. A request another
 * writer answered first (a timeout's race) and a `Response` a fetch handler returns are the
 * route's own answers, not counted.
 */
export interface StreamMetrics {
  /** A stream started (headers sent). */
  opened(): void;
  /** A chunk of `events` events (0 for heartbeats and retry hints) and `bytes` bytes was written. */
  wrote(events: number, bytes: number): void;
  /** A heartbeat comment was written. */
  heartbeat(): void;
  /** `count` events were dropped (overflow policy, or queued at an abrupt close). */
  dropped(count: number): void;
  /** A stream ended. */
  closed(reason: CloseReason, stats: StreamStats): void;
  /** A message could not be sent and was skipped or ended the stream (see `onInvalidMessage`). */
  refused?(): void;
  /**
   * The handler threw, rejected (other than with its `signal`'s abort, which is the client's
   * close) or returned no source: no stream began, and the framework answers with its error.
   */
  failed?(): void;
}
