import { type MessageEvent, resolveStreamOptions, type StreamOptions } from '@rxsse/core';
import { type EventHandler, openEventStream } from '@rxsse/node';
import type { Context, Middleware } from 'koa';

/**
 * Koa middleware that streams the events `handler` returns for each request. Works with
 * `@koa/router` (`router.get('/sse', sse(...))`) and with `app.use(sse(...))`.
 *
 * @example
 * ```ts
 * router.get('/sse', sse((ctx) => interval(1000).pipe(map(() => ({ data: { hello: 'world' } })))));
 * ```
 */
export function sse<M extends MessageEvent<unknown> = MessageEvent>(
  handler: EventHandler<Context, M>,
  options?: StreamOptions,
): Middleware {
  const resolved = resolveStreamOptions(options);
  return async (ctx) => {
    // A handler that throws before the first byte is Koa's to answer, like any other middleware;
    // later errors go where Koa reports its own, `app.on('error')`.
    const report = (error: unknown) => ctx.app.emit('error', error, ctx);
    await openEventStream(ctx.req, ctx.res, (context) => handler(ctx, context), resolved, report);
    // The stream owns the Node response from here on; Koa must not write a body of its own,
    // and a client that goes away is the stream's normal 'client' close, not an app error.
    ctx.respond = false;
    const onerror = ctx.onerror;
    ctx.onerror = (error) => {
      if (!isDisconnect(error)) onerror.call(ctx, error);
    };
  };
}

/** How Node reports a client that went away, over HTTP/1 and HTTP/2 (a reset stream or session). */
const DISCONNECT_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_STREAM_DESTROYED',
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_STREAM_CANCEL',
  'ERR_HTTP2_INVALID_STREAM',
  'ERR_HTTP2_GOAWAY_SESSION',
]);

function isDisconnect(error: unknown): boolean {
  return error == null || DISCONNECT_CODES.has((error as { code?: string }).code ?? '');
}
