const is = (type: string) => (value: unknown) => typeof value === type;
export const isObject = (value: unknown): value is object => typeof value === 'object' && value !== null;
const isDelay = (value: unknown) => typeof value === 'number' && value >= 1;

function isBody(value: unknown): boolean {
  if (value === null || is('string')(value)) return true;
  const prototype = isObject(value) && Object.getPrototypeOf(value);
  return !!prototype && prototype !== Object.prototype && !Array.isArray(value) && !isStream(value);
}

const isStream = (value: unknown) => typeof ReadableStream === 'function' && value instanceof ReadableStream;

/**
 * Each option, what it must be, and the test of it; `undefined` is an option not given. The first
 * four are numbers, refused with a `RangeError` as core refuses its durations.
 */
const RULES: [name: string, expected: string, test: (value: unknown) => boolean][] = [
  // Infinity is fine: each timer is capped at the longest a timer holds.
  ['retryDelay', 'a number of ms from 1', isDelay],
  ['maxRetryDelay', 'a number of ms from 1', isDelay],
  ['stallTimeout', 'false or a number of ms from 1', (value) => value === false || isDelay(value)],
  ['maxEventLength', 'a number of characters from 1', isDelay],
  ['fetch', 'a function', is('function')],
  ['onReconnect', 'a function', is('function')],
  ['method', 'a string', is('string')],
  ['resumeWhenHidden', 'a boolean', is('boolean')],
  [
    'credentials',
    '"omit", "same-origin" or "include"',
    (value) => ['omit', 'same-origin', 'include'].includes(value as string),
  ],
  // `null` too: what `localStorage.getItem` returns for an id never stored.
  ['lastEventId', 'a string', (value) => value === null || is('string')(value)],
  [
    'events',
    'a contract made by defineEvents',
    (value) => is('function')((value as { decode?: unknown })?.decode),
  ],
  [
    'headers',
    'an object, an array of pairs or a function',
    (value) => isObject(value) || is('function')(value),
  ],
  // Sent again on every reconnect: a stream cannot be, and fetch sends a plain object as "[object Object]".
  ['body', 'a string, Blob, BufferSource, FormData or URLSearchParams', isBody],
];

/**
 * Checks `fromEventSource`'s options where they are given. A wrong one would fail every attempt, or
 * (a `retryDelay` of 0 or NaN) turn the backoff off and ask a failing server again and again; an
 * unknown one (a `signal`, a misspelt name) would be ignored unseen.
 * @throws {RangeError} naming a delay or length that is not a number from 1.
 * @throws {TypeError} naming any other option of the wrong type, and the options it does not know.
 */
export function checkOptions(options: unknown): void {
  if (!isObject(options)) throw new TypeError(`options must be an object, got ${show(options)}`);
  const given = options as Record<string, unknown>;
  RULES.forEach(([name, expected, test], index) => {
    const value = given[name];
    if (value !== undefined && !test(value))
      throw new (index < 4 ? RangeError : TypeError)(`${name} must be ${expected}, got ${show(value)}`);
  });
  const unknown = Object.keys(given).filter(
    (name) => given[name] !== undefined && !RULES.some(([known]) => known === name),
  );
  if (unknown.length) throw new TypeError(`unknown options: ${unknown.join(', ')}`);
}

/** A value as an error message shows it: a string quoted ("1000" is not 1000), an object by its kind. */
export function show(value: unknown): string {
  if (is('string')(value)) return JSON.stringify(value);
  if (isStream(value)) return 'a ReadableStream, which cannot be sent again';
  if (isObject(value)) return Array.isArray(value) ? 'an array' : 'an object';
  return is('function')(value) ? 'a function' : String(value);
}
