export {
  type ContractMessage,
  type DataFormat,
  defineEvents,
  type EncodedMessage,
  type EventContract,
  type EventMap,
  type EventsOf,
  json,
  text,
} from './contract.js';
export { SseEventError, SseResponseError, SseStallError } from './errors.js';
export type { EventOf, HistoryTruncated, HistoryTruncatedData, SseEvent } from './events.js';
export { type EventSourceOptions, fromEventSource } from './from-event-source.js';
