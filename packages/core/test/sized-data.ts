/** Event data of random sizes relative to a queue's cap, for the stream's property tests. */
import fc from 'fast-check';
import { utf8Length } from '../src/encode/utf8.js';

/** One code point of each UTF-8 length. */
const CHARS = ['x', 'é', '€', '😀'];

export interface SizedData {
  /** Of the cap: mostly a few bytes to a third of it, some near it, a few past it. */
  fraction: number;
  /** Which character the data repeats: 1 to 4 UTF-8 bytes. */
  char: number;
}

export const sizedData: { [K in keyof SizedData]: fc.Arbitrary<SizedData[K]> } = {
  fraction: fc.oneof(
    { weight: 4, arbitrary: fc.double({ min: 0, max: 0.35, noNaN: true }) },
    { weight: 1, arbitrary: fc.double({ min: 0.35, max: 1.05, noNaN: true }) },
  ),
  char: fc.integer({ min: 0, max: CHARS.length - 1 }),
};

/** The data of an event of about `fraction` of `cap` bytes, in one character. */
export function dataOf({ fraction, char }: SizedData, cap: number): string {
  const c = CHARS[char]!;
  return c.repeat(Math.max(0, Math.floor((fraction * cap) / utf8Length(c))));
}
