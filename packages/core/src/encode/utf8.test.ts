import { describe, expect, it } from 'vitest';
import { utf8Bytes, utf8Length } from './utf8.js';

const reference = new TextEncoder();

/** Deterministic strings of random UTF-16 units, lone surrogates included. */
function randomTexts(count: number): string[] {
  let state = 0x2545f491;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  // Every boundary of the encoding, on both sides, besides common units.
  const units = [0x41, 0x7f, 0x80, 0xe9, 0x7ff, 0x800, 0x4e2d, 0xd7ff, 0xd800, 0xd83d, 0xdbff];
  units.push(0xdc00, 0xde00, 0xdfff, 0xe000, 0xfffd, 0xffff);
  return Array.from({ length: count }, () =>
    String.fromCharCode(...Array.from({ length: next() % 40 }, () => units[next() % units.length]!)),
  );
}

const CASES: Record<string, string> = {
  empty: '',
  ascii: 'data: {"n":1}\n\n',
  'two-byte': 'café',
  'three-byte': '中文字符',
  'a pair where the ASCII-sized buffer ends': `${'a'.repeat(6)}😀`,
  'a pair right after the first unit': 'a😀bc',
  'a lone high surrogate': 'a\ud83dbc',
  'a lone low surrogate at the end': 'abc\ude00',
  'a long chunk with one non-ASCII event': `${'data: {"msg":"tick"}\n\n'.repeat(3000)}data: é\n\n`,
  'a long text of every kind of unit': `${'a€😀\ud83d\ude00\udc00中é'.repeat(200)}\ud83d`,
  'a text longer than a chunk, not ASCII': `${'data: é\n\n'.repeat(12_000)}`,
};

describe('utf8Bytes and utf8Length', () => {
  for (const [name, text] of Object.entries(CASES)) {
    it(`match TextEncoder for ${name}`, () => {
      const expected = reference.encode(text);
      expect(utf8Bytes(text)).toEqual(expected);
      expect(utf8Length(text)).toBe(expected.length);
    });
  }

  it('match TextEncoder for 2,000 random strings of mixed units', () => {
    for (const text of randomTexts(2000)) {
      const expected = reference.encode(text);
      expect(utf8Bytes(text)).toEqual(expected);
      expect(utf8Length(text)).toBe(expected.length);
    }
  });
});
