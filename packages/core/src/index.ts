export { cachedEncoder } from './encoder-cache.js';
export { type SseField, SseFormatError, SseRangeError } from './errors.js';
export {
  type EventSourceLike,
  EventStream,
  SOURCE_HEADERS,
  streamEvents,
  type WithSourceHeaders,
} from './event-stream.js';
export { DEFAULT_MAX_DATA_LINES, encodeEvent, formatComment, formatEvent, formatRetry } from './format.js';
export { type HeaderOverrides, sseHeaders } from './headers.js';
export { type HeartbeatTarget, heartbeatCount, scheduleHeartbeat } from './heartbeat.js';
export { LAST_EVENT_ID_PARAM, pickLastEventId } from './last-event-id.js';
export type { StreamMetrics } from './metrics.js';
export {
  type CloseReason,
  type OverflowPolicy,
  type ResolvedStreamOptions,
  resolveStreamOptions,
  type StreamOptions,
  type StreamStats,
} from './options.js';
export type { Sink } from './sink.js';
export { openStreams, type ShutdownOptions, StreamGroup } from './stream-group.js';
export type { EventMap, FormatOptions, MessageEvent, TypedMessageEvent } from './types.js';
