import {
  CUT_SHORT,
  checkEventHandler,
  checkSourceHeaders,
  describeValue,
  type ErrorReporter,
  type EventContext,
  type EventSourceLike,
  HandlerSetup,
  letGoSource,
  type MessageEvent,
  pickLastEventId,
  releaseSource,
  resolveStreamOptions,
  type StreamOptions,
  serverStreams,
} from '@rxsse/core';
import { checkResponseBody, isResponse } from './is-response.js';
import { asSignalAbort, settleBeforeDeadline } from './pending-handler.js';
import { checkRequestSignal } from './request-signal.js';
import { WebSink } from './web-sink.js';

/**
 * A route's handler: gets the `Request`, returns (or resolves to) the events for one client, or a
 * `Response` that answers instead of a stream (a 401 from an auth check, a 204 that tells the
 * client to stop), sent as it is.
 */
export type EventHandler<M extends MessageEvent<unknown> = MessageEvent> = (
  request: Request,
  context: EventContext,
) => EventSourceLike<M> | Response | Promise<EventSourceLike<M> | Response>;

export type { EventContext } from '@rxsse/core';

/**
 * Heartbeat interval of this package. A connection idle since a heartbeat-wheel visit gets its
 * comment within two intervals, so 4 s keeps a quiet stream under Bun's default 10 s idle timeout.
 */
export const DEFAULT_HEARTBEAT = 4000;

/**
 * A fetch handler, `(request) => Promise<Response>`, that streams the events `handler` returns for
 * each request: for Bun, Deno, Workers, Hono, Next.js and SvelteKit route handlers alike (Hono's
 * and SvelteKit's own handlers take their context: pass on its Request, `c.req.raw`,
 * `event.request`). Given anything but a Request with an `AbortSignal` (a framework's context,
 * node-fetch's Request, whose `signal` is `null`), it rejects with a TypeError that says what to
 * pass, before the handler runs. A handler that throws, or returns something that is not a source
 * (or a source whose own headers no `Response` can carry), rejects before a `Response` exists, so
 * the framework answers with its own error response; the handler's `signal` aborts then. One that
 * fails with the abort of its `signal` (or of the Request's own), its client gone, is the client's
 * close instead; the Request is answered as soon as its client leaves, without waiting for a
 * handler that may never settle, and what that handler settles with later is let go. A handler
 * that returns a `Response` has it sent instead of a stream, and its `signal` aborts then: a body
 * still tied to it (an upstream `fetch(url, { signal })` passed on) would be cut. One whose body was
 * read or is locked rejects with a TypeError, as a result that is no source does. A shutdown that
 * begins while the handler sets up aborts its `signal` and turns its client away, at the
 * shutdown's `deadline` at the latest. A HEAD runs the handler as its GET does, and gets its
 * answer without a body: a `Response` the handler returns, its refusal, or the stream's headers
 * (those of the source too, which is never subscribed: an iterator is `return()`ed).
 *
 * @example
 * ```ts
 * const handler = sse(() => interval(1000).pipe(map((n) => ({ data: { n } }))));
 * export default { fetch: handler };
 * ```
 */
