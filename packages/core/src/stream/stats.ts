/** Why a stream ended. Every close has exactly one. */
export type CloseReason =
  /** The client went away. */
  | 'client'
  /** The source completed and everything queued was written; a HEAD, answered with the headers alone. */
  | 'complete'
  /**
   * The source errored (or emitted a message the encoder refused, with `onInvalidMessage: 'close'`),
   * or a method of the stream's `Sink` threw.
   */
  | 'error'
  /** The queue would have passed `maxQueueBytes` and `onOverflow` is `'close'`. */
  | 'overflow'
  /** The client accepted no bytes for `stallTimeout` ms while data waited. */
  | 'stall'
  /** The stream reached its `maxLifetime`. */
  | 'lifetime'
  /** The server closed the stream (`stream.close()`, a `StreamGroup` shutdown). */
  | 'shutdown';

/** Counters of one stream, readable at any time and final once it closed. */
export interface StreamStats {
  /** Events handed to the transport. */
  events: number;
  /** Bytes handed to the transport (events, heartbeats, retry). */
  bytes: number;
  /** Heartbeat comments written. */
  heartbeats: number;
  /**
   * Events dropped: by a `drop-oldest` or `drop-newest` policy, the one that passed the cap under
   * `close`, or those still queued at an abrupt close.
   */
  dropped: number;
  /** The most bytes the queue ever held (never more than `maxQueueBytes`). */
  peakQueuedBytes: number;
  /** Messages the stream could not send (see `onInvalidMessage`), each reported as an error. */
  refused: number;
}
