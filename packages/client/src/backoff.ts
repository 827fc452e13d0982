import { MAX_DELAY } from './response.js';

/** How long to wait before reconnecting. */
export interface DelayInput {
  /** Reconnects since the last event was delivered (0 for the first). */
  attempt: number;
  /** The failed response's `Retry-After`, in ms. */
  retryAfter: number | undefined;
  /** The last `retry:` the server sent, in ms. */
  serverRetry: number | undefined;
  /** The base of the backoff when the server sent no `retry:`. */
  retryDelay: number;
  /** The cap of the backoff. */
  maxRetryDelay: number;
}

/**
 * The server's word first: `Retry-After` (a zero one for the first attempt only), then `retry:` for
 * the first attempt after an event. Otherwise exponential backoff with full jitter (a
 * random wait between `retry:`, or 0, and `min(cap, base * 2^attempt)`), so clients a restart
 * dropped together come back spread out.
 */
export function reconnectDelay(input: DelayInput, random: () => number = Math.random): number {
  const { attempt, retryAfter, serverRetry } = input;
  // `Retry-After: 0` (a date gone by too) and `retry: 0` say "at once" for one reconnect, not for a
  // server that keeps failing: every answer 503 with it would bring the client back in a tight loop.
  if (retryAfter !== undefined && (retryAfter > 0 || attempt === 0)) return retryAfter;
  // The spec waits the reconnection time and then, optionally, more: backoff never cuts `retry:`
  // short (a server that asked for 10 s is not to be hammered once it fails), even past the cap.
  const floor = Math.min(serverRetry ?? 0, MAX_DELAY);
  if (serverRetry !== undefined && attempt === 0) return floor;
  const ceiling = Math.min(input.maxRetryDelay, (serverRetry || input.retryDelay) * 2 ** attempt, MAX_DELAY);
  return ceiling <= floor ? floor : floor + random() * (ceiling - floor);
}
