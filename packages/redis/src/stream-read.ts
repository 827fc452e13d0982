import { type HistoryPage, parseStreamId, type ReadLimit, type StoredMessage } from '@rxsse/core';
import type { RedisClient } from './client.js';
import { fromEntry } from './stream-fields.js';

const TRUNCATED: HistoryPage = Object.freeze({ events: [], bytes: 0, truncated: true, more: false });

/**
 * One page of `key` after `afterId`. `afterId` must still be in the stream: an id trimmed away
 * (older than the first entry), never written, or written to a stream Redis has since lost (a
 * restart without persistence) all fail this one check, so they all say `truncated`, and an id that
 * does not even parse as a stream id never reaches Redis. The check and the page run in one MULTI,
 * so no trim can slip between them.
 */
export async function readPage(
  client: RedisClient,
  key: string,
  afterId: string,
  limit: ReadLimit,
): Promise<HistoryPage> {
  if (!parseStreamId(afterId)) return TRUNCATED;
  const [known, entries] = (await client
    .multi()
    .xRange(key, afterId, afterId)
    // One more than asked for says whether the page is the end.
    .xRange(key, `(${afterId}`, '+', { COUNT: limit.count + 1 })
    .exec()) as unknown as [Entry[], Entry[]];
  if (known.length === 0) return TRUNCATED;

  const events: StoredMessage[] = [];
  let bytes = 0;
  let i = 0;
  for (; i < entries.length && events.length < limit.count; i++) {
    const entry = entries[i]!;
    const { message, size } = fromEntry(entry.id, entry.message);
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
