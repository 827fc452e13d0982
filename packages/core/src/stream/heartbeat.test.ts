import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type HeartbeatTarget, heartbeatCount, scheduleHeartbeat } from './heartbeat.js';

describe('scheduleHeartbeat', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    expect(heartbeatCount()).toBe(0);
  });

  it('spreads beats over the interval: each 10 ms tick visits only its share of the connections', () => {
    const interval = 200; // 20 slots of 10 ms
    const beatsAt = new Map<number, number>();
    const leaves: (() => void)[] = [];
    for (let i = 0; i < 400; i++) {
      const target: HeartbeatTarget = {
        busy: false,
        beat() {
          beatsAt.set(Date.now(), (beatsAt.get(Date.now()) ?? 0) + 1);
        },
      };
      leaves.push(scheduleHeartbeat(interval, target));
    }
    vi.advanceTimersByTime(3 * interval);
    for (const leave of leaves) leave();
    // Every connection beat at least once, no tick beat more than its slot (400 / 20 = 20).
    expect([...beatsAt.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(400);
    expect(Math.max(...beatsAt.values())).toBe(20);
    expect(beatsAt.size).toBeGreaterThanOrEqual(20);
  });

  it('gives a long interval 1,000 slots at most: its ticks come every interval / 1,000', () => {
    const interval = 100_000; // 10,000 slots of 10 ms: capped to 1,000 of 100 ms
    const beatsAt: number[] = [];
    const start = Date.now();
    const leaves = Array.from({ length: 1000 }, () =>
      scheduleHeartbeat(interval, { busy: false, beat: () => beatsAt.push(Date.now() - start) }),
    );
    vi.advanceTimersByTime(2 * interval);
    for (const leave of leaves) leave();
    // One connection per slot: every tick beats one of them, 100 ms after the one before.
    expect(beatsAt).toHaveLength(1000);
    expect(new Set(beatsAt).size).toBe(1000);
    expect(beatsAt[1]! - beatsAt[0]!).toBe(100);
  });

  // 2000.5: a fractional interval (heartbeat takes any number of ms) must round up, not down.
  it.each([15, 1999, 2000.5, 10_001, 15_000, 86_400_000])(
    'ticks in whole milliseconds, a turn of the wheel never shorter than the interval (%s ms)',
    (interval) => {
      // Node truncates a fractional delay: a wheel of 200 ticks of 9.995 ms would turn in ~1,830 ms.
      const intervals = vi.spyOn(globalThis, 'setInterval');
      const beats: number[] = [];
      const start = Date.now();
      const leave = scheduleHeartbeat(interval, { busy: false, beat: () => beats.push(Date.now() - start) });
      const tick = intervals.mock.calls.at(-1)![1]!;
      intervals.mockRestore();
      vi.advanceTimersByTime(3 * interval + 3 * tick);
      leave();
      expect(Number.isInteger(tick)).toBe(true);
      expect(beats.length).toBeGreaterThanOrEqual(2);
      // One target, visited once a turn: its beats are a turn apart.
      for (let i = 1; i < beats.length; i++)
        expect(beats[i]! - beats[i - 1]!).toBeGreaterThanOrEqual(interval);
    },
  );

  it('keeps 1,000 slots at most for an interval that is no multiple of 1,000: a tick rounds up', () => {
    // 10,001 ms in 10 ms ticks would take 1,001 slots: ticks of 11 ms take 910.
    const intervals = vi.spyOn(globalThis, 'setInterval');
    const leave = scheduleHeartbeat(10_001, { busy: false, beat() {} });
    const tick = intervals.mock.calls.at(-1)![1]!;
    intervals.mockRestore();
    leave();
    expect(tick).toBe(11);
  });

  it('stops its timer once its last connection leaves', () => {
    const first = scheduleHeartbeat(200, { busy: false, beat() {} });
    const second = scheduleHeartbeat(200, { busy: false, beat() {} });
    expect(vi.getTimerCount()).toBe(1);
    first();
    expect(vi.getTimerCount()).toBe(1);
    second();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('beats first between one and two whole intervals after joining, never sooner', () => {
    const interval = 1000;
    const beats: number[] = [];
    const start = Date.now();
    const leave = scheduleHeartbeat(interval, { busy: false, beat: () => beats.push(Date.now() - start) });
    vi.advanceTimersByTime(interval);
    expect(beats).toEqual([]);
    vi.advanceTimersByTime(interval);
    leave();
    expect(beats).toHaveLength(1);
    expect(beats[0]).toBeGreaterThan(interval);
    expect(beats[0]).toBeLessThanOrEqual(2 * interval);
  });

  it('turns the wheel of an interval shorter than a tick in that interval: a 5 ms heartbeat beats every 5 ms', () => {
    const beats: number[] = [];
    const start = Date.now();
    const leave = scheduleHeartbeat(5, { busy: false, beat: () => beats.push(Date.now() - start) });
    vi.advanceTimersByTime(20);
    leave();
    // Its first visit clears it, then each visit beats: the first beat within two intervals of joining.
    expect(beats).toEqual([10, 15, 20]);
  });

  it('counts the connections of every interval, each wheel alike', () => {
    const leaves = [
      scheduleHeartbeat(200, { busy: false, beat() {} }),
      scheduleHeartbeat(300, { busy: false, beat() {} }),
      scheduleHeartbeat(300, { busy: false, beat() {} }),
    ];
    const counts = [heartbeatCount()];
    leaves[0]!();
    counts.push(heartbeatCount());
    leaves[1]!();
    leaves[2]!();
    counts.push(heartbeatCount());
    expect(counts).toEqual([3, 2, 0]);
  });

  it('skips connections that wrote during the interval, and beats once they go quiet', () => {
    let beats = 0;
    const target = { busy: true, beat: () => beats++ };
    const leave = scheduleHeartbeat(200, target);
    for (let t = 0; t < 1000; t += 20) {
      target.busy = true;
      vi.advanceTimersByTime(20);
    }
    expect(beats).toBe(0);
    vi.advanceTimersByTime(1000);
    leave();
    // Quiet for 1000 ms at a 200 ms interval: one beat per interval after the first is cleared.
    expect(beats).toBeGreaterThanOrEqual(4);
    expect(beats).toBeLessThanOrEqual(5);
  });

  it('takes a leave called twice as one: the wheel keeps beating the others', () => {
    let beats = 0;
    const leave = scheduleHeartbeat(200, { busy: false, beat() {} });
    const stay = scheduleHeartbeat(200, { busy: false, beat: () => beats++ });
    leave();
    leave();
    expect(heartbeatCount()).toBe(1);
    vi.advanceTimersByTime(400);
    stay();
    expect(beats).toBe(1);
  });

  it("runs on an unref'd timer: a wheel alone never keeps the process alive", () => {
    vi.useRealTimers();
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const before = timers();
    const leave = scheduleHeartbeat(54_321, { busy: false, beat() {} });
    const during = timers();
    leave();
    expect(during).toBe(before);
  });
});
