import type { MessageEvent } from './types.js';

/**
 * The size of a message for byte limits: UTF-8 bytes of its data (strings as they are, anything
 * else as JSON), id and type. Close to its size on the wire, and computable without route options.
 */
export function messageSize(message: MessageEvent<unknown>): number {
  const { data } = message;
  const text = typeof data === 'string' ? data : (JSON.stringify(data) ?? '');
  return utf8Length(text) + utf8Length(message.id ?? '') + utf8Length(message.type ?? '');
}

/** UTF-8 length of a string, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      // A surrogate pair is 2 UTF-16 units and 4 UTF-8 bytes.
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2;
        i++;
      } else bytes += 2;
    } else bytes += 2;
  }
  return bytes;
}
