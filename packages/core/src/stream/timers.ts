// The stream's timers: none keeps the process alive on its own.

/**
 * Calls `stalled` once `pending()` did not fall for a whole `timeout`, checked at the end of each:
 * progress seen at a check counts for one more `timeout`. A sink without `pending()` (NaN) stalls at
 * the first check. `hold` is given each timer, for the caller to clear.
 */
export function watchProgress(
  timeout: number,
  pending: () => number,
  stalled: () => void,
  hold: (timer: ReturnType<typeof setTimeout>) => void,
): void {
  let left = pending();
  const check = () => {
    const now = pending();
    if (now < left) {
      left = now;
      hold(unrefTimer(setTimeout(check, timeout)));
    } else stalled();
  };
  hold(unrefTimer(setTimeout(check, timeout)));
}

/** `timer`, unref'd where the runtime has `unref()` (a browser's timer is a number). */
export function unrefTimer<T>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

const setImmediateOf = (globalThis as { setImmediate?: (callback: () => void) => unknown }).setImmediate;

/**
 * Resolves in a later turn of the event loop, once the timers and I/O that are due have run:
 * `setImmediate` where the runtime has it (Node, Bun, Deno), else `setTimeout(0)`.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => (setImmediateOf ?? setTimeout)(resolve));
}
