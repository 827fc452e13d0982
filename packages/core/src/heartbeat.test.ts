import { describe, expect, it } from 'vitest';
import { type HeartbeatTarget, heartbeatCount, scheduleHeartbeat } from './heartbeat.js';

describe('scheduleHeartbeat', () => {
  it('spreads beats over the interval: no tick visits every connection', async () => {
    const interval = 400;
    const ticks: number[] = [];
    let current = -1;
    const targets: HeartbeatTarget[] = [];
    const leaves: (() => void)[] = [];
    // Connections arrive over time, as they do on a real server.
    for (let i = 0; i < 400; i++) {
      const target = {
        busy: false,
        beat() {
          const now = Math.floor(performance.now() / 50);
          if (now !== current) {
            current = now;
            ticks.push(0);
          }
          ticks[ticks.length - 1]!++;
        },
      };
      targets.push(target);
      leaves.push(scheduleHeartbeat(interval, target));
      if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 2 * interval));
    for (const leave of leaves) leave();
    expect(heartbeatCount()).toBe(0);
    expect(ticks.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(400);
    expect(Math.max(...ticks)).toBeLessThan(400);
  });

  it('skips connections that wrote during the interval', async () => {
    let beats = 0;
    const target = { busy: true, beat: () => beats++ };
    const busy = setInterval(() => {
      target.busy = true;
    }, 20);
    const leave = scheduleHeartbeat(200, target);
    await new Promise((resolve) => setTimeout(resolve, 700));
    clearInterval(busy);
    const whileBusy = beats;
    await new Promise((resolve) => setTimeout(resolve, 700));
    leave();
    expect(whileBusy).toBe(0);
    expect(beats).toBeGreaterThanOrEqual(2);
  });
});
