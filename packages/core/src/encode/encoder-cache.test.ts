import { describe, expect, it } from 'vitest';
import { encodeJoined } from './encoder-cache.js';

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('encodeJoined', () => {
  it('encodes the same strings in the same order once', () => {
    const texts = ['data: 1\n\n', 'data: 2\n\n', 'data: €\n\n'];
    const first = encodeJoined(texts, 0, 3);
    expect(decode(first)).toBe(texts.join(''));
    expect(encodeJoined([...texts], 0, 3)).toBe(first);
  });

  it('encodes another order, another range or other strings of equal text anew, and exactly', () => {
    const texts = ['data: a\n\n', 'data: b\n\n', 'data: c\n\n'];
    const all = encodeJoined(texts, 0, 3);
    const reversed = encodeJoined([...texts].reverse(), 0, 3);
    expect(decode(reversed)).toBe('data: c\n\ndata: b\n\ndata: a\n\n');
    expect(decode(encodeJoined(texts, 1, 3))).toBe('data: b\n\ndata: c\n\n');
    const equal = texts.map((text) => text.split('').join(''));
    const again = encodeJoined(equal, 0, 3);
    expect(decode(again)).toBe(decode(all));
    expect(again).not.toBe(all);
  });
});
