import type { FastifyBaseLogger } from 'fastify';

/**
 * Waits for `work`, but returns before Fastify's `pluginTimeout` (`timeout` ms, 0 for none) has
 * passed: it bounds every preClose hook, and past it `app.close()` rejects with "Plugin did not
 * start in time" while the close goes on. A shutdown `deadline` longer than that goes on by itself
 * after the hook returned (the server's close waits for its connections); a later failure is logged.
 */
export async function withinHookTimeout(
  work: Promise<void>,
  timeout: number,
  log: FastifyBaseLogger,
): Promise<void> {
  if (!(timeout > 0)) return work;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A tenth early: the hook's own timer began a little before this one.
  const cut = new Promise<'cut'>((resolve) => {
    timer = setTimeout(resolve, timeout * 0.9, 'cut');
  });
  try {
    if ((await Promise.race([work, cut])) === 'cut') {
      work.catch((error: unknown) => log.error({ err: error }, 'rxsse: closing the event streams failed'));
    }
  } finally {
    clearTimeout(timer);
  }
}
