// An AsyncIterable route behind an interceptor reaches Nest's chain as an Observable.
import { take } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { observeIterable } from '../src/iterable.js';

/** A generator with nothing to wait for, which resolves each pull in a microtask, `total` times. */
function quickGenerator(total: number) {
  const counts = { pulled: 0 };
  async function* generate() {
    while (counts.pulled < total) {
      counts.pulled++;
      yield counts.pulled;
    }
  }
  return { counts, iterable: generate() };
}

describe('observeIterable', () => {
  it('an iterator whose pulls resolve at once leaves the event loop its turns', async () => {
    const total = 50_000;
    const { counts, iterable } = quickGenerator(total);
    let pulledWhenTimerRan: number | undefined;
    setTimeout(() => {
      pulledWhenTimerRan = counts.pulled;
    }, 0);
    const values: number[] = [];
    await new Promise<void>((resolve, reject) =>
      observeIterable(iterable, reject).subscribe({
        next: (value) => values.push(value),
        error: reject,
        complete: resolve,
      }),
    );
    expect(pulledWhenTimerRan).toBeLessThan(total / 10);
    expect(values).toHaveLength(total);
    expect(values.at(-1)).toBe(total);
  });

  it('pulls no more once unsubscribed while it waits for its turn', async () => {
    const total = 50_000;
    const { counts, iterable } = quickGenerator(total);
    const report = vi.fn();
    const subscription = observeIterable(iterable, report).subscribe();
    await new Promise((resolve) => setTimeout(resolve, 0));
    subscription.unsubscribe();
    const stopped = counts.pulled;
    await turns(2);
    expect(stopped).toBeLessThan(total);
    expect(counts.pulled).toBe(stopped);
    expect(report).not.toHaveBeenCalled();
  });

  /** Lets `n` turns of the event loop pass: pulls resolve in microtasks, far sooner. */
  async function turns(n: number) {
    for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
  }

  /** An iterable that gives 1, 2, 3… at once, counting its pulls and the calls of its `return()`. */
  function countingIterable() {
    const counts = { pulled: 0, returned: 0 };
    const iterator: AsyncIterator<number> = {
      next: () => Promise.resolve({ value: ++counts.pulled, done: false }),
      return: () => {
        counts.returned++;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
    return { counts, iterable: { [Symbol.asyncIterator]: () => iterator } };
  }

  it('pulls no more once its subscriber leaves at the value it gave, and returns the iterator once', async () => {
    const { counts, iterable } = countingIterable();
    const report = vi.fn();
    const values: number[] = [];
    // A subscriber that leaves at the first value, as a stream whose client left at that event.
    observeIterable(iterable, report)
      .pipe(take(1))
      .subscribe((value) => values.push(value));
    await turns(2);
    expect(values).toEqual([1]);
    expect(counts).toEqual({ pulled: 1, returned: 1 });
    expect(report).not.toHaveBeenCalled();
  });

  it('pulls no more once unsubscribed while it waits for the stream to have room', async () => {
    const { counts, iterable } = countingIterable();
    let room: (() => void) | undefined;
    // The stream is full after the first value, and has room again only once its client left.
    const demand = () =>
      counts.pulled === 1 && !room
        ? new Promise<void>((resolve) => {
            room = resolve;
          })
        : undefined;
    const subscription = observeIterable(iterable, vi.fn(), demand).subscribe();
    await turns(2);
    expect(room).toBeDefined();
    subscription.unsubscribe();
    room!();
    await turns(2);
    expect(counts).toEqual({ pulled: 1, returned: 1 });
  });

  /** An iterable whose first pull gives `{ data: 'x' }` and whose second gives `second()`. */
  function secondPull(second: () => unknown) {
    let pulls = 0;
    const returned = vi.fn(async () => ({ done: true, value: undefined }));
    const iterable = {
      [Symbol.asyncIterator]: () => ({
        next: () => (pulls++ === 0 ? Promise.resolve({ value: { data: 'x' }, done: false }) : second()),
        return: returned,
      }),
    } as unknown as AsyncIterable<unknown>;
    return { iterable, returned };
  }

  /** What the Observable gave, and what reached `report`, once it ended. */
  function outcome(iterable: AsyncIterable<unknown>) {
    const report = vi.fn();
    const values: unknown[] = [];
    const ended = new Promise<unknown>((resolve) =>
      observeIterable(iterable, report).subscribe({
        next: (value) => values.push(value),
        error: resolve,
        complete: () => resolve('complete'),
      }),
    );
    return ended.then((end) => ({ end, values, report }));
  }

  it.each([
    ['undefined', () => Promise.resolve(undefined), 'undefined'],
    ['a number', () => Promise.resolve(7), 'number 7'],
    ['null, returning no promise', () => null, 'null'],
  ])(
    'an iterator whose next() gives %s fails with a TypeError, and is not returned',
    async (_, second, named) => {
      const { iterable, returned } = secondPull(second);
      const { end, values, report } = await outcome(iterable);
      expect(end).toEqual(new TypeError(`the iterator's next() gave ${named}, not an object`));
      expect(values).toEqual([{ data: 'x' }]);
      expect(returned).not.toHaveBeenCalled();
      expect(report).not.toHaveBeenCalled();
    },
  );

  it('an iterator whose next() returns a result, not a promise, is read as `for await` reads it', async () => {
    let pulls = 0;
    const iterable = {
      [Symbol.asyncIterator]: () => ({
        next: () => (pulls++ < 2 ? { value: pulls, done: false } : { value: undefined, done: true }),
      }),
    } as unknown as AsyncIterable<unknown>;
    const { end, values } = await outcome(iterable);
    expect(end).toBe('complete');
    expect(values).toEqual([1, 2]);
  });

  it('a result whose `done` throws fails the Observable with that error', async () => {
    const boom = new Error('done getter');
    const { iterable } = secondPull(() =>
      Promise.resolve({
        get done() {
          throw boom;
        },
      }),
    );
    const { end } = await outcome(iterable);
    expect(end).toBe(boom);
  });
});
