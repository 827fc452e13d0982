/** An HTTP adapter as NestJS 12 closes it: `app.close()` awaits `beforeClose` before any shutdown hook. */
interface ClosingAdapter {
  beforeClose?: (...args: unknown[]) => unknown;
}

/**
 * Runs `run` from `adapter.beforeClose`, after whatever the adapter had there, so that on NestJS 12
 * it runs before any provider's `onModuleDestroy`. NestJS 11 never calls it.
 */
export function runBeforeClose(adapter: object, run: () => Promise<void>): void {
  const closing = adapter as ClosingAdapter;
  const own = closing.beforeClose;
  closing.beforeClose = async function (this: unknown, ...args: unknown[]) {
    try {
      return await own?.apply(this, args);
    } finally {
      // Whatever the adapter's own step did, the streams must still end before the hooks.
      await run();
    }
  };
}
