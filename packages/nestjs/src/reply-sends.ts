/** Set on a Fastify reply once its `send()` was called. */
const SENT = Symbol('rxsse.replySent');

interface FastifyHooks {
  addHook(
    name: 'onRequest',
    hook: (request: unknown, reply: Record<PropertyKey, unknown>, done: () => void) => void,
  ): unknown;
}

/**
 * Has every reply of a Fastify app say when its `send()` was called, from the start of its request:
 * a guard that answers through the reply and lets the request on is seen by the route's
 * interceptor, which runs later, though the answer still waits on an async `onSend` hook (a
 * compression plugin's). Anything else, or an app that started already, is left as it is.
 */
export function markReplySends(adapter: { getType?(): string; getInstance?(): unknown } | undefined): void {
  if (adapter?.getType?.() !== 'fastify') return;
  const fastify = adapter.getInstance?.() as Partial<FastifyHooks> | undefined;
  try {
    fastify?.addHook?.('onRequest', (_request, reply, done) => {
      const send = reply.send as (...args: unknown[]) => unknown;
      reply.send = function (this: Record<PropertyKey, unknown>, ...args: unknown[]) {
        this[SENT] = true;
        return send.apply(this, args);
      };
      done();
    });
  } catch {
    // Fastify takes no hook once it has started: the interceptor sees the sends from its own turn on.
  }
}

/** Whether `reply.send()` was called since its request began (see {@link markReplySends}). */
export function replySendCalled(reply: object): boolean {
  return (reply as Record<PropertyKey, unknown>)[SENT] === true;
}
