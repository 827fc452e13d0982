import type { ErrorReporter } from '@rxsse/core';
import { describeValue, endIterator, PULLS_PER_TURN } from '@rxsse/core';
import { Observable } from 'rxjs';

/**
 * An AsyncIterable as an Observable that ends its iterator once unsubscribed, also while the
 * iterator waits for its next value: rxjs's `from()` would end it only at that value, and an
 * `events.on()` on a quiet emitter would keep its listener for good. What `return()` throws goes to
 * `report`. `demand` says when the stream cannot take more (see `SUBSCRIBER_DEMAND`): no pull is
 * made until it can, as the stream pulls an iterable it reads itself.
 */
export function observeIterable<T>(
  iterable: AsyncIterable<T>,
  report: ErrorReporter,
  demand: () => Promise<void> | undefined = () => undefined,
): Observable<T> {
  return new Observable<T>((subscriber) => {
    const it = iterable[Symbol.asyncIterator]();
    // An iterator that is done, or failed, owes no `return()`.
    let finished = false;
    const failed = (error: unknown) => {
      finished = true;
      subscriber.error(error);
    };
    let pulls = 0;
    const pull = (): void => {
      const room = demand();
      if (room !== undefined) {
        void room.then(() => {
          if (!subscriber.closed) pull();
        });
        return;
      }
      // An iterator with nothing to wait for (a generator that only yields) resolves each pull in a
      // microtask: every so many pulls the event loop gets a turn, or its timers, other requests
      // and the stream's own writes would wait for the source to end.
      if (++pulls === PULLS_PER_TURN) {
        pulls = 0;
        setImmediate(() => {
          if (!subscriber.closed) pull();
        });
        return;
      }
      // Read as `for await` reads it: a result that is no promise is awaited all the same, and
      // whatever the iterator throws, rejects with or resolves to fails the stream, never the process.
      let next: Promise<IteratorResult<T>>;
      try {
        next = Promise.resolve(it.next());
      } catch (error) {
        failed(error);
        return;
      }
      next.then(received).then(undefined, failed);
    };
    const received = (result: IteratorResult<T>): void => {
      if (subscriber.closed) return;
      // As `for await` refuses it: read on, its `value` would be refused on every pull, without end.
      if (typeof result !== 'object' || result === null) {
        throw new TypeError(`the iterator's next() gave ${describeValue(result)}, not an object`);
      }
      if (result.done) {
        finished = true;
        subscriber.complete();
        return;
      }
      subscriber.next(result.value);
      if (!subscriber.closed) pull();
    };
    pull();
    return () => {
      if (!finished) endIterator(it, report);
    };
  });
}
