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
      holdIdleClose(server, work);
      work.catch((error: unknown) => log.error({ err: error }, 'rxsse: closing the event streams failed'));
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Holds off Node's `closeIdleConnections()` on `server` until `work` settles, then runs it. Fastify
 * closes the server once the hook returned, and Node's `close()` runs it, which takes a connection
 * whose response has ended for idle even while that response still flushes to a slow client: the
 * streams still flushing would be dropped there, long before the shutdown's deadline. Once they
 * have ended, their kept-alive connections would hold the close for Fastify's `keepAliveTimeout`.
 */
function holdIdleClose(server: object, work: Promise<void>): void {
  const target = server as { closeIdleConnections?: () => void };
  const closeIdle = target.closeIdleConnections;
  // An HTTP/2 server has none: its sessions are closed with the streams.
  if (typeof closeIdle !== 'function') return;
  const own = Object.hasOwn(target, 'closeIdleConnections');
  target.closeIdleConnections = () => {};
  const release = () => {
    if (own) target.closeIdleConnections = closeIdle;
    else delete target.closeIdleConnections;
    closeIdle.call(server);
  };
  work.then(release, release);
}
