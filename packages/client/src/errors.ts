/**
 * The server answered in a way no retry can fix: a status other than 200, 204, 408, 429 or 5xx,
 * or a 200 that is not `text/event-stream`. The Observable ends with it; nothing is retried.
 * (A retried 408, 429 or 5xx reaches `onReconnect` as this error too.)
 */
export class SseResponseError extends Error {
  override readonly name = 'SseResponseError';
  /** The response's status, e.g. 401. */
  readonly status: number;
  /** The response's `Content-Type`, `null` if it had none. */
  readonly contentType: string | null;
  /** The response's headers (e.g. `WWW-Authenticate`). The body is not read. */
  readonly headers: Headers;
  /**
   * When it ends `fromEventSource`'s Observable: the last event id the client had, which its next
   * reconnect would have sent as `Last-Event-ID` (`''` if the stream cleared it, `undefined` if none).
   * Give it back as the `lastEventId` option to resume exactly there. `undefined` for one passed to
   * `onReconnect`.
   */
  declare readonly lastEventId: string | undefined;

  constructor(response: Response) {
    const type = response.headers.get('content-type');
    super(
      `Event stream answered ${response.status}${response.status === 200 ? ` with Content-Type ${type}` : ''}`,
    );
    this.status = response.status;
    this.contentType = type;
    this.headers = response.headers;
  }
}

/**
 * An event the client cannot deliver as agreed: a type the contract does not declare, data that is
 * not the JSON the contract promises, or an event longer than `maxEventLength`. The Observable ends
 * with it. Thrown by a contract's `encode` on the server side for the same mismatches.
 */
export class SseEventError extends Error {
  override readonly name = 'SseEventError';
  /**
   * When it ends `fromEventSource`'s Observable: the last event id the client had, that of the last
   * event delivered (or id-only block), not of the refused one (`''` if the stream cleared it,
   * `undefined` if none). Give it back as the `lastEventId` option to resume right after it.
   * `undefined` for one thrown by `encode`.
   */
  declare readonly lastEventId: string | undefined;
  constructor(
    /** The event's type; `undefined` for an event that has not ended. */
    readonly eventType: string | undefined,
    /** What is wrong, in a few words. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${eventType === undefined ? 'An event' : `Event "${eventType}"`} ${reason}`, options);
  }
}

/**
 * No byte arrived for `stallTimeout` ms: the connection is taken for dead, aborted, and opened
 * again. Only ever passed to `onReconnect`.
 */
export class SseStallError extends Error {
  override readonly name = 'SseStallError';
  constructor(
    /** The `stallTimeout` that passed, in ms. */
    readonly timeout: number,
  ) {
    super(`No byte from the event stream for ${timeout} ms`);
  }
}
