/**
 * Resolves after `ms`, or at once when `signal` aborts, its timer cleared: a loop that waits must
 * not hold the process, or its closer, for the rest of the wait once it was told to stop.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
