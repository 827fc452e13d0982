// An AsyncIterable route behind an interceptor reaches Nest's chain as an Observable.
import { describe, expect, it, vi } from 'vitest';
import { observeIterable } from '../src/iterable.js';

describe('observeIterable', () => {
  it('an iterator whose pulls resolve at once leaves the event loop its turns', async () => {
    // A generator with nothing to wait for resolves each pull in a microtask.
    const total = 50_000;
    let pulled = 0;
    async function* endless() {
      while (pulled < total) {
        pulled++;
        yield pulled;
      }
    }
    let pulledWhenTimerRan: number | undefined;
    setTimeout(() => {
      pulledWhenTimerRan = pulled;
    }, 0);
    const values: number[] = [];
    const done = new Promise<void>((resolve, reject) =>
      observeIterable(endless(), reject).subscribe({
        next: (v) => values.push(v),
        error: reject,
        complete: resolve,
      }),
    );
    await done;
    expect(pulledWhenTimerRan).toBeLessThan(total / 10);
    expect(values).toHaveLength(total);
    expect(values.at(-1)).toBe(total);
  });

  it('pulls no more once unsubscribed while it waits for its turn', async () => {
    const total = 50_000;
    let pulled = 0;
    async function* endless() {
      while (pulled < total) {
        pulled++;
        yield pulled;
      }
    }
    const report = vi.fn();
    const subscription = observeIterable(endless(), report).subscribe();
    await new Promise((resolve) => setTimeout(resolve, 0));
    subscription.unsubscribe();
    const stopped = pulled;
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stopped).toBeLessThan(total);
    expect(pulled).toBe(stopped);
    expect(report).not.toHaveBeenCalled();
  });
});
