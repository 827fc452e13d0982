import type { MessageEvent } from '../encode/types.js';
import type { EventSourceLike } from './source.js';

/** What a route's handler receives besides its request, on every transport. */
export interface EventContext {
  /** The id the client last saw (`Last-Event-ID` header, or the `lastEventId` query parameter). */
  lastEventId: string | undefined;
  /** Aborted when the stream closes, whatever the reason: stop work for this client then. */
  signal: AbortSignal;
}

/** A route's handler: gets the transport's request `Req`, returns (or resolves to) the events for one client. */
export type EventHandler<Req, M extends MessageEvent<unknown> = MessageEvent> = (
  req: Req,
  context: EventContext,
) => EventSourceLike<M> | Promise<EventSourceLike<M>>;

/**
 * Whether a handler failed with the abort of its context's `signal` (it gave the signal to a
 * `fetch` or a timer) once its client left: the client's close, not an error of the route.
 */
export function isAbortOf(error: unknown, signal: AbortSignal): boolean {
  return (
    signal.aborted && (error === signal.reason || (error as { name?: unknown } | null)?.name === 'AbortError')
  );
}

/** The source of a handler whose client left: a stream of it closes before it reads anything. */
export const NO_EVENTS: AsyncIterable<never> = {
  [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }),
};
