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
    // A handler that throws before the first byte is Koa's to answer, like any other middleware.
    await openEventStream(ctx.req, ctx.res, (context) => handler(ctx, context), resolved);
    // The stream owns the Node response from here on; Koa must not write a body of its own,
    // and a client that goes away is the stream's normal 'client' close, not an app error.
    ctx.respond = false;
    const onerror = ctx.onerror;
    ctx.onerror = (error) => {
      if (!isDisconnect(error)) onerror.call(ctx, error);
    };
  };
}

const DISCONNECT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

function isDisconnect(error: unknown): boolean {
  return error == null || DISCONNECT_CODES.has((error as { code?: string }).code ?? '');
}
