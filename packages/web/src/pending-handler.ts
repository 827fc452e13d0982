import { type ErrorReporter, isAbortOf, isThenable, PendingSetup, type StreamGroup } from '@rxsse/core';
import type { WebSink } from './web-sink.js';

/** What {@link PendingHandler.settle} resolves to when the shutdown's deadline came first. */
export const CUT_SHORT: unique symbol = Symbol('rxsse.cutShort');

/**
 * A handler's setup, as one of its server's streams while it returned a promise that is pending:
 * the server's shutdown aborts its `signal`, and at the deadline {@link settle} resolves to
 * {@link CUT_SHORT} at once, for the fetch handler to turn its client away. A fetch handler cannot
 * drop its connection, and the runtime's close would wait for the answer as long as the handler.
 */
export class PendingHandler {
  #setup: PendingSetup | undefined;

  constructor(
    private readonly sink: WebSink,
    private readonly server: StreamGroup,
  ) {}

  /** Whether a shutdown aborted the handler's signal: its abort is then no client's close. */
  get shutDown(): boolean {
    return this.#setup?.shutDown ?? false;
  }

  /**
   * What the handler settles with, or {@link CUT_SHORT}. A later result is let go: an iterator
   * `return()`ed, a `Response`'s body cancelled, a failure other than the abort reported.
   */
  async settle<T>(produced: T | PromiseLike<T>, report: ErrorReporter): Promise<T | typeof CUT_SHORT> {
    if (!isThenable(produced)) return produced;
    const { sink, server } = this;
    let cut: (() => void) | undefined;
    const deadline = new Promise<typeof CUT_SHORT>((resolve) => {
      cut = () => resolve(CUT_SHORT);
    });
    // Once the handler settled, the deadline drops the answer that turns its client away, as it
    // drops any stream's.
    const setup = new PendingSetup(sink, () => (cut ? cut() : sink.destroy()));
    this.#setup = setup;
    server.add(setup);
    try {
      const settled = await Promise.race([produced, deadline]);
      if (settled === CUT_SHORT) {
        Promise.resolve(produced).then(
          (late) => letGo(late, report),
          (error: unknown) => {
            if (!isAbortOf(error, sink.signal)) report(error);
          },
        );
      }
      return settled;
    } finally {
      cut = undefined;
      server.delete(setup);
    }
  }
}

/** Releases what a handler returned too late to be used; what that throws is reported. */
function letGo(late: unknown, report: ErrorReporter): void {
  try {
    if (late instanceof Response) {
      late.body?.cancel().catch(report);
      return;
    }
    // Only an iterator holds anything yet: an AsyncIterable is not asked for one just to end it.
    const iterator = late as Partial<AsyncIterator<unknown>> | null;
    if (typeof iterator?.next !== 'function' || typeof iterator.return !== 'function') return;
    Promise.resolve(iterator.return()).catch(report);
  } catch (error) {
    report(error);
  }
}
