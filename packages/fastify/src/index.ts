export type { CloseReason, MessageEvent, StreamOptions, TypedMessageEvent } from '@rxsse/core';
export type { EventContext } from '@rxsse/node';
export { type FastifyEventSource, type RxsseFastifyOptions, rxsse, rxsse as default } from './sse.js';
