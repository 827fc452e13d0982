export { MAX_DURATION } from './duration.js';
export { ChannelUnavailableError, type SseField, SseFormatError, SseRangeError } from './errors.js';
export type { EventContext, EventHandler } from './event-context.js';
export {
  type ErrorReporter,
  EventStream,
  SOURCE_HEADERS,
  streamEvents,
  turnAwayEventStream,
  type WithSourceHeaders,
} from './event-stream.js';
export { DEFAULT_MAX_DATA_LINES, encodeEvent, formatComment, formatEvent, formatRetry } from './format.js';
export { type HeaderOverrides, removedHeaders, sseHeaders } from './headers.js';
export { type HeartbeatTarget, heartbeatCount, scheduleHeartbeat } from './heartbeat.js';
export { LAST_EVENT_ID_PARAM, pickLastEventId } from './last-event-id.js';
export type { StreamMetrics } from './metrics.js';
export {
  type CloseReason,
  type InvalidMessagePolicy,
  type OverflowPolicy,
  type ResolvedStreamOptions,
  resolveStreamOptions,
  type StreamOptions,
  type StreamStats,
} from './options.js';
export type { Sink } from './sink.js';
export { checkEventSource, type EventSourceLike } from './source.js';
export { checkShutdownOptions, openStreams, type ShutdownOptions, StreamGroup } from './stream-group.js';
export type { EventMap, FormatOptions, MessageEvent, TypedMessageEvent } from './types.js';

// Channels: topics with history and replay, on a pluggable engine.

export {
  Channel,
  type ChannelOptions,
  type ChannelSource,
  createChannel,
  type SubscribeOptions,
} from './channel.js';
export type { ChannelEvent } from './channel-feed.js';
export type { ReplayLimit } from './channel-replay.js';
export {
  DEFAULT_TRUNCATION_EVENT_TYPE,
  HISTORY_TRUNCATED_HEADER,
  type HistoryTruncatedEvent,
  type TruncationReason,
} from './channel-truncation.js';
export type {
  ChannelEngine,
  HistoryPage,
  HistoryStore,
  LiveBus,
  LiveListener,
  ReadLimit,
  StoredMessage,
} from './history.js';
export { compareStreamIds, formatStreamId, parseStreamId, type StreamId } from './history-id.js';
export { type MemoryEngineOptions, memoryEngine } from './history-memory.js';
export { HistoryRing, type RingLimits } from './history-ring.js';
export { messageSize } from './history-size.js';
export { utf8Length } from './utf8-length.js';