export function sse<M extends MessageEvent<unknown> = MessageEvent<unknown>>(
  handler: EventHandler<NoInfer<M>>,
  options: StreamOptions = {},
): (request: Request) => Promise<Response> {
  checkEventHandler(handler, 'sse');
  // Options that are not an object go as they are, for resolveStreamOptions to refuse by name.
  const resolved = resolveStreamOptions(
    typeof options === 'object' && options !== null
      ? { ...options, heartbeat: options.heartbeat ?? DEFAULT_HEARTBEAT }
      : options,
  );
  // A fetch handler cannot see its server: its streams are the process's, which a shutdown ends.
  const server = serverStreams();
  return async (request) => {
    checkRequest(request);
    const sink = new WebSink(request);
    const report = consoleReporter(request);
    // A HEAD runs the handler as its GET, and gets the same answer, which its sink sends without a
    // body, counted as its GET would be.
    const head = request.method === 'HEAD';
    const setup = new HandlerSetup(sink, resolved, report, server);
    const turnAway = () => (head ? setup.answerHead(true) : setup.turnAway());
    if (resolved.group.closing || server.closing) {
      turnAway();
      return sink.response;
    }
    try {
      // `signal` is a getter: the sink creates its AbortController only for handlers that use it.
      const source = await settleBeforeDeadline(
        setup,
        sink,
        request,
        handler(request, {
          lastEventId: readLastEventId(request),
          get signal() {
            return sink.signal;
          },
        }),
      );
      if (isResponse(source)) {
        // No stream will use the sink: let go of the request, and abort what the handler tied to
        // its signal.
        sink.destroy();
        checkResponseBody(source);
        return source;
      }
      if (source === CUT_SHORT) turnAway();
      else {
        checkHeadersOf(source, setup);
        if (!head) setup.start(source);
        else {
          letGoSource(source, (error) => setup.reportError(error));
          setup.answerHead(server.closing, source);
        }
      }
    } catch (error) {
      try {
        setup.failed(asSignalAbort(error, sink, request));
      } catch (thrown) {
        // No stream will ever close the sink, and a runtime need not abort `request.signal` after
        // its error response: abort `signal` here, or what the handler tied to it (a channel's
        // subscription) is held for good.
        sink.destroy();
        throw thrown;
      }
    }
    return sink.response;
  };
}

/**
 * A framework that calls the fetch handler as its own route handler (Hono's `app.get(path,
 * handler)`, SvelteKit's `export const GET = handler`) hands over its context: say what to pass
 * instead of failing on a missing field. A Request-like object without an `AbortSignal` (node-fetch's
 * Request, a bridge's own object) is refused too: nothing would tell when its client leaves.
 */
function checkRequest(request: Request): void {
  const given = request as Partial<Request> | null;
  if (typeof given?.url !== 'string' || typeof given.headers?.get !== 'function') {
    throw new TypeError(
      `sse()'s fetch handler takes a Request, got ${describeValue(given)}; from a framework's context, pass its Request (Hono: c.req.raw; SvelteKit: event.request)`,
    );
  }
  checkRequestSignal(given, "sse()'s fetch handler");
}

/**
 * Checks a source's own headers before the stream begins, as a source is: a `Response` refuses such
 * a header only once the stream runs, too late for anything but an empty 204 (which stops
 * EventSource for good) or, on Hono's Node server, a 500 while the stream runs on unread. No stream
 * will end a refused source: an iterator the handler made (`events.on`) is returned here.
 */
function checkHeadersOf(source: EventSourceLike<MessageEvent<unknown>>, setup: HandlerSetup): void {
  try {
    checkSourceHeaders(source);
  } catch (error) {
    releaseSource(source, (thrown) => setup.reportError(thrown));
    throw error;
  }
}

/** `console.error`, naming the request: runtimes have no logger of their own to hand over. */
function consoleReporter(request: Request): ErrorReporter {
  return (error) =>
    console.error(`rxsse: event stream ${request.method} ${routeOf(request.url)} failed:`, error);
}

/**
 * The path a request's url names: a throw here would lose the error being reported. A bridge's
 * Request-like may carry the path alone, as Node's `req.url` is, which still names the route
 * resolved against a base; an absolute url that `URL` refuses (a bad host or port) is named as it
 * came, less its query, where EventSource clients carry their token.
 */
function routeOf(url: string): string {
  try {
    return new URL(url, 'http://localhost').pathname;
  } catch {
    return url.split(/[?#]/, 1)[0]!;
  }
}

/** The client's last event id: the `Last-Event-ID` header, else the `lastEventId` query parameter. */
export function readLastEventId(request: Request): string | undefined {
  return pickLastEventId(request.headers.get('last-event-id'), request.url);
}
