export type { CloseReason, MessageEvent, StreamOptions, TypedMessageEvent } from '@rxsse/core';
export type { EventContext } from '@rxsse/node';
export { type FastifyEventSource, rxsse, rxsse as default } from './sse.js';
