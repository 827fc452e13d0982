import type { CallHandler } from '@nestjs/common';
import type { ErrorReporter } from '@rxsse/core';
import { type EventContext, type NodeRequest, type NodeResponse, watchResponseClose } from '@rxsse/node';
import type { Subscription } from 'rxjs';
import { openHandoff } from './handoff.js';

/**
 * Runs Nest's chain for a HEAD as for its GET, all but the method (its handoff says `head`), so
 * that an interceptor or a pipe that refuses the GET refuses the HEAD with the same answer.
 * Resolves once the chain lets the request through (its first event, or its end), and rejects with
 * what it fails with. A client gone meanwhile, or a connection a shutdown dropped at its deadline,
 * ends the chain, which rejects with the abort of `context.signal`: nothing is left to answer.
 */
export function headThroughChain(
  next: CallHandler,
  req: object,
  rawReq: NodeRequest,
  rawRes: NodeResponse,
  context: EventContext,
  report: ErrorReporter,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    openHandoff(req, context, report).head = true;
    let chain: Subscription | undefined;
    let done = false;
    /** Ends the chain, once: whether this call did. */
    const end = (): boolean => {
      if (done) return false;
      done = true;
      stopWatching();
      chain?.unsubscribe();
      return true;
    };
    // The signal is read only then: the sink creates its AbortController only for those who read it.
    const stopWatching = watchResponseClose(rawReq, rawRes, () => {
      if (end()) reject(context.signal.reason);
    });
    if (done) return;
    const pass = () => {
      if (end()) resolve();
    };
    chain = next.handle().subscribe({
      next: pass,
      complete: pass,
      error: (error: unknown) => {
        if (end()) reject(error);
      },
    });
    if (done) chain.unsubscribe();
  });
}
