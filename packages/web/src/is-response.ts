/**
 * Whether a handler answered with a `Response` instead of a source: one of this realm's, or of
 * another's (the `undici` package's `fetch`, a test environment's globals), which `instanceof`
 * misses but which the runtime sends all the same.
 */
export function isResponse(value: unknown): value is Response {
  return value instanceof Response || Object.prototype.toString.call(value) === '[object Response]';
}
