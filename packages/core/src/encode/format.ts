import { SseFormatError, SseRangeError } from './errors.js';
import type { FormatOptions, MessageEvent } from './types.js';
import { utf8Bytes } from './utf8.js';

/** undici fails a connection for good when one event has more data lines than this. */
export const DEFAULT_MAX_DATA_LINES = 131_072;
const MAX_RETRY = 2 ** 31 - 1;

// Only CR, LF and CRLF end lines in an event stream. Never use `^`/`$` with `m`, or `\s`:
// JS treats U+2028/U+2029 as line terminators there, SSE does not.
const LINE_SPLIT = /\r\n|\r|\n/;
const FORBIDDEN_IN_TYPE = /[\r\n\0]/;
// Printable ASCII, inner spaces allowed: ids every Node and browser client round-trips unchanged.
const PORTABLE_ID = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;

// Shared default, so a call without options allocates nothing. Never mutated.
const NO_OPTIONS: FormatOptions = Object.freeze({});
// JSON.stringify as it was when this module loaded: formatData trusts its output (see there),
// and only while the global is still this function, so a later monkeypatch cannot break a stream.
const nativeStringify = JSON.stringify;

/**
 * The exact wire text of one event block, ending with a blank line.
 *
 * @throws {SseFormatError} for CR, LF or NUL in `id` or `type`, a reserved or malformed `type`,
 *   a non-portable `id` (unless `ids: 'spec'`), `data` the serializer cannot turn into a string
 *   (`undefined`, unless a `serialize` of its own takes it), or a message that is not an object
 *   like `{ data }` (`null`, a bare value a source emitted without `{ data }`, a Promise, an array).
 * @throws {SseRangeError} for a `retry` outside 0..2^31-1 or too many data lines.
 * @example
 * ```ts
 * formatEvent({ data: 'a\nb', id: '1', type: 'tick' }); // 'event: tick\nid: 1\ndata: a\ndata: b\n\n'
 * ```
 */
export function formatEvent(message: MessageEvent<unknown>, options: FormatOptions = NO_OPTIONS): string {
  if (typeof message !== 'object' || message === null) {
    throw new SseFormatError('data', `a message must be an object like { data }, got ${kindOf(message)}`);
  }
  let head = '';
  const { type, id, retry, data } = message;
  if (data === undefined) checkUndefinedData(message, options);
  if (type !== undefined && type !== '') head += `event: ${checkType(type, options)}\n`;
  if (id !== undefined) head += id === '' ? 'id:\n' : `id: ${checkId(id, options)}\n`;
  if (retry !== undefined) head += `retry: ${checkRetry(retry)}\n`;
  return head + formatData(data, options);
}

/**
 * A message without data: a Promise, an array or an Observable in its place (`map(async ...)`,
 * `toArray()`, `map(() => of(...))`), or data JSON cannot send.
 */
function checkUndefinedData(message: object, options: FormatOptions): void {
  const inner = message as Partial<PromiseLike<unknown> & { subscribe: unknown }>;
  if (typeof inner.then === 'function') {
    throw new SseFormatError(
      'data',
      'a message must be an object like { data }, got a Promise: emit what it resolves to (mergeMap or concatMap), not the Promise',
    );
  }
  if (Array.isArray(message)) {
    throw new SseFormatError(
      'data',
      `a message must be an object like { data }, got an array of ${message.length}: emit its messages one by one (mergeMap(from) or concatAll()), not the array`,
    );
  }
  if (typeof inner.subscribe === 'function') {
    throw new SseFormatError(
      'data',
      'a message must be an object like { data }, got an Observable: emit its messages (mergeMap, concatMap or switchMap), not the Observable',
    );
  }
  if (options.serialize === undefined) {
    throw new SseFormatError(
      'data',
      'data is undefined: give it a value, or an empty string for an event without data',
    );
  }
}

// Native JSON alone: a route's `serialize`, or a later patch of the global, never reaches it.
const OWN_FORMAT: FormatOptions = Object.freeze({ serialize: nativeStringify });

/**
 * The wire text of an event rxsse makes itself (a channel's truncation event): its data as JSON,
 * whatever the route's encoder options. Clients read it as JSON (`@rxsse/client` checks its shape),
 * and a `serialize` or `strict` made for the route's own data must not keep it from them: the
 * client would miss, unaware, the events it tells of.
 * @throws {SseFormatError} as {@link formatEvent}, for a message JSON cannot send.
 */
