import { describe, expect, it } from 'vitest';
import { compareStreamIds, formatStreamId, parseStreamId } from '../src/channel/index.js';
import { nextStreamId } from '../src/channel/stream-id.js';

describe('stream ids', () => {
  it('parses <ms>-<seq> with 64-bit parts, and nothing else', () => {
    expect(parseStreamId('1700000000000-3')).toEqual({ ms: 1700000000000n, seq: 3n });
    expect(parseStreamId('18446744073709551615-18446744073709551615')).toEqual({
      ms: 2n ** 64n - 1n,
      seq: 2n ** 64n - 1n,
    });
    for (const bad of [
      '',
      '1',
      '1-',
      '-1',
      '1-2-3',
      ' 1-2',
      '1-2 ',
      'a-1',
      '1.5-2',
      '18446744073709551616-0',
    ])
      expect(parseStreamId(bad), bad).toBeUndefined();
  });

  it('takes at most 20 digits a part, leading zeros too: a stream id is never over 41 characters', () => {
    expect(parseStreamId(`${'0'.repeat(19)}1-${'0'.repeat(19)}1`)).toEqual({ ms: 1n, seq: 1n });
    for (const bad of [`${'0'.repeat(20)}1-0`, `0-${'0'.repeat(20)}1`])
      expect(parseStreamId(bad), bad).toBeUndefined();
  });

  it('orders by time, then sequence, numerically', () => {
    const cmp = (a: string, b: string) => Math.sign(compareStreamIds(parseStreamId(a)!, parseStreamId(b)!));
    expect(cmp('9-0', '10-0')).toBe(-1);
    expect(cmp('10-10', '10-9')).toBe(1);
    expect(cmp('10-9', '10-09')).toBe(0);
  });

  it('takes the clock when it moved on, else the next sequence', () => {
    expect(formatStreamId(nextStreamId(undefined, 5.7))).toBe('5-0');
    expect(formatStreamId(nextStreamId({ ms: 5n, seq: 0n }, 9))).toBe('9-0');
    expect(formatStreamId(nextStreamId({ ms: 5n, seq: 0n }, 5))).toBe('5-1');
    // A clock that went back never makes an id go back.
    expect(formatStreamId(nextStreamId({ ms: 5n, seq: 4n }, 2))).toBe('5-5');
  });

  it('refuses a clock below 0 ms, even by a fraction, rather than make a negative id', () => {
    for (const now of [-0.5, -1e-9])
      expect(() => nextStreamId(undefined, now), String(now)).toThrow(RangeError);
    expect(formatStreamId(nextStreamId(undefined, 0))).toBe('0-0');
  });

  it('refuses a clock at 2^64 ms or past it, rather than make an id past 64 bits', () => {
    for (const now of [2 ** 64, 2 ** 65, Number.MAX_VALUE])
      expect(() => nextStreamId(undefined, now), String(now)).toThrow(RangeError);
    // The largest time below 2^64 that a number holds still makes an id.
    expect(nextStreamId(undefined, 2 ** 64 - 2048).ms).toBe(2n ** 64n - 2048n);
  });
});
