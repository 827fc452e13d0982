export type { CloseReason, MessageEvent, StreamOptions, TypedMessageEvent } from '@rxsse/core';
export type { EventContext, EventHandler } from '@rxsse/node';
export { sse } from './sse.js';
