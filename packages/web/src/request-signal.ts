import { describeValue } from '@rxsse/core';

/**
 * Refuses a Request-like object without an `AbortSignal` (node-fetch's Request, whose `signal` is
 * `null`; a bridge's own object): nothing would tell when its client leaves, nor let go of the
 * listener once it closed. `taker` names what was given it, `sse()`'s fetch handler or
 * `new WebSink()`.
 */
export function checkRequestSignal(request: unknown, taker: string): void {
  if (typeof request !== 'object' || request === null) {
    throw new TypeError(`${taker} takes a Request, got ${describeValue(request)}`);
  }
  const signal = (request as { signal?: Partial<AbortSignal> | null }).signal;
  const { aborted, addEventListener, removeEventListener } = signal ?? {};
  if (
    typeof aborted === 'boolean' &&
    typeof addEventListener === 'function' &&
    typeof removeEventListener === 'function'
  )
    return;
  throw new TypeError(
    `${taker} takes a Request whose signal is an AbortSignal, got ${describeValue(request)} whose signal is ${describeValue(signal)}; pass the runtime's own Request, or give yours the signal of its connection`,
  );
}
