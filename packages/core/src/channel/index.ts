// Channels: topics with history and Last-Event-ID replay, on a pluggable engine.
export {
  Channel,
  type ChannelOptions,
  type ChannelSource,
  createChannel,
  type SubscribeOptions,
} from './channel.js';
export type {
  ChannelEngine,
  GapKind,
  HistoryPage,
  HistoryStore,
  LiveBus,
  LiveListener,
  ReadLimit,
  StoredMessage,
} from './engine.js';
export { ChannelUnavailableError, EngineContractError, UnknownFieldError } from './errors.js';
export type { ChannelEvent } from './feed.js';
export { type MemoryEngineOptions, memoryEngine } from './memory-engine.js';
export { messageSize } from './message-size.js';
export type { ReplayLimit } from './replay.js';
export { HistoryRing, type RingLimits } from './ring.js';
export { dataFromJson } from './stored-data.js';
export { compareStreamIds, formatStreamId, parseStreamId, type StreamId } from './stream-id.js';
export {
  DEFAULT_TRUNCATION_EVENT_TYPE,
  HISTORY_TRUNCATED_HEADER,
  type HistoryTruncatedEvent,
  type TruncationReason,
} from './truncation.js';
