/**
 * Whether a handler answered with a `Response` instead of a source: one of this realm's, or of
 * another's (the `undici` package's `fetch`, a test environment's globals), which `instanceof`
 * misses but which the runtime sends all the same. Another realm's is known by its tag and its
 * shape: any object can take the tag.
 */
export function isResponse(value: unknown): value is Response {
  if (value instanceof Response) return true;
  if (Object.prototype.toString.call(value) !== '[object Response]') return false;
  const { status, headers, body } = value as Partial<Response>;
  return (
    typeof status === 'number' &&
    typeof headers?.get === 'function' &&
    (body === null || typeof body?.getReader === 'function')
  );
}

/**
 * Refuses a handler's `Response` whose body was read (or cancelled) or is locked: the runtime would
 * fail on it only once it sends it (a 500 that names no route, or a 200 whose body fails).
 * @throws TypeError saying so, for the framework to answer and log.
 */
export function checkResponseBody(response: Response): void {
  if (response.bodyUsed || response.body?.locked) {
    throw new TypeError(
      `the event handler returned a Response whose body was ${response.bodyUsed ? 'read or cancelled' : 'locked by a reader'}: return one whose body no one read`,
    );
  }
}