export function formatOwnEvent(message: MessageEvent<unknown>): string {
  return formatEvent(message, OWN_FORMAT);
}

/** {@link formatEvent} as UTF-8 bytes: the form a stream writes. */
export function encodeEvent(message: MessageEvent<unknown>, options?: FormatOptions): Uint8Array {
  return utf8Bytes(formatEvent(message, options));
}

/**
 * A comment: `:` before every line, and no blank line after it, so it never dispatches an event
 * (nor resets a reconnected client's last event id). Clients ignore comments; proxies see traffic.
 * @example
 * ```ts
 * formatComment('keep-alive'); // ': keep-alive\n'
 * ```
 */
export function formatComment(text: string): string {
  if (typeof text !== 'string') throw new SseFormatError('comment', 'must be a string');
  let out = '';
  for (const line of text.toWellFormed().split(LINE_SPLIT)) out += line === '' ? ':\n' : `: ${line}\n`;
  return out;
}

/**
 * A standalone reconnection-time block (`retry: N` and a blank line, which undici needs to apply it).
 * @throws {SseRangeError} unless `ms` is an integer in 0..2^31-1.
 */
export function formatRetry(ms: number): string {
  return `retry: ${checkRetry(ms)}\n\n`;
}

/** Every name of {@link FormatOptions}, for the check of names no reader knows. */
export const FORMAT_OPTION_NAMES = Object.keys({
  serialize: true,
  strict: true,
  ids: true,
  allowReservedTypes: true,
  maxDataLines: true,
} satisfies Record<keyof FormatOptions, true>);

/**
 * Checks encoder options where they are given (a route, a channel), so a typo fails there rather
 * than refusing messages one by one.
 * @throws {RangeError} for a `maxDataLines` that is not a positive integer.
 * @throws {TypeError} for an `ids` other than `'portable'` or `'spec'`, a `serialize` that is not a
 *   function, or a `strict` or `allowReservedTypes` that is not a boolean.
 */
export function checkFormatOptions(options: FormatOptions): void {
  const { maxDataLines, ids, serialize } = options;
  if (maxDataLines !== undefined && !(Number.isInteger(maxDataLines) && maxDataLines >= 1)) {
    throw new RangeError(`maxDataLines must be a positive integer, got ${String(maxDataLines)}`);
  }
  if (ids !== undefined && ids !== 'portable' && ids !== 'spec') {
    throw new TypeError(`ids must be 'portable' or 'spec', got ${String(ids)}`);
  }
  if (serialize !== undefined && typeof serialize !== 'function') {
    throw new TypeError(`serialize must be a function, got ${typeof serialize}`);
  }
  for (const name of ['strict', 'allowReservedTypes'] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== 'boolean') {
      throw new TypeError(`${name} must be a boolean, got ${kindOf(value)}`);
    }
  }
}

/**
 * The data lines and the blank line that ends the event, built in one go: the commonest event (an
 * object sent as JSON) costs one string concatenation fewer per event.
 */
function formatData(data: unknown, options: FormatOptions): string {
  let text: string;
  if (typeof data === 'string') {
    text = data;
  } else {
    text = serialize(data, options);
    // Fast path for the commonest data, objects sent as JSON (~25% more events/s, see bench/):
    // JSON.stringify without `space` writes one non-empty line (it escapes CR and LF inside
    // strings and puts no whitespace between tokens) and, since ES2019, no lone surrogate (it
    // escapes them as \udXXX). Its output needs none of the checks below.
    if (options.serialize === undefined && JSON.stringify === nativeStringify) {
      return `data: ${text}\n\n`;
    }
  }
  if (!text.isWellFormed()) {
    if (options.strict) throw new SseFormatError('data', 'contains a lone surrogate (strict mode)');
    text = text.toWellFormed();
  }
  // Two memchr-style scans beat one regex test by ~10% on short single-line data.
  if (!text.includes('\n') && !text.includes('\r')) return text === '' ? 'data:\n\n' : `data: ${text}\n\n`;
  if (options.strict && text.includes('\r')) {
    throw new SseFormatError('data', 'contains CR, which clients receive as LF (strict mode)');
  }
  const lines = text.split(LINE_SPLIT);
  const max = options.maxDataLines ?? DEFAULT_MAX_DATA_LINES;
  // Options no route checked (a direct call) throw here, naming the option.
  if (!Number.isInteger(max) || max < 1) checkFormatOptions(options);
  if (lines.length > max) {
    throw new SseRangeError('data', `has ${lines.length} lines, more than maxDataLines (${max})`);
  }
  let out = '';
  for (const line of lines) out += line === '' ? 'data:\n' : `data: ${line}\n`;
  return `${out}\n`;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as Partial<PromiseLike<unknown>> | null)?.then === 'function';
}

