/** The message fields the encoder validates. */
export type SseField = 'data' | 'id' | 'type' | 'retry' | 'comment';

/**
 * Thrown when a message cannot be written as `text/event-stream` without corrupting the stream:
 * CR, LF or NUL in `id` or `type`, a reserved `type`, a serializer that does not return a string.
 * The message names the field and the reason, so the call site knows what to fix.
 */
export class SseFormatError extends TypeError {
  override readonly name = 'SseFormatError';
  constructor(
    /** The offending field. */
    readonly field: SseField,
    /** Why the value was refused, in a few words. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Invalid SSE ${field}: ${reason}`, options);
  }
}

/**
 * Thrown when a number is out of the range clients honour: a `retry` that is not an integer in
 * 0..2^31-1, or an event with more data lines than `maxDataLines`.
 */
export class SseRangeError extends RangeError {
  override readonly name = 'SseRangeError';
  constructor(
    /** The offending field. */
    readonly field: SseField,
    /** Why the value was refused, in a few words. */
    readonly reason: string,
  ) {
    super(`Invalid SSE ${field}: ${reason}`);
  }
}
