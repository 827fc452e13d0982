import type { CallHandler } from '@nestjs/common';
import type { ErrorReporter } from '@rxsse/core';
import { type NodeRequest, type NodeResponse, readLastEventId, watchResponseClose } from '@rxsse/node';
import { Observable, type Subscription } from 'rxjs';
import { openHandoff } from './handoff.js';

/**
 * Runs Nest's chain for a HEAD as for its GET, all but the method (its handoff says `head`), so
 * that an interceptor or a pipe that refuses the GET refuses the HEAD with the same answer. Once
 * the chain lets the request through (its first event, or its end), `answer` sends the headers.
 * A client gone meanwhile ends the chain: nothing is left to answer.
 */
export function headThroughChain(
  next: CallHandler,
  req: object,
  rawReq: NodeRequest,
  rawRes: NodeResponse,
  report: ErrorReporter,
  answer: () => Promise<void>,
): Observable<never> {
  return new Observable<never>((subscriber) => {
    let controller: AbortController | undefined;
    // A parameter's `@RxSseSignal()` is read before the method would run: created only then.
    const handoff = openHandoff(
      req,
      {
        lastEventId: readLastEventId(rawReq),
        get signal() {
          controller ??= new AbortController();
          return controller.signal;
        },
      },
      report,
    );
    handoff.head = true;
    let chain: Subscription | undefined;
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      stopWatching();
      chain?.unsubscribe();
      controller?.abort();
    };
    const stopWatching = watchResponseClose(rawReq, rawRes, end);
    if (done) return end;
    const pass = () => {
      if (done) return;
      end();
      answer().then(undefined, (error: unknown) => subscriber.error(error));
    };
    chain = next.handle().subscribe({
      next: pass,
      complete: pass,
      error: (error: unknown) => {
        end();
        subscriber.error(error);
      },
    });
    if (done) chain.unsubscribe();
    return end;
  });
}
