import {
  formatStreamId,
  type HistoryPage,
  parseStreamId,
  type ReadLimit,
  type StoredMessage,
} from '@rxsse/core/channel';
import { ErrorReply } from 'redis';
import type { RedisClient } from './client.js';
import { isNoPermission } from './errors.js';
import type { PageEntries } from './large-entries.js';
import { evalReadOnly } from './read-script.js';
import type { Refusals } from './refusals.js';
import { fromEntry } from './stream-fields.js';

const TRUNCATED: HistoryPage = Object.freeze({ events: [], bytes: 0, truncated: true, more: false });

/**
 * Entries a page's first `XRANGE` asks for after the id: later ones are sized by what these weighed,
 * so a page of large events does not fetch every entry its count allows.
 */
const PROBE = 4;

/**
 * Size from which an entry that is known already is checked to be still in its stream by a script
 * that sends its id alone: below it, the entry costs less than the script's own text.
 */
const LARGE_ENTRY = 16_384;

/** Whether `entry` is large enough to check for by a script: see {@link LARGE_ENTRY}. */
export function isLargeEntry(entry: Entry | undefined): boolean {
  if (entry === undefined) return false;
  let size = entry.id.length;
  for (const field in entry.message) size += field.length + entry.message[field]!.length;
  return size >= LARGE_ENTRY;
}

/**
 * One page of `key` after `afterId`. `afterId` must still be in the stream: an id trimmed away
 * (older than the first entry), never written, or written to a stream Redis has since lost (a
 * restart without persistence) all fail this one check, so they all say `truncated`, and an id that
 * does not even parse as a stream id never reaches Redis. Each `XRANGE` starts at an id itself (the
 * page's, then its last entry so far), so no trim can slip between the check and what follows, and
 * no id makes Redis refuse the range (it does refuse an exclusive `(<id>` after the largest id).
 * An entry this engine did not write is told to `onError` and makes the page `truncated` too:
 * skipped, it would be a hole. Once `expired` says the caller gave up, no further `XRANGE` is sent.
 * An entry `large` names (one that timed a read out) ends a page before it: the next page fetches it
 * alone with the entry before it, or, proven too large to arrive in time, says `truncated` there. An
 * `XRANGE` from such an entry, or from a large one the page has already, checks it without fetching
 * it, so a client that has it can still resume. A refused script is told to `refusals`.
 */
export async function readPage(...args: Parameters<typeof readEntries>): Promise<HistoryPage> {
  try {
    return await readEntries(...args);
  } catch (error) {
    // A key overwritten with another type (a `SET` by hand): its history is gone, as a trimmed
    // one's, and failing would fail every resume for good. Told, as the live reads tell it.
    if (!isWrongType(error)) throw error;
    const onError = args[4];
    onError(error);
    return TRUNCATED;
  }
}

/** {@link readPage}, but for a key that is no stream. */
async function readEntries(
  client: RedisClient,
  key: string,
  afterId: string,
  limit: ReadLimit,
  onError: (error: unknown) => void,
  refusals: Refusals,
  expired: () => boolean = () => false,
  large?: PageEntries,
): Promise<HistoryPage> {
  const parsed = parseStreamId(afterId);
  if (!parsed) return TRUNCATED;
  // Redis reads any id that parses, leading zeros too; replies name it in this form.
  let from = formatStreamId(parsed);
  const events: StoredMessage[] = [];
  let bytes = 0;
  // Entries to fetch after `from`: those the page may still take, and one more that says whether
  // the page is the end.
  let wanted = Math.min(limit.count, PROBE) + 1;
  // The suspected entry the next XRANGE is to fetch alone, with `from`: this one, if it is still
  // the next suspect then (another read may have fetched it in time meanwhile).
  let atSuspect: string | undefined;
  // The size of the entry at `from`, once this page fetched it.
  let fromSize = 0;
  // Until an XRANGE of this page has brought entries, their sizes are not known.
  let sized = false;
  for (;;) {
    const suspect = large?.after(from);
    const alone = suspect !== undefined && suspect.id === atSuspect;
    atSuspect = undefined;
    const count = alone ? 2 : wanted + 1;
    const end = suspect === undefined ? '+' : alone ? suspect.id : `(${suspect.id}`;
    // The page's first XRANGE, sized by no entry yet, goes through the script too: it sends the
    // client's own entry as its id alone, and no more entries than the page's bytes hold.
    const checkFrom = !sized || fromSize >= LARGE_ENTRY || large?.has(from) === true;
    large?.reading(from, end, count, !checkFrom);
    const { entries, cut } = checkFrom
      ? await rangeAfterKnown(client, key, from, end, count, limit.bytes - bytes, refusals)
      : { entries: (await client.xRange(key, from, end, { COUNT: count })) ?? [], cut: false };
    // It arrived in time: it is not too large.
    if (alone) large!.arrived(suspect.id);
    if (entries[0]?.id !== from) {
      if (events.length === 0) return TRUNCATED;
      // Trimmed past what this page read: the next page, from its last event, says so.
      return { events, bytes, truncated: false, more: true };
    }
    for (let i = 1; i < entries.length; i++) {
      if (events.length >= limit.count) return { events, bytes, truncated: false, more: true };
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
      if (bytes + size > limit.bytes) return { events, bytes, truncated: false, more: true };
      events.push(message);
      bytes += size;
      fromSize = size;
    }
    if (entries.length > 1) sized = true;
    if (!alone && !cut && entries.length <= wanted) {
      if (suspect === undefined) return { events, bytes, truncated: false, more: false };
      // Up to an entry a read timed out on: the page ends before it, so that the next one, with its
      // own deadline, fetches it alone. One too large even then is a gap: truncated.
      if (events.length > 0) return { events, bytes, truncated: false, more: true };
      if (suspect.proven) return TRUNCATED;
      atSuspect = suspect.id;
    }
    // Every entry fetched fit, and more follow: as many again as the bytes left hold at the size
    // seen so far.
    // Nobody waits for the page any more: more XRANGEs would only load Redis, a slow one above all.
    if (expired()) throw new Error('Not read on: the page timed out');
    if (entries.length < 2) continue;
    from = entries[entries.length - 1]!.id;
    const fit = Math.floor((limit.bytes - bytes) / (bytes / events.length));
    wanted = Math.min(limit.count - events.length, fit) + 1;
  }
}

