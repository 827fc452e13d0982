/**
 * The data an engine hands out for data other than a string that it stored as JSON `text`: what
 * that JSON reads back, except a string (a `Date`, any `toJSON()` that returns one), which stays the
 * JSON text itself, quotes and all. A stream sends string data as it is, and the same message
 * streamed without a channel goes out as its JSON: read back, it would lose its quotes, and a
 * client's `JSON.parse` would fail on it.
 */
export function dataFromJson(text: string): unknown {
  const data: unknown = JSON.parse(text);
  return typeof data === 'string' ? text : data;
}
