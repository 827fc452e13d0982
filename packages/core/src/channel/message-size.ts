import type { MessageEvent } from '../encode/types.js';
import { utf8Length } from '../encode/utf8.js';

/**
 * The size of a message for byte limits: UTF-8 bytes of its data (strings as they are, anything
 * else as JSON), id and type. Close to its size on the wire, and computable without route options.
 */
export function messageSize(message: MessageEvent<unknown>): number {
  const { data } = message;
  return sizeWithData(message, typeof data === 'string' ? data : (JSON.stringify(data) ?? ''));
}

/** @internal {@link messageSize} with the data's text already made. */
export function sizeWithData(message: MessageEvent<unknown>, text: string): number {
  return utf8Length(text) + utf8Length(message.id ?? '') + utf8Length(message.type ?? '');
}
