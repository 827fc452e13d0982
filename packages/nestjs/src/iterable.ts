import type { ErrorReporter } from '@rxsse/core';
import { endIterator } from '@rxsse/core';
import { Observable } from 'rxjs';

/**
 * An AsyncIterable as an Observable that ends its iterator once unsubscribed, also while the
 * iterator waits for its next value: rxjs's `from()` would end it only at that value, and an
 * `events.on()` on a quiet emitter would keep its listener for good. What `return()` throws goes to
 * `report`.
 */
export function observeIterable<T>(iterable: AsyncIterable<T>, report: ErrorReporter): Observable<T> {
  return new Observable<T>((subscriber) => {
    const it = iterable[Symbol.asyncIterator]();
    // An iterator that is done, or failed, owes no `return()`.
    let finished = false;
    const failed = (error: unknown) => {
      finished = true;
      subscriber.error(error);
    };
    const pull = (): void => {
      let next: Promise<IteratorResult<T>>;
      try {
        next = it.next();
      } catch (error) {
        failed(error);
        return;
      }
      next.then((result) => {
        if (subscriber.closed) return;
        if (result.done) {
          finished = true;
          subscriber.complete();
          return;
        }
        subscriber.next(result.value);
        if (!subscriber.closed) pull();
      }, failed);
    };
    pull();
    return () => {
      if (!finished) endIterator(it, report);
    };
  });
}
