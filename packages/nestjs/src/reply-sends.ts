/** On a Fastify reply its `onRequest` hook saw: whether its `send()` was called. */
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
      reply[SENT] = false;
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

/**
 * Whether something answered through the Fastify reply's `send` (a guard, the method through
 * `@Res()`): Fastify writes that answer only once its onSend hooks ran, so one that awaits
 * (`@fastify/compress`) leaves the Node response unwritten meanwhile. Since the request began on an
 * app {@link markReplySends} hooked, else from this call on; never for another platform's response.
 */
export function watchReplySend(res: { send?: unknown; raw?: unknown }): () => boolean {
  const reply = res as Record<PropertyKey, unknown>;
  if (SENT in reply) return () => reply[SENT] === true;
  const send = res.send;
  if (typeof send !== 'function' || res.raw === undefined) return () => false;
  let called = false;
  res.send = function (this: unknown, ...args: unknown[]) {
    called = true;
    return send.apply(this, args);
  };
  return () => called;
}
