export type { CloseReason, MessageEvent, StreamOptions, TypedMessageEvent } from '@rxsse/core';
export { closeStreamsAndStop } from './shutdown.js';
export { DEFAULT_HEARTBEAT, type EventContext, type EventHandler, readLastEventId, sse } from './sse.js';
export { SseStreamDroppedError, WebSink } from './web-sink.js';
