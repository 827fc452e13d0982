import { SOURCE_HEADERS } from '../http/headers.js';
import { SOURCE_GAP_EVENT, SUBSCRIBER_GAP_EVENT, type WithSubscriberGapEvent } from '../http/source-gap.js';
import { SOURCE_OPENS_FIRST } from '../http/source-open.js';
import { SOURCE_RELEASE } from '../http/source-release.js';

/** What a source tells its stream besides its events. */
const MARKS = [SOURCE_HEADERS, SOURCE_GAP_EVENT, SOURCE_OPENS_FIRST, SOURCE_RELEASE];

type Lift = (this: object, operator: unknown) => unknown;
type Subscribe = (this: object, subscriber: unknown, ...rest: unknown[]) => unknown;

/**
 * Has every Observable piped from `source` carry its marks (headers, gap event, opening first, how
 * to let go of it) as they are when the operator's Observable is made: rxjs makes each through the
 * `lift` of the one before. Without them, a channel's source piped through `map` would keep its
 * place on the live bus when no stream takes it (a HEAD), fail a request with an error status after
 * which EventSource never reconnects, and lose its truncation header and the truncation event after
 * events its route dropped. `outer` hears the stream's subscriber (one that places gap events) as it
 * subscribes to one of them. A source without `lift` (no rxjs Observable) is left as it is.
 */
export function keepMarksWhenPiped<T extends object>(
  source: T,
  outer: (subscriber: WithSubscriberGapEvent) => void,
): T {
  const lift = (source as { lift?: Lift }).lift;
  if (typeof lift !== 'function') return source;
  const piped: Lift = function (operator) {
    const made = lift.call(this, operator);
    if (typeof made !== 'object' || made === null) return made;
    for (const mark of MARKS) {
      // As a descriptor: the headers are a getter, read when the stream starts.
      const descriptor = Object.getOwnPropertyDescriptor(source, mark);
      if (descriptor) Object.defineProperty(made, mark, descriptor);
    }
    const subscribe = (made as { subscribe?: Subscribe }).subscribe;
    if (typeof subscribe === 'function') {
      const heard: Subscribe = function (subscriber, ...rest) {
        if (typeof (subscriber as WithSubscriberGapEvent | null)?.[SUBSCRIBER_GAP_EVENT] === 'function')
          outer(subscriber as WithSubscriberGapEvent);
        return subscribe.call(this, subscriber, ...rest);
      };
      Object.defineProperty(made, 'subscribe', { value: heard, configurable: true, writable: true });
    }
    return keepMarksWhenPiped(made, outer);
  };
  Object.defineProperty(source, 'lift', { value: piped, configurable: true, writable: true });
  return source;
}
