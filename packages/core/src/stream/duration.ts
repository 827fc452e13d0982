/** The longest delay a JavaScript timer honours: a longer one fires at once. */
export const MAX_DURATION = 2 ** 31 - 1;

/**
 * Checks a duration option (ms) at route creation, so a typo fails loudly there instead of a
 * 30-day `maxLifetime` firing after ~3 ms (timers overflow past 2^31-1).
 * @throws {RangeError} naming the option, unless `value` is a number in `min`..2^31-1.
 */
export function checkDuration(name: string, value: unknown, min = 1): void {
  if (typeof value !== 'number' || !(value >= min && value <= MAX_DURATION)) {
    // A string is quoted: "got 3000" for '3000' would name a value in range.
    const got = typeof value === 'string' ? JSON.stringify(value) : String(value);
    throw new RangeError(`${name} must be a number of ms from ${min} to ${MAX_DURATION}, got ${got}`);
  }
}

/** {@link checkDuration} for a value that is also written to the wire, where only integers are legal. */
export function checkIntegerDuration(name: string, value: unknown, min = 1): void {
  checkDuration(name, value, min);
  if (!Number.isInteger(value)) throw new RangeError(`${name} must be an integer, got ${String(value)}`);
}