/**
 * `XRANGE key from end COUNT count`, with the entry at `from` (which the client, or the page, has
 * already) sent as its id alone: its check, that it is still there, need not fetch it. The entries
 * after it stop at the first that passes `bytes` (`cut` says some were left out), so a range sized
 * by no entry yet fetches about what the page holds. Through `EVAL`: refused (an ACL), it is the
 * plain `XRANGE`, and `refusals` told.
 */
async function rangeAfterKnown(
  client: RedisClient,
  key: string,
  from: string,
  end: string,
  count: number,
  bytes: number,
  refusals: Refusals,
): Promise<{ entries: Entry[]; cut: boolean }> {
  let reply: unknown;
  try {
    reply = await evalReadOnly(
      client,
      RANGE_AFTER_KNOWN,
      { keys: [key], arguments: [from, end, String(count), String(bytes)] },
      refusals,
    );
  } catch (error) {
    if (!(error instanceof ErrorReply)) throw error;
    return { entries: (await client.xRange(key, from, end, { COUNT: count })) ?? [], cut: false };
  }
  const [kept, cut] = reply as [[string, string[]][], number];
  const entries = kept.map(([id, pairs]) => {
    const message: Record<string, string> = {};
    for (let i = 0; i + 1 < pairs.length; i += 2) message[pairs[i]!] = pairs[i + 1]!;
    return { id, message };
  });
  return { entries, cut: cut === 1 };
}

/**
 * The id of the last entry of `key`, and whether it is large (see {@link isLargeEntry}): where a
 * live reader starts. Through a script that sends the size, not the entry, which could be too large
 * to arrive in time and fail every start of the topic until another event follows it; refused (an
 * ACL without `EVAL`), `XREVRANGE`, which fetches it, and `refusals` told.
 */
export async function lastEntryOf(
  client: RedisClient,
  key: string,
  refusals: Refusals,
): Promise<{ id: string; large: boolean } | undefined> {
  let reply: unknown;
  try {
    reply = await evalReadOnly(client, LAST_ENTRY, { keys: [key] }, refusals);
  } catch (error) {
    if (!isNoPermission(error)) throw error;
    const last = (await client.xRevRange(key, '+', '-', { COUNT: 1 }))?.[0];
    return last === undefined ? undefined : { id: last.id, large: isLargeEntry(last) };
  }
  if (!Array.isArray(reply)) return undefined;
  const [id, size] = reply as [string, number];
  return { id, large: size >= LARGE_ENTRY };
}

/** What {@link startPointOf} answers for a key that holds another type than a stream. */
export const NOT_A_STREAM = Symbol('not a stream');

/**
 * {@link lastEntryOf}, where a topic starts: a key overwritten with another type (a `SET` by hand)
 * is told to `onError` and answered {@link NOT_A_STREAM}, since failing would fail every
 * subscription to the topic, each client coming back for the same failure.
 */
export async function startPointOf(
  client: RedisClient,
  key: string,
  refusals: Refusals,
  onError: (error: unknown) => void,
): Promise<{ id: string; large: boolean } | undefined | typeof NOT_A_STREAM> {
  try {
    return await lastEntryOf(client, key, refusals);
  } catch (error) {
    if (!isWrongType(error)) throw error;
    onError(error);
    return NOT_A_STREAM;
  }
}

/** Whether Redis refused a command for a key of another type. */
export function isWrongType(error: unknown): boolean {
  return error instanceof ErrorReply && error.message.startsWith('WRONGTYPE');
}

/** The id and size (with its fields and values) of the last entry of `KEYS[1]`, or nil. */
const LAST_ENTRY = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if not last then return nil end
local size = #last[1]
for _, part in ipairs(last[2]) do size = size + #part end
return { last[1], size }
`;

/**
 * `XRANGE KEYS[1] ARGV[1] ARGV[2] COUNT ARGV[3]`, the entry at `ARGV[1]` without its fields, and
 * the others up to the first whose fields and values pass `ARGV[4]` bytes in all; then 1 if some
 * were left out, else 0.
 */
const RANGE_AFTER_KNOWN = `
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
local budget = tonumber(ARGV[4])
local kept = {}
for i, entry in ipairs(entries) do
  if budget < 0 then return { kept, 1 } end
  if i == 1 and entry[1] == ARGV[1] then
    entry[2] = {}
  else
    for _, part in ipairs(entry[2]) do budget = budget - #part end
  end
  kept[i] = entry
end
return { kept, 0 }
`;

/** A stream entry as node-redis returns it. */
export interface Entry {
  id: string;
  message: Record<string, string>;
}
