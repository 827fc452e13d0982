/**
 * How long one stream lives under `maxLifetime`: 80-100 % of it, so clients that connected together
 * do not all reconnect together, in steps of 1/1000 of it, because Node keeps one timer list per
 * distinct duration and an unref'd timer's list outlives `clearTimeout()` until the duration passed.
 * `random` is in [0, 1).
 */
export function streamLifetime(maxLifetime: number, random: number): number {
  const step = Math.max(1, Math.ceil(maxLifetime / 1000));
  const rounded = Math.round((maxLifetime * (0.8 + 0.2 * random)) / step) * step;
  // Rounding up to a step may pass maxLifetime, and past 2^31-1 ms Node fires a timer at once.
  return Math.max(1, Math.min(maxLifetime, rounded));
}
