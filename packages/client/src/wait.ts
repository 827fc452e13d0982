/** Resolves after `ms`, or as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    // An aborted signal fires no more 'abort': the timer alone would hold the process for `ms`.
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/**
 * Resolves once the page is visible (at once outside browsers), or as soon as `signal` aborts: a
 * hidden tab does not reconnect until it is looked at again.
 */
export function whenVisible(signal: AbortSignal): Promise<void> {
  const doc = (globalThis as { document?: Document }).document;
  return new Promise((resolve) => {
    const check = () => {
      if (doc?.visibilityState === 'hidden' && !signal.aborted) return;
      doc?.removeEventListener('visibilitychange', check);
      signal.removeEventListener('abort', check);
      resolve();
    };
    doc?.addEventListener('visibilitychange', check);
    signal.addEventListener('abort', check);
    check();
  });
}
