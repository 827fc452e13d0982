// An AsyncIterable route behind an interceptor reaches Nest's chain as an Observable.
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
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stopped).toBeLessThan(total);
    expect(counts.pulled).toBe(stopped);
    expect(report).not.toHaveBeenCalled();
  });
});
