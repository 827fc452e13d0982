// What every transport shares: the Sink it implements, the response headers, Last-Event-ID, and
// what a route's handler receives and returns.
export { type EventContext, type EventHandler, isAbortOf, NO_EVENTS } from './event-context.js';
export {
  checkSourceHeaders,
  type HeaderOverrides,
  removedHeaders,
  SOURCE_HEADERS,
  sseHeaders,
  type WithSourceHeaders,
} from './headers.js';
export { LAST_EVENT_ID_PARAM, pickLastEventId } from './last-event-id.js';
export { checkOptionNames, checkOptionsObject } from './option-names.js';
export type { Sink } from './sink.js';
export {
  checkEventHandler,
  checkEventSource,
  describeValue,
  type EventSourceLike,
  isThenable,
} from './source.js';
export {
  SOURCE_GAP_EVENT,
  SUBSCRIBER_DEMAND,
  SUBSCRIBER_GAP_EVENT,
  type WithSourceGapEvent,
  type WithSubscriberDemand,
  type WithSubscriberGapEvent,
} from './source-gap.js';
export { SOURCE_OPENS_FIRST, type WithSourceOpensFirst } from './source-open.js';
export { SOURCE_RELEASE, type WithSourceRelease } from './source-release.js';
