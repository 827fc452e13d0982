import type { CloseReason, StreamStats } from './stats.js';

/**
 * Hooks a metrics system implements to watch every stream of a route (see `@rxsse/prometheus`
 * for a ready one). Each is called synchronously on the stream's path: keep them to counter
 * increments. Open connections and queue depth are gauges: read them from a `StreamGroup`.
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
}
