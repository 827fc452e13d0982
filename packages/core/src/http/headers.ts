/**
 * Extra response headers: a string adds or replaces a header, `null` removes a default one.
 * Names are matched case-insensitively.
 * @example
 * ```ts
 * { 'Access-Control-Allow-Origin': '*', 'X-Accel-Buffering': null }
 * ```
 */
export type HeaderOverrides = Readonly<Record<string, string | null>>;

/**
 * The response headers of an event stream. `no-transform` keeps compression middleware
 * (`compression`) off it (nginx's `gzip` compresses it anyway, and flushes each event);
 * `X-Accel-Buffering: no` turns nginx buffering off. `Connection` is the transport's, as
 * the connection will go (Node says `keep-alive`, with its `Keep-Alive` hint, or `close`, as it
 * does for any response); an override of it is legal on HTTP/1.x only (Node warns and drops it on
 * HTTP/2).
 */
export function sseHeaders(http2: boolean, overrides: HeaderOverrides = {}): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
  };
  for (const [name, value] of Object.entries(overrides)) {
    const key = name.toLowerCase();
    if (value === null) delete headers[key];
    else if (!http2 || !HTTP1_ONLY.has(key)) headers[key] = value;
  }
  return headers;
}

/** RFC 9110 `token`: what a header name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What Node and fetch `Headers` take in a value: no CR, LF, NUL, nor a character past U+00FF. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Headers of the body's framing and encoding, which the transport owns: a `Content-Length` makes a
 * client read the rest of the stream as the next response, a `Content-Encoding` makes it decode
 * bytes that are not encoded.
 */
const FRAMING = new Set(['content-length', 'content-encoding', 'transfer-encoding']);
/**
 * Whether `value` is a type every client takes: EventSource fails the connection for good on any
 * other, eventsource 4 on one not in lowercase too; and the stream is UTF-8 whatever a charset
 * says, so no other may be named.
 */
function isEventStreamType(value: string): boolean {
  const match = /^text\/event-stream[\t ]*(?:;(.*))?$/.exec(value);
  if (!match) return false;
  const parameter = (match[1] ?? '').trim().toLowerCase();
  return parameter === '' || parameter === 'charset=utf-8' || parameter === 'charset="utf-8"';
}

/**
 * Checks overrides once, when a route is set up: a name or value that no response can carry would
 * otherwise fail every request, after the stream had begun.
 * @throws {TypeError} naming the header, for a name that is not a token, a value that is not
 *   `null` or a string of header characters, a `Content-Type` other than `text/event-stream` (in
 *   lowercase, with no parameter but `charset=utf-8`), or a
 *   `Content-Length`, `Content-Encoding` or `Transfer-Encoding` (other than `chunked`).
 */
export function checkHeaderOverrides(overrides: HeaderOverrides): void {
  for (const [name, value] of Object.entries(overrides)) {
    if (!TOKEN.test(name)) throw new TypeError(`headers['${name}']: the name is not an HTTP token`);
    const key = name.toLowerCase();
    if (key === 'content-type' && (typeof value !== 'string' || !isEventStreamType(value))) {
      throw new TypeError(
        `headers['${name}']: must be text/event-stream in lowercase, with no parameter but charset=utf-8`,
      );
    }
    if (value === null) continue;
    if (typeof value !== 'string' || !FIELD_VALUE.test(value)) {
      throw new TypeError(
        `headers['${name}']: the value must be null or a string without CR, LF, NUL or characters past U+00FF`,
      );
    }
    if (FRAMING.has(key) && !(key === 'transfer-encoding' && value.toLowerCase() === 'chunked')) {
      throw new TypeError(
        `headers['${name}']: the transport frames and encodes the stream, this cannot be set`,
      );
    }
  }
}

/**
 * The connection-specific headers HTTP/2 forbids (RFC 9113, 8.2.2): Node refuses a response that
 * carries one. `TE` is meaningless in a response, so it goes too, even as `trailers`.
 */
const HTTP1_ONLY = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'te',
  'http2-settings',
]);

const NONE: readonly string[] = Object.freeze([]);

/** The HTTP/1-only names, removed from every HTTP/2 response. */
const HTTP1_ONLY_NAMES: readonly string[] = Object.freeze([...HTTP1_ONLY]);

/**
 * The names (lower case) that `overrides` removes: the transport removes them from the response
 * too, so `null` also drops a header the framework set before the stream began (`X-Powered-By`).
 * On HTTP/2, also every HTTP/1-only header (`Connection`, `Keep-Alive`, `TE`, ...): one that an app's
 * middleware set for HTTP/1 makes Node refuse the response's headers, or warn.
 */
export function removedHeaders(overrides: HeaderOverrides = {}, http2 = false): readonly string[] {
  const removed = Object.keys(overrides).filter((name) => overrides[name] === null);
  // Every connection asks: the common answers are constants, not a new array each.
  if (removed.length === 0) return http2 ? HTTP1_ONLY_NAMES : NONE;
  const names = removed.map((name) => name.toLowerCase());
  return http2 ? [...HTTP1_ONLY_NAMES, ...names] : names;
}

/**
 * A source may carry response headers of its own under this key (a channel says
 * `SSE-History-Truncated` this way); they are applied over the route's `headers` option, and
 * checked as it is: a source whose headers it would refuse is refused, as one that fails at once.
 */
export const SOURCE_HEADERS: unique symbol = Symbol.for('rxsse.sourceHeaders');

/** A source with headers of its own, see {@link SOURCE_HEADERS}. */
export interface WithSourceHeaders {
  [SOURCE_HEADERS]?: HeaderOverrides;
}

/**
 * @internal Checks the headers a source carries ({@link SOURCE_HEADERS}) as a route's are, before the
 * stream begins, and returns them: a `Response` refuses them only once the stream has begun, too
 * late for the framework's error status, and Node sends a `Content-Length` or another
 * `Content-Type`, which corrupt the stream.
 * @throws {TypeError} naming the header, as {@link checkHeaderOverrides} does, or for headers that
 *   are no object.
 */
export function checkSourceHeaders(source: unknown): HeaderOverrides | undefined {
  const own = (source as WithSourceHeaders | null | undefined)?.[SOURCE_HEADERS];
  if (!own) return undefined;
  if (typeof own !== 'object') {
    throw new TypeError(`An event stream's source carries headers that are ${typeof own}, not an object`);
  }
  try {
    checkHeaderOverrides(own);
  } catch (error) {
    throw new TypeError(`An event stream's source carries ${(error as Error).message}`);
  }
  return own;
}
