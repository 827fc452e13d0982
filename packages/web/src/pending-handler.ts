import type { ErrorReporter, HandlerSetup } from '@rxsse/core';
import { checkEventSource, endIterator, isAbortOf, isThenable, madeIterator } from '@rxsse/core';
import { isResponse } from './is-response.js';
import type { WebSink } from './web-sink.js';

/**
 * What {@link settleBeforeDeadline} resolves to when the shutdown's deadline, or the client's
 * leaving, came first.
 */
export const CUT_SHORT: unique symbol = Symbol('rxsse.cutShort');

/**
 * What the handler settles with ({@link HandlerSetup.settle}), or {@link CUT_SHORT} at once at the
 * shutdown's deadline or when the client leaves, for the fetch handler to answer without it: a
 * fetch handler cannot drop its connection, and the runtime holds the request (Deno's graceful
 * shutdown waits for it) as long as the handler, which need not heed its signal. A later result is
 * let go: an iterator `return()`ed, a `Response`'s body cancelled, a failure other than the abort,
 * or a result that is no source, reported.
 */
export async function settleBeforeDeadline<T>(
  setup: HandlerSetup,
  sink: WebSink,
  request: Request,
  produced: T | PromiseLike<T>,
): Promise<T | typeof CUT_SHORT> {
  if (!isThenable(produced)) return produced;
  let cut!: () => void;
  const deadline = new Promise<typeof CUT_SHORT>((resolve) => {
    cut = () => resolve(CUT_SHORT);
  });
  // Before a Response exists, the request's abort is the one way a runtime tells of a client gone.
  const { signal } = request;
  if (signal.aborted) cut();
  else signal.addEventListener('abort', cut, { once: true });
  let settled: T | typeof CUT_SHORT;
  try {
    settled = await setup.settle(Promise.race([produced, deadline]), cut);
  } finally {
    signal.removeEventListener('abort', cut);
  }
  if (settled === CUT_SHORT) {
    const report = (error: unknown) => setup.reportError(error);
    Promise.resolve(produced).then(
      (late) => letGo(late, report),
      (error: unknown) => {
        if (!isAbortOf(asSignalAbort(error, sink, request), sink.signal)) report(error);
      },
    );
  }
  return settled;
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

/**
 * Releases what a handler returned too late to be used; what that throws is reported, and so is a
 * result that is neither a `Response` nor a source, the handler's bug.
 */
function letGo(late: unknown, report: ErrorReporter): void {
  try {
    if (isResponse(late)) late.body?.cancel().catch(report);
    else {
      endIterator(madeIterator(late), report);
      checkEventSource(late);
    }
  } catch (error) {
    report(error);
  }
}
