/**
 * The data an engine hands out for data other than a string that it stored as JSON `text`: what
 * that JSON reads back, except a string (a `Date`, any `toJSON()` that returns one), which comes
 * back as a `String` object holding it. A stream sends string data as it is, and the same message
 * streamed without a channel goes out as its JSON: a string read back would lose its quotes, and a
 * client's `JSON.parse` would fail on it. A `String` object goes out as its JSON, as the `Date` did,
 * on its own, through a route's `serialize`, and within data an operator wraps it in; a filter reads
 * it with `String(data)`.
 */
export function dataFromJson(text: string): unknown {
  const data: unknown = JSON.parse(text);
  return typeof data === 'string' ? Object(data) : data;
}
