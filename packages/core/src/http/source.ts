import type { Observable } from 'rxjs';
import type { MessageEvent } from '../encode/types.js';

/**
 * What a route may return: an Observable of messages (pushed, queued within `maxQueueBytes`) or an
 * AsyncIterable (pulled only when the client has room, so nothing queues at all). `M` is the
 * message type, e.g. `TypedMessageEvent<Events>` for a route that declares its events.
 */
export type EventSourceLike<M extends MessageEvent<unknown> = MessageEvent> =
  | Observable<M>
  | AsyncIterable<M>;

/** True for anything with a `subscribe` method: rxjs, or any other Observable implementation. */
export function isSubscribable(
  source: EventSourceLike<MessageEvent<unknown>>,
): source is Observable<MessageEvent<unknown>> {
  return typeof (source as Partial<Observable<unknown>>).subscribe === 'function';
}

/**
 * Checks what a handler returned before anything is written, so the framework can still answer
 * with its own error status.
 * @throws {TypeError} naming the value, when it is neither an Observable nor an AsyncIterable.
 */
export function checkEventSource(value: unknown): EventSourceLike<MessageEvent<unknown>> {
  if (isEventSource(value)) return value;
  throw new TypeError(
    `An event stream's handler returned ${describeValue(value)}, not an Observable or an AsyncIterable`,
  );
}

/**
 * Checks a route's handler when the route is set up, so that a source passed where a function of
 * the request belongs fails there, not with an error status on every request.
 * @param api - the function the handler was passed to, for the message: `'sse'`.
 * @throws {TypeError} naming what was given, unless `handler` is a function.
 */
export function checkEventHandler(handler: unknown, api: string): void {
  if (typeof handler === 'function') return;
  const hint = isEventSource(handler) ? `; wrap a source in one: ${api}(() => source)` : '';
  throw new TypeError(
    `${api}() takes a handler, a function of the request that returns its events, got ${describeValue(handler)}${hint}`,
  );
}

function isEventSource(value: unknown): value is EventSourceLike<MessageEvent<unknown>> {
  return (
    value != null &&
    (typeof value === 'object' || typeof value === 'function') &&
    (typeof (value as { subscribe?: unknown }).subscribe === 'function' ||
      typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function')
  );
}

/** Names a value for an error message: its kind, and a short text or class name. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`;
  const text = String(value);
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 40)}...` : text}`;
}

/** Whether a value is a promise (or any thenable): a handler's setup to wait for, a callback's rejection to hear. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/** An object or a function: what may carry properties (an iterator, an error a framework reads). */
export function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}