/**
 * @internal Hears the rejection of each Promise a message the encoder refused with `error` carries:
 * the message itself (`map(async ...)`), its data (`{ data: fetch() }`), or what an async `serialize`
 * returned (the error's `cause`). Unheard, a rejection ends a Node process; `reporter()` is asked
 * for where it goes only when there is one.
 */
export function hearRefusedPromises(
  message: unknown,
  error: unknown,
  reporter: () => (error: unknown) => void,
): void {
  const hear = (value: unknown) => {
    if (isPromiseLike(value)) value.then(undefined, reporter());
  };
  if (error instanceof SseFormatError) hear(error.cause);
  hear(message);
  try {
    hear((message as { data?: unknown } | null)?.data);
  } catch {
    // A getter that throws: the message was refused for that already.
  }
}

function serialize(data: unknown, options: FormatOptions): string {
  let text: unknown;
  try {
    text = (options.serialize ?? JSON.stringify)(data);
  } catch (cause) {
    throw new SseFormatError('data', `the serializer threw: ${describe(cause)}`, { cause });
  }
  if (typeof text !== 'string') {
    // Its rejection goes with the error (`cause`), for the stream to hear: unheard, it ends the process.
    if (isPromiseLike(text)) {
      throw new SseFormatError(
        'data',
        'the serializer returned a Promise: it must return the text itself (an async serialize cannot be awaited)',
        { cause: text },
      );
    }
    throw new SseFormatError('data', `the serializer returned ${kindOf(text)}, not a string`);
  }
  // JSON sends a Promise as `{}`: looked at only then, so other data costs one string comparison.
  if (text === '{}' && isPromiseLike(data)) {
    throw new SseFormatError(
      'data',
      'is a Promise: send what it resolves to (await it, or mergeMap), not the Promise',
    );
  }
  return text;
}

function checkType(type: unknown, options: FormatOptions): string {
  if (typeof type !== 'string') throw new SseFormatError('type', `must be a string, got ${kindOf(type)}`);
  if (FORBIDDEN_IN_TYPE.test(type)) throw new SseFormatError('type', 'must not contain CR, LF or NUL');
  if (!type.isWellFormed()) throw new SseFormatError('type', 'must not contain a lone surrogate');
  if ((type === 'error' || type === 'open') && !options.allowReservedTypes) {
    throw new SseFormatError(
      'type',
      `"${type}" is delivered to the client's on${type} handler; set allowReservedTypes to send it`,
    );
  }
  return type;
}

function checkId(id: unknown, options: FormatOptions): string {
  if (typeof id !== 'string') throw new SseFormatError('id', `must be a string, got ${kindOf(id)}`);
  if (options.ids === 'spec') {
    if (FORBIDDEN_IN_TYPE.test(id)) throw new SseFormatError('id', 'must not contain CR, LF or NUL');
    if (!id.isWellFormed()) throw new SseFormatError('id', 'must not contain a lone surrogate');
  } else if (!PORTABLE_ID.test(id)) {
    // A portable id has no CR, LF or NUL, so the common case needs one regex test, not two;
    // the more specific error still wins for ids that are not portable.
    if (FORBIDDEN_IN_TYPE.test(id)) throw new SseFormatError('id', 'must not contain CR, LF or NUL');
    throw new SseFormatError(
      'id',
      'must be printable ASCII without leading or trailing spaces (set ids: "spec" to allow any spec-legal id)',
    );
  }
  return id;
}

function checkRetry(retry: unknown): number {
  if (typeof retry !== 'number' || !Number.isInteger(retry) || retry < 0 || retry > MAX_RETRY) {
    // A string is quoted: "got 3000" for '3000' would name a value in range.
    const got = typeof retry === 'string' ? JSON.stringify(retry) : String(retry);
    throw new SseRangeError('retry', `must be an integer from 0 to ${MAX_RETRY}, got ${got}`);
  }
  return retry;
}

/** `typeof`, but `null` for null, which `typeof` calls an object. */
export function kindOf(value: unknown): string {
  return value === null ? 'null' : typeof value;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
