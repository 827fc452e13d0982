import { formatEvent } from './format.js';
import type { FormatOptions, MessageEvent } from './types.js';
import { utf8Bytes } from './utf8.js';

/** A connection that formats through {@link cachedFormatter}: the cache notes which entry it took last. */
export interface FormatReader {
  formatted: number;
}

type Formatter = (message: MessageEvent<unknown>, reader: FormatReader) => string;

const formatters = new WeakMap<FormatOptions, Formatter>();

/**
 * `formatEvent` that remembers the last message it formatted for these options: a `Subject` (or a
 * channel) hands one message object to every subscriber in a row, so a message that reaches many
 * connections of a route is formatted once. One entry, not a map: most messages reach one
 * connection only, and a map entry per event costs more than it saves (see the burst profile in
 * bench/).
 *
 * The entry is trusted only within one dispatch. It is forgotten at the next microtask, and a
 * connection that took it already and meets the same message again meets a new emission (an
 * accumulator, or a pooled object re-emitted with new contents in the same tick): that is
 * formatted anew. Across connections it is trusted while the message's fields are the same
 * values; `data` is compared by reference, not by contents.
 */
export function cachedFormatter(options: FormatOptions): Formatter {
  let formatter = formatters.get(options);
  if (!formatter) {
    let last: MessageEvent<unknown> | undefined;
    let lastData: unknown;
    let lastId: string | undefined;
    let lastType: string | undefined;
    let lastRetry: number | undefined;
    let lastText = '';
    let entry = 0;
    const forget = () => {
      last = lastData = undefined;
      lastText = '';
    };
    formatter = (message, reader) => {
      if (
        message === last &&
        // A source that emits `undefined` (no message at all) meets the encoder's own refusal.
        last !== undefined &&
        reader.formatted !== entry &&
        message.data === lastData &&
        message.id === lastId &&
        message.type === lastType &&
        message.retry === lastRetry
      ) {
        reader.formatted = entry;
        return lastText;
      }
      lastText = formatEvent(message, options);
      if (last === undefined) queueMicrotask(forget);
      last = message;
      lastData = message.data;
      lastId = message.id;
      lastType = message.type;
      lastRetry = message.retry;
      reader.formatted = ++entry;
      return lastText;
    };
    formatters.set(options, formatter);
  }
  return formatter;
}

let lastText: string | undefined;
let lastBytes = new Uint8Array(0);

/**
 * UTF-8 bytes of `text`, remembering the last one: the chunk a fan-out writes to each of its
 * connections is encoded once. Streams queue text and encode once per write, so a burst costs one
 * buffer per tick rather than one per event.
 */
export function encodeText(text: string): Uint8Array {
  if (text !== lastText) {
    lastBytes = utf8Bytes(text);
    lastText = text;
  }
  return lastBytes;
}

let seenText: string | undefined;

/**
 * The bytes of `text` when it is handed out again (a fan-out's chunk, from its second connection
 * on: encoded once and shared by all of them, where each would encode text of its own), else
 * `undefined`: a transport that encodes text itself takes the text (a burst's chunks, each written
 * once, then allocate no buffer of rxsse's).
 */
export function sharedBytes(text: string): Uint8Array | undefined {
  if (text === seenText) return encodeText(text);
  seenText = text;
  return undefined;
}

let lastTexts: readonly string[] = [];
let lastJoined = '';

/**
 * `texts[from .. to)` joined, remembering the last list: the connections of a fan-out queue the
 * same texts in the same tick, so the tick's chunk is joined once for all of them (and, where a
 * transport takes bytes, encoded once by {@link encodeText}), and each other connection compares
 * references instead. Strings are immutable: the same strings in the same order are the same text.
 */
export function joinTexts(texts: readonly string[], from: number, to: number): string {
  const count = to - from;
  if (count === 1) return texts[from]!;
  if (count === lastTexts.length) {
    let i = 0;
    while (i < count && texts[from + i] === lastTexts[i]) i++;
    if (i === count) return lastJoined;
  }
  lastTexts = texts.slice(from, to);
  lastJoined = lastTexts.join('');
  return lastJoined;
}
