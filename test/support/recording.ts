import type { CloseReason, StreamMetrics, StreamOptions, StreamStats } from '@rxsse/core';
import { type ChannelEngine, memoryEngine } from '@rxsse/core/channel';
import { Observable } from 'rxjs';

/** One stream's close, as `onClose` reported it. */
export interface Closed {
  reason: CloseReason;
  stats: StreamStats;
  error?: unknown;
}

/** Options that record every close, so tests can wait for and inspect them. */
export function recording(options: StreamOptions = {}): { options: StreamOptions; closes: Closed[] } {
  const closes: Closed[] = [];
  return {
    closes,
    options: { ...options, onClose: (reason, stats, error) => closes.push({ reason, stats, error }) },
  };
}

/** A source that counts its live subscriptions and emissions. */
export function counted<T>(source: Observable<T>) {
  const counts = { active: 0, subscribed: 0, emitted: 0 };
  const observable = new Observable<T>((subscriber) => {
    counts.active++;
    counts.subscribed++;
    const inner = source.subscribe({
      next: (value) => {
        counts.emitted++;
        subscriber.next(value);
      },
      error: (error) => subscriber.error(error),
      complete: () => subscriber.complete(),
    });
    return () => {
      counts.active--;
      inner.unsubscribe();
    };
  });
  return { counts, observable };
}

/** An iterator that never yields, and notes whether its `return()` was called: a handler's listener. */
export function neverYielding(): { iterator: AsyncIterableIterator<never>; returned: () => boolean } {
  let returned = false;
  const iterator: AsyncIterableIterator<never> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    next: () => new Promise<never>(() => {}),
    return: async () => {
      returned = true;
      return { done: true, value: undefined };
    },
  };
  return { iterator, returned: () => returned };
}

/** Metrics hooks that `note` what they report of a request (`opened`, `closed:<reason>`, `failed`). */
export function notingMetrics(note: (seen: string) => void): StreamMetrics {
  return {
    opened: () => note('opened'),
    wrote: () => {},
    heartbeat: () => {},
    dropped: () => {},
    closed: (reason) => note(`closed:${reason}`),
    failed: () => note('failed'),
  };
}

/**
 * Options whose `metrics` hooks and `onClose` note every request of a route, in `seen` (`opened`,
 * `closed:<reason>`, `failed`) and `closes`, so a test compares what each reported.
 */
export function metered(options: StreamOptions = {}): {
  options: StreamOptions;
  closes: Closed[];
  seen: string[];
} {
  const seen: string[] = [];
  const metrics = notingMetrics((hook) => seen.push(hook));
  const { options: recorded, closes } = recording({ ...options, metrics });
  return { options: recorded, closes, seen };
}

/** `engine` (a memory engine by default), counting its live listeners in `counts.live`. */
export function countingListeners(engine: ChannelEngine = memoryEngine()) {
  const counts = { live: 0 };
  const counting: ChannelEngine = {
    ...engine,
    listen: async (topic, listener) => {
      const unlisten = await engine.listen(topic, listener);
      counts.live++;
      return () => {
        counts.live--;
        unlisten();
      };
    },
  };
  return { engine: counting, counts };
}
