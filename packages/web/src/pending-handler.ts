import {
  type CUT_SHORT,
  type ErrorReporter,
  type HandlerSetup,
  isAbortOf,
  isThenable,
  letGoSource,
} from '@rxsse/core';
import { isResponse } from './is-response.js';
import type { WebSink } from './web-sink.js';

/**
 * What the handler settles with ({@link HandlerSetup.settle}), or `CUT_SHORT` at once at the
 * shutdown's deadline or when the client leaves, for the fetch handler to answer without it: the
 * runtime holds the request (Deno's graceful shutdown waits for it) as long as the handler, which
 * need not heed its signal. A later result is let go: a `Response`'s body cancelled, or as a
 * source's is.
 */
export async function settleBeforeDeadline<T>(
  setup: HandlerSetup,
  sink: WebSink,
  request: Request,
  produced: T | PromiseLike<T>,
): Promise<T | typeof CUT_SHORT> {
  if (!isThenable(produced)) return produced;
  // Its failures as the sink's abort: a late one that is the Request's is then no error either.
  // Before a Response exists, the request's abort is the one way a runtime tells of a client gone:
  // the sink's close, which cuts the setup short.
  return setup.settle(
    Promise.resolve(produced).catch((error: unknown) => Promise.reject(asSignalAbort(error, sink, request))),
    letGo,
  );
}

/**
 * The handler's failure as its `signal`'s abort, where it failed with the Request's own: a handler
 * may give either to a fetch. Their reasons agree until a shutdown aborts `signal` first, with one
 * of its own; a client that leaves after that aborts only the Request's (on @hono/node-server with
 * a string), which is still its close, not an error of the route.
 */
export function asSignalAbort(error: unknown, sink: WebSink, request: Request): unknown {
  return isAbortOf(error, request.signal) ? sink.signal.reason : error;
}

/** Releases what a handler returned too late to be used: a `Response`'s body is cancelled. */
function letGo(late: unknown, report: ErrorReporter): void {
  if (isResponse(late)) late.body?.cancel().catch(report);
  else letGoSource(late, report);
}
