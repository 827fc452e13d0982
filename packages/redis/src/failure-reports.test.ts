import { describe, expect, it } from 'vitest';
import { RedisRecovered, RedisRepeatedFailure } from './errors.js';
import { FailureReports } from './failure-reports.js';

/** Reports of live reads on `clock`, and what they told. */
function recording(clock = () => 0) {
  const told: unknown[] = [];
  return { told, reports: new FailureReports('live reads', (error) => told.push(error), clock) };
}

describe('FailureReports', () => {
  it('tells repeats of a failure 1 s, 2 s, 4 s ... apart, at most a minute, each with what it held back', () => {
    let now = 0;
    const { told, reports } = recording(() => now);
    const refused = new Error('NOPERM no xread');
    // One failure every 500 ms for ten minutes.
    for (; now <= 600_000; now += 500) reports.failed(refused);
    expect(told[0]).toBe(refused);
    const repeats = told.slice(1) as RedisRepeatedFailure[];
    expect(repeats.every((r) => r instanceof RedisRepeatedFailure && r.cause === refused)).toBe(true);
    expect(repeats.slice(0, 7).map((r) => r.heldBack)).toEqual([1, 3, 7, 15, 31, 63, 119]);
    // Past the bound, a report a minute: 119 held back between two.
    expect(new Set(repeats.slice(6, -1).map((r) => r.heldBack))).toEqual(new Set([119]));
    reports.succeeded();
    reports.succeeded();
    const recovered = told.at(-1) as RedisRecovered;
    expect(recovered).toBeInstanceOf(RedisRecovered);
    expect(told.filter((r) => r instanceof RedisRecovered)).toHaveLength(1);
    // Every failure counted: told alone, or in a report's count.
    expect(recovered.failures).toBe(1201);
    expect(repeats.length + repeats.reduce((sum, r) => sum + r.heldBack, 0) + 1 + recovered.heldBack).toBe(
      1201,
    );
  });

  it('tells a different failure at once, and the same one at once again after a recovery', () => {
    const { told, reports } = recording();
    const a = new Error('NOPERM');
    const b = new Error('MASTERDOWN');
    reports.failed(a);
    reports.failed(a);
    reports.failed(b);
    reports.failed(b);
    reports.succeeded();
    reports.failed(a);
    expect(told).toEqual([a, b, expect.any(RedisRecovered), a]);
    expect(told[2]).toMatchObject({ failures: 4, heldBack: 2 });
    // A lone failure and a success: the one report says enough.
    reports.succeeded();
    expect(told).toHaveLength(4);
  });

  it('tells failures of different classes with the same message apart', () => {
    const { told, reports } = recording();
    class SocketClosedUnexpectedlyError extends Error {}
    const closed = new SocketClosedUnexpectedlyError('Socket closed unexpectedly');
    const plain = new Error('Socket closed unexpectedly');
    reports.failed(closed);
    reports.failed(plain);
    reports.failed(closed);
    expect(told).toEqual([closed, plain]);
  });

  it('forgets the oldest failure past 32 kinds in one outage, and tells it at once when it comes back', () => {
    const { told, reports } = recording();
    const failures = Array.from({ length: 33 }, (_, i) => new Error(`failure ${i}`));
    for (const failure of failures) reports.failed(failure);
    expect(told).toEqual(failures);
    // The newest is still known: held back.
    reports.failed(failures[32]!);
    expect(told).toHaveLength(33);
    // The oldest was forgotten when the 33rd came: told as new.
    reports.failed(failures[0]!);
    expect(told).toEqual([...failures, failures[0]]);
  });
});
