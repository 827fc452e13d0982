import type { RedisClient } from './client.js';
import { isNoPermission } from './errors.js';
import { evalReadOnly } from './read-script.js';
import type { Refusals } from './refusals.js';

/** What the live reader reads of a stream's `XINFO STREAM`: its counts and last ids. */
export interface StreamInfo {
  length: number;
  /** Every entry ever added to it: Redis >= 7 only. */
  entriesAdded: number | undefined;
  lastGeneratedId: string;
  /** The id of its last entry, if it has one. */
  lastEntryId: string | undefined;
  /** The greatest id ever deleted or trimmed from it (`0-0`: none): Redis >= 7 only. */
  maxDeletedId: string | undefined;
}

/**
 * The fields of `XINFO STREAM KEYS[1]` that the live reader reads, without the first and last
 * entries `XINFO STREAM` sends whole: one too large to arrive in time would time out the read that
 * asks, every time.
 */
export const STREAM_INFO = `
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local fields = {}
for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
local last = fields['last-entry']
return { fields['length'], fields['last-generated-id'], last and last[1] or false, fields['entries-added'] or false, fields['max-deleted-entry-id'] or false }
`;

/**
 * The {@link StreamInfo} of `key`, by the script; refused (an ACL without `EVAL`), by `XINFO STREAM`,
 * which fetches its first and last entries (`refusals` told).
 */
export async function streamInfo(
  client: RedisClient,
  key: string,
  refusals: Refusals,
): Promise<StreamInfo | undefined> {
  try {
    return toStreamInfo(await evalReadOnly(client, STREAM_INFO, { keys: [key] }, refusals));
  } catch (error) {
    if (!isNoPermission(error)) throw error;
    return toStreamInfo(await client.xInfoStream(key));
  }
}

/** The {@link StreamInfo} in a reply of {@link STREAM_INFO} or of `XINFO STREAM`, if it is one. */
export function toStreamInfo(reply: unknown): StreamInfo | undefined {
  if (Array.isArray(reply)) {
    const [length, lastGeneratedId, lastEntryId, entriesAdded, maxDeletedId] = reply as unknown[];
    if (typeof length !== 'number') return undefined;
    return {
      length,
      entriesAdded: typeof entriesAdded === 'number' ? entriesAdded : undefined,
      lastGeneratedId: String(lastGeneratedId),
      lastEntryId: typeof lastEntryId === 'string' ? lastEntryId : undefined,
      maxDeletedId: typeof maxDeletedId === 'string' ? maxDeletedId : undefined,
    };
  }
  const fields = reply as {
    length?: unknown;
    'entries-added'?: unknown;
    'last-generated-id'?: unknown;
    'last-entry'?: { id: string } | null;
    'max-deleted-entry-id'?: unknown;
  } | null;
  if (typeof fields?.length !== 'number') return undefined;
  const added = fields['entries-added'];
  return {
    length: fields.length,
    entriesAdded: typeof added === 'number' ? added : undefined,
    lastGeneratedId: String(fields['last-generated-id']),
    lastEntryId: fields['last-entry']?.id,
    maxDeletedId:
      typeof fields['max-deleted-entry-id'] === 'string' ? fields['max-deleted-entry-id'] : undefined,
  };
}
