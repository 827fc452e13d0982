import {
  formatStreamId,
  type HistoryPage,
  parseStreamId,
  type ReadLimit,
  type StoredMessage,
} from '@rxsse/core/channel';
import type { RedisClient } from './client.js';
import { fromEntry } from './stream-fields.js';

const TRUNCATED: HistoryPage = Object.freeze({ events: [], bytes: 0, truncated: true, more: false });

/**
 * One page of `key` after `afterId`. `afterId` must still be in the stream: an id trimmed away
 * (older than the first entry), never written, or written to a stream Redis has since lost (a
 * restart without persistence) all fail this one check, so they all say `truncated`, and an id that
 * does not even parse as a stream id never reaches Redis. One `XRANGE` from the id itself, so no
 * trim can slip between the check and the page, and no id makes Redis refuse the range (it does
 * refuse an exclusive `(<id>` after the largest id). An entry this engine did not write is told to
 * `onError` and makes the page `truncated` too: skipped, it would be a hole.
 */
export async function readPage(
  client: RedisClient,
  key: string,
  afterId: string,
  limit: ReadLimit,
  onError: (error: unknown) => void,
): Promise<HistoryPage> {
  const parsed = parseStreamId(afterId);
  if (!parsed) return TRUNCATED;
  // Redis reads any id that parses, leading zeros too; replies name it in this form.
  const start = formatStreamId(parsed);
  // The id itself, the page, and one more that says whether the page is the end.
  const entries = (await client.xRange(key, start, '+', { COUNT: limit.count + 2 })) ?? [];
  if (entries[0]?.id !== start) return TRUNCATED;

  const events: StoredMessage[] = [];
  let bytes = 0;
  let i = 1;
  for (; i < entries.length && events.length < limit.count; i++) {
    const entry = entries[i]!;
    let decoded: ReturnType<typeof fromEntry>;
    try {
      decoded = fromEntry(entry.id, entry.message);
    } catch (error) {
      // Failing the read instead would fail every reconnect with this id, for good.
      onError(error);
      return TRUNCATED;
    }
    const { message, size } = decoded;
    if (bytes + size > limit.bytes) break;
    events.push(message);
    bytes += size;
  }
  return { events, bytes, truncated: false, more: i < entries.length };
}

/** A stream entry as node-redis returns it. */
export interface Entry {
  id: string;
  message: Record<string, string>;
}
