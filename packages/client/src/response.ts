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
  if (status === 200 && essence(response.headers.get('content-type')) === 'text/event-stream') return 'read';
  throw new SseResponseError(response);
}

/**
 * The MIME essence of a `Content-Type`, as fetch extracts it: a header sent twice (by a proxy, say)
 * arrives joined by commas, and its last valid type counts; a comma in a quoted parameter splits nothing.
 */
function essence(contentType: string | null): string | undefined {
  let found: string | undefined;
  for (const value of contentType?.match(/(?:"(?:\\.|[^"\\])*"?|[^,"])+/g) ?? []) {
    const type = value.split(';')[0]!.trim().toLowerCase();
    if (/^[\w!#$%&'*+.^`|~-]+\/[\w!#$%&'*+.^`|~-]+$/.test(type) && type !== '*/*') found = type;
  }
  return found;
}

/**
 * A `Retry-After` value (seconds or an HTTP date) in ms; `undefined` if absent or invalid. A date
 * counts from the response's `Date` when it has a valid one, as both come from the server's clock
 * (a client's may be off by hours), else from `now`. A cached answer's `Age` (whole seconds) has
 * passed already: it is taken off the seconds, and added to the `Date` a date counts from.
 */
export function retryAfter(
  value: string | null,
  date: string | null,
  now: number,
  age?: string | null,
): number | undefined {
  const passed = seconds(age) || 0;
  const delay = seconds(value);
  const ms = Number.isNaN(delay) ? httpDate(value) - (httpDate(date) + passed || now) : delay - passed;
  return Number.isNaN(ms) ? undefined : Math.min(Math.max(ms, 0), MAX_DELAY);
}

/**
 * Whole seconds in ms, `NaN` for anything else. A missing value tests as the word `null` or
 * `undefined`, which matches neither pattern here (a check of its own would cost the bundle bytes).
 */
const seconds = (value: string | null | undefined) =>
  /^\s*\d+\s*$/.test(value as string) ? Number(value) * 1000 : Number.NaN;

/**
 * An HTTP date in ms (RFC 9110 5.6.7: IMF-fixdate, or the obsolete RFC 850, or asctime, which ends
 * in the year and means GMT), `NaN` for anything else: `Date.parse` alone reads much that is no
 * date ("in 10" as October 2001, "-5" as a year), so a day, a time of day, then GMT or the year.
 */
const httpDate = (value: string | null) =>
  /^\w+,? .+ [\d:]{8} (GMT|\d+)$/.test(value as string)
    ? Date.parse(value!.replace(/\d$/, '$& GMT'))
    : Number.NaN;
