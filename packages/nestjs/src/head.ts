import type { CallHandler } from '@nestjs/common';
import type { ErrorReporter } from '@rxsse/core';
import { type EventContext, type NodeRequest, type NodeResponse, watchResponseClose } from '@rxsse/node';
import type { Subscription } from 'rxjs';
import { openHandoff } from './handoff.js';

/**
 * Runs Nest's chain for a HEAD as for its GET, the method too (its handoff says `head`: the
 * method's source is never subscribed), so that an interceptor, a pipe or the method that refuses
 * the GET refuses the HEAD with the same answer. Resolves once the chain lets the request through
 * (the method returned, where its GET opens: to its source, whose own headers the HEAD gets; or
 * the chain's first event, or its end), and rejects with what it fails with before. A client gone
 * meanwhile, or one a shutdown turned away at its deadline, ends the chain, which rejects with the
 * abort of `context.signal`: nothing is left to answer, and the method never runs after.
 */
export function headThroughChain(
  next: CallHandler,
  req: object,
  rawReq: NodeRequest,
  rawRes: NodeResponse,
  context: EventContext,
  report: ErrorReporter,
): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
    const handoff = openHandoff(req, context, report);
    handoff.head = true;
    let chain: Subscription | undefined;
    let stopWatching: (() => void) | undefined;
    let done = false;
    /** Ends the chain, once: whether this call did. */
    const end = (): boolean => {
      if (done) return false;
      done = true;
      stopWatching?.();
      handoff.unsubscribe(chain);
      // A run of the method still pending answers no one now: what it fails with is reported.
      handoff.discard();
      return true;
    };
    // The signal is read only then: the sink creates its AbortController only for those who read it.
    // A response closed already calls this at once.
    stopWatching = watchResponseClose(rawReq, rawRes, () => {
      if (!end()) return;
      // Nest's pipes may still run: their promise goes on, and the method must not run after them.
      handoff.abandoned = { reason: context.signal.reason };
      reject(context.signal.reason);
    });
    if (done) return;
    const pass = (source?: unknown) => {
      if (end()) resolve(source);
    };
    // An interceptor may merge a feed of its own that never emits, nor ends, for a HEAD.
    void handoff.source.then(pass);
    chain = next.handle().subscribe({
      next: () => pass(),
      complete: () => pass(),
      error: (error: unknown) => {
        if (end()) reject(error);
      },
    });
    if (done) handoff.unsubscribe(chain);
  });
}
