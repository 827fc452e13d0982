import { describe, expect, it } from 'vitest';
import { MAX_DURATION } from './duration.js';
import { streamLifetime } from './lifetime.js';

describe('streamLifetime', () => {
  it('spreads lifetimes over 80-100 % of maxLifetime', () => {
    expect(streamLifetime(60_000, 0)).toBe(48_000);
    expect(streamLifetime(60_000, 0.5)).toBe(54_000);
    expect(streamLifetime(60_000, 0.999_999)).toBe(60_000);
  });

  it('rounds to 1/1000 of maxLifetime, so a route has at most ~200 distinct timer durations', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      const lifetime = streamLifetime(3_600_000, i / 10_000);
      expect(lifetime % 3600).toBe(0);
      seen.add(lifetime);
    }
    expect(seen.size).toBe(201);
  });

  it('never returns more than maxLifetime, which rounding up to a step could pass', () => {
    // Past 2^31-1 ms Node fires a timer after 1 ms: the stream would end at once.
    expect(streamLifetime(MAX_DURATION, 0.999_999)).toBeLessThanOrEqual(MAX_DURATION);
    expect(streamLifetime(1999, 0.999_999)).toBeLessThanOrEqual(1999);
  });

  it('never returns less than 1 ms', () => {
    expect(streamLifetime(1, 0)).toBe(1);
    expect(streamLifetime(2, 0)).toBe(2);
  });
});
