import type { EventEmitter } from 'node:events';
import { format } from 'node:util';
import { checkEventHandler, type MessageEvent, resolveStreamOptions, type StreamOptions } from '@rxsse/core';
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
export function sse<M extends MessageEvent<unknown> = MessageEvent<unknown>>(
  handler: EventHandler<Context, NoInfer<M>>,
  options?: StreamOptions,
): Middleware {
  checkEventHandler(handler, 'sse');
  const resolved = resolveStreamOptions(options);
  return async (ctx) => {
    // A handler that throws before the first byte is Koa's to answer, like any other middleware;
    // later errors go where Koa reports its own, `app.on('error')`.
    const report = (error: unknown) => ctx.app.emit('error', asError(error, ctx.app), ctx);
    // A client that goes away is the stream's normal 'client' close, not an app error. Koa hears
    // of it from the request's start, as its connection's error (a reset, a reset HTTP/2 stream,
    // bytes that are not HTTP), while an async handler runs too. Only that error is the client's:
    // one of the app's own that carries such a code (a handler's or a middleware's, from a
    // database driver, say) is Koa's to answer or report, whenever it comes.
    watchConnection(ctx);
    const onerror = ctx.onerror;
    ctx.onerror = (error) => {
      if (!(isDisconnect(error) && connectionErrors.has(error as object))) onerror.call(ctx, error);
    };
    try {
      await openEventStream(ctx.req, ctx.res, (context) => handler(ctx, context), resolved, report);
    } catch (error) {
      if (!ctx.headerSent) throw error;
      // Another writer answered, or is answering: Koa can send nothing more, and a race in front
      // that answered (a timeout's) awaits this middleware no longer, so a rejection would be lost.
      // Koa's own handler reports it, as it reports any error once a response began.
      ctx.onerror(error as Error);
    }
    // The stream, or the writer that answered, owns the Node response; Koa must not add a body.
    ctx.respond = false;
  };
}

/**
 * Koa's default error listener throws on anything but an Error, and the stream would swallow that
 * throw: a value that is not one is wrapped as Koa wraps what a middleware throws. That listener
 * also skips an error that says its client was told (`expose`, a 404: `ctx.throw(401)`), as Koa's
 * answer tells a middleware's; a stream's client, its 200 long sent, was told nothing. When it is
 * the app's only listener it gets a copy that says no such thing, with the error as its `cause`.
 */
function asError(error: unknown, app: Context['app']): Error {
  try {
    return readError(error, app);
  } catch {
    // Its fields throw as they are read (a getter, a Proxy's trap), as they would in Koa's listener:
    // what Node's inspection shows of it, which reads none of them.
    return new Error(format('stream error that cannot be read: %O', error));
  }
}

function readError(error: unknown, app: Context['app']): Error {
  if (!(error instanceof Error || Object.prototype.toString.call(error) === '[object Error]'))
    return new Error(nonError(error));
  const { status, expose, message, stack } = error as Error & { status?: unknown; expose?: unknown };
  if (!(status === 404 || expose) || app.listeners('error').some((listener) => listener !== app.onerror))
    return error as Error;
  return Object.assign(new Error(message, { cause: error }), { stack });
}

/** Koa's words for a throw that is no Error; where JSON cannot write it (a BigInt), Node's inspection. */
function nonError(error: unknown): string {
  try {
    return format('non-error thrown: %j', error);
  } catch {
    return format('non-error thrown: %O', error);
  }
}

/** How Node reports a client that went away, over HTTP/1 and HTTP/2 (a reset stream or session, a lost network). */
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
  // A request body still arriving after `requestTimeout`: Node drops the connection.
  'ERR_HTTP_REQUEST_TIMEOUT',
  // The kernel gave up on a client the network lost (a closed laptop, a phone out of range).
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
]);

/** The errors connections emitted: the client's leaving, as Koa hears of it. */
const connectionErrors = new WeakSet<object>();
/** The connections (HTTP/2 streams) whose errors are noted. */
const watched = new WeakSet<EventEmitter>();

/**
 * Notes the errors the request's connection (its HTTP/2 stream) emits. One listener a connection,
 * kept for its life: a client may pipeline any number of stream requests on one, and a listener
 * each would make Node warn of a listener leak at the eleventh, a warning any client could raise in
 * the server's log. Kept past the response, it still tells no app error for the client's: only an
 * error the connection itself emitted is noted.
 */
function watchConnection(ctx: Context): void {
  const connection: EventEmitter | null = (ctx.res as { stream?: EventEmitter }).stream ?? ctx.req.socket;
  if (!connection || ctx.res.closed || watched.has(connection)) return;
  watched.add(connection);
  // Ahead of Koa's own listener, which hands the error to ctx.onerror at once.
  connection.prependListener('error', noteError);
}

function noteError(error: unknown): void {
  if (typeof error === 'object' && error !== null) connectionErrors.add(error);
}

function isDisconnect(error: unknown): boolean {
  if (error == null) return true;
  const code = (error as { code?: unknown }).code;
  // A client that sends what is not HTTP (llhttp's `HPE_` codes) has its connection dropped by Node.
  return typeof code === 'string' && (DISCONNECT_CODES.has(code) || code.startsWith('HPE_'));
}
