/** Test helpers: eventsource-parser 4 as a client, and byte chunking. */
import { createParser } from 'eventsource-parser';
import type { Interpretation } from './oracle.js';

/**
 * Feeds text chunks to eventsource-parser 4. It reports an event's own id only, and every block's id
 * to `onId` (id-only blocks too), so the last event ID is persisted here, as browsers do.
 */
export function parseWithLibrary(chunks: Iterable<string>, lastEventId = ''): Interpretation {
  const result: Interpretation = { events: [], retry: undefined, lastEventId };
  const parser = createParser({
    onId(id) {
      result.lastEventId = id;
    },
    onEvent(event) {
      result.events.push({
        type: event.event || 'message',
        data: event.data,
        lastEventId: result.lastEventId,
      });
    },
    onRetry(ms) {
      result.retry = ms;
    },
  });
  for (const chunk of chunks) if (chunk !== '') parser.feed(chunk);
  return result;
}

/** Decodes byte chunks with one streaming UTF-8 `TextDecoder`, as a client reading a body does. */
export function* decodeChunks(chunks: Iterable<Uint8Array>): Generator<string> {
  const decoder = new TextDecoder('utf-8');
  for (const chunk of chunks) yield decoder.decode(chunk, { stream: true });
  yield decoder.decode();
}

/** Splits bytes at the given offsets (taken modulo the length, deduplicated, sorted). */
export function splitBytes(bytes: Uint8Array, offsets: Iterable<number>): Uint8Array[] {
  const cuts = [...new Set([...offsets].map((offset) => offset % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.subarray(start, cut));
    start = cut;
  }
  return chunks;
}

/** One chunk per byte. */
export function byteByByte(bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (_, index) => bytes.subarray(index, index + 1));
}
