import type { FastifyBaseLogger } from 'fastify';

/**
 * Waits for `work`, but returns before Fastify's `pluginTimeout` (`timeout` ms, 0 for none) has
 * passed: it bounds every preClose hook, and past it `app.close()` rejects with "Plugin did not
 * start in time" while the close goes on. A shutdown `deadline` longer than that goes on by itself
 * after the hook returned (the server's close waits for its connections, `server`'s idle ones closed
 * once it ended); a later failure is logged.
 */
export async function withinHookTimeout(
  work: Promise<void>,
  timeout: number,
  startedAt: number,
  log: FastifyBaseLogger,
  server: object,
): Promise<void> {
  if (!(timeout > 0)) return work;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A tenth early, counted from the hook's start (`startedAt`, on `performance.now()`'s clock): the
  // hook's own timer began then, and ending the streams took some of it already.
  const cut = new Promise<'cut'>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, timeout * 0.9 - (performance.now() - startedAt)), 'cut');
  });
  try {
    if ((await Promise.race([work, cut])) === 'cut') {
      closeIdleOnceDone(server, work);
      work.catch((error: unknown) => log.error({ err: error }, 'rxsse: closing the event streams failed'));
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes the idle connections of `server` once `work` settles. Fastify closes the server once the
 * hook returned, and Node's `close()` closes idle connections only as it begins: the connections
 * of the streams that flush after it would then hold the close for Fastify's `keepAliveTimeout`.
 */
function closeIdleOnceDone(server: object, work: Promise<void>): void {
  const closeIdle = () => (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
  work.then(closeIdle, closeIdle);
}
