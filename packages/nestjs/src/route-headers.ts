import { type HeaderOverrides, resolveStreamOptions } from '@rxsse/core';

// Nest's keys for what `@HttpCode()`, `@Header()`, `@Redirect()`, `@Render()` and `@Sse()` record on a route's method.
const HTTP_CODE_METADATA = '__httpCode__';
const HEADERS_METADATA = '__headers__';
const NEVER_APPLIED =
  'cannot go with an event stream, which answers 200 with the events; Nest would never apply it. Give it a route of its own';
/** Answers Nest would give from the method's result, which never comes: the stream answers instead. */
const OTHER_ANSWERS = [
  ['__redirect__', '@Redirect()', NEVER_APPLIED],
  ['__renderTemplate__', '@Render()', NEVER_APPLIED],
  // Left on a route moved to @RxSse(): Nest's own stream would write to the response too.
  [
    '__sse__',
    '@Sse()',
    "is Nest's own event stream, which would write to the same response: keep @RxSse() alone",
  ],
] as const;

/**
 * Headers the stream sets itself, or that frame its body: a value Nest computes per request would
 * be replaced by the stream's, or corrupt it, and cannot be checked before the first request.
 */
const STREAM_HEADERS = new Set([
  'content-type',
  'cache-control',
  'x-accel-buffering',
  'connection',
  'content-length',
  'content-encoding',
  'transfer-encoding',
]);

/**
 * What Nest's own decorators on an `@RxSse` route ask of its response, read when the app starts:
 * each fixed `@Header()` value goes out as the route's `headers` option would (so `Cache-Control`
 * replaces the stream's), checked as that option is. A `@Header()` whose value is a function is
 * left to Nest, which sets it on each response, unless it names a header the stream sets.
 * @throws {TypeError} naming the route and the decorator, for an `@HttpCode()` other than 200 (an
 *   EventSource fails for good on any other status), a `@Redirect()` or `@Render()` (answers Nest
 *   gives from a result that never comes), an `@Sse()` (Nest's own stream, left on a route moved to
 *   `@RxSse()`), or a `@Header()` the stream cannot carry
 *   (a `Content-Type` other than `text/event-stream`, a `Content-Length`, ...).
 */
export function nestRouteHeaders(handler: object, route: string): HeaderOverrides | undefined {
  const status: unknown = Reflect.getMetadata(HTTP_CODE_METADATA, handler);
  if (status !== undefined && status !== 200) {
    throw new TypeError(
      `@RxSse() route ${route}: @HttpCode(${String(status)}) cannot go with an event stream, which answers 200: EventSource fails the connection on any other status and never reconnects. To tell one client to stop reconnecting, answer its request with 204: throw new HttpException('', 204) from a guard or the method`,
    );
  }
  for (const [key, decorator, reason] of OTHER_ANSWERS) {
    if (Reflect.getMetadata(key, handler) === undefined) continue;
    throw new TypeError(`@RxSse() route ${route}: ${decorator} ${reason}`);
  }
  const declared = Reflect.getMetadata(HEADERS_METADATA, handler) as
    | { name: string; value: unknown }[]
    | undefined;
  if (!declared?.length) return undefined;
  const headers: Record<string, string> = {};
  for (const { name, value } of declared) {
    const decorator = `@Header('${name}', ${typeof value === 'function' ? 'a function' : JSON.stringify(value)})`;
    if (typeof value === 'function') {
      if (!STREAM_HEADERS.has(name.toLowerCase())) continue;
      throw new TypeError(
        `@RxSse() route ${route}: ${decorator}: the stream sets ${name} itself; give a fixed value, checked when the app starts`,
      );
    }
    try {
      // The check of the `headers` option, so a `@Header()` may do what that option may.
      resolveStreamOptions({ headers: { [name]: value as string } });
    } catch (error) {
      const reason = (error as Error).message.replace(/^headers\[[^\]]*\]: /, '');
      throw new TypeError(`@RxSse() route ${route}: ${decorator}: ${reason}`);
    }
    headers[name] = value as string;
  }
  return headers;
}
