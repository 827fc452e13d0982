export type { CloseReason, MessageEvent, StreamOptions, TypedMessageEvent } from '@rxsse/core';
export { closeStreamsOnServerClose, type EventContext, type EventHandler } from '@rxsse/node';
export { sse } from './sse.js';
