import { SseResponseError } from './errors.js';

/** The longest wait a timer can hold (browsers and Node fire at once past it). */
export const MAX_DELAY = 2 ** 31 - 1;

/**
 * What a response means for the stream: `read` its body, `stop` (204, the server's way to say so),
 * or `retry` later (408, 429, 5xx).
 * @throws {SseResponseError} for any other status, and for a 200 that is not `text/event-stream`.
 */
export function checkResponse(response: Response): 'read' | 'stop' | 'retry' {
  const { status } = response;
  if (status === 204) return 'stop';
  if (status >= 500 || status === 408 || status === 429) return 'retry';
  // Matched by MIME essence, as browsers do: `text/event-stream; charset=utf-8` is fine.
  const essence = response.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (status === 200 && essence === 'text/event-stream') return 'read';
  throw new SseResponseError(response);
}

/** A `Retry-After` value (seconds or an HTTP date) in ms from `now`; `undefined` if absent or invalid. */
export function retryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  // An HTTP date names its month; Date.parse alone would take "-5" as a year.
  const ms = /^\s*\d+\s*$/.test(value)
    ? Number(value) * 1000
    : /[a-z]/i.test(value)
      ? Date.parse(value) - now
      : Number.NaN;
  return Number.isNaN(ms) ? undefined : Math.min(Math.max(ms, 0), MAX_DELAY);
}
