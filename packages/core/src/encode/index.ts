// The encoder: messages to spec-exact `text/event-stream` bytes.
export { type SseField, SseFormatError, SseRangeError } from './errors.js';
export { DEFAULT_MAX_DATA_LINES, encodeEvent, formatComment, formatEvent, formatRetry } from './format.js';
export type { EventMap, FormatOptions, MessageEvent, TypedMessageEvent } from './types.js';
export { utf8Bytes, utf8Length } from './utf8.js';
