import { type EventContext, responseDone } from '@rxsse/node';
import type { FastifyReply } from 'fastify';

/**
 * `produce`, on a route with a `handlerTimeout`: what it settles with once the timeout fired waits
 * for Fastify's answer to go out, so that the stream finds its response answered instead of
 * starting on it while an onSend hook still holds that answer.
 */
export function afterTimeoutAnswer<S>(
  reply: FastifyReply,
  produce: (context: EventContext) => S | Promise<S>,
): (context: EventContext) => S | Promise<S> {
  if (!hasHandlerTimeout(reply)) return produce;
  return async (context) => {
    const settled = await produce(context);
    if (handlerTimedOut(reply) !== undefined) await responseDone(reply.raw);
    return settled;
  };
}

/**
 * The error of the route's `handlerTimeout`, once Fastify answered it or began to: that answer goes
 * out only once the onSend hooks ran, which may await, and `reply.sent` stays false meanwhile.
 */
export function handlerTimedOut(reply: FastifyReply): unknown {
  // Only on a route that has one: reading the signal makes one where Fastify made none.
  if (!hasHandlerTimeout(reply)) return undefined;
  const reason: unknown = reply.request.signal.reason;
  return (reason as { code?: unknown } | undefined)?.code === 'FST_ERR_HANDLER_TIMEOUT' ? reason : undefined;
}

/** Whether the route has a `handlerTimeout` (an option of later Fastify 5 releases). */
function hasHandlerTimeout(reply: FastifyReply): boolean {
  const { handlerTimeout } = reply.request.routeOptions as { handlerTimeout?: number };
  return handlerTimeout !== undefined && handlerTimeout > 0;
}
