/**
 * Stream ids, `<ms>-<seq>` as Redis Streams write them: the in-memory store uses the same shape, so
 * ids stay printable ASCII, strictly increasing, and a store restarted later (a later clock) never
 * hands out an id an old client still holds.
 */
const STREAM_ID = /^(\d{1,20})-(\d{1,20})$/;
const MAX_PART = 2n ** 64n - 1n;

/** A parsed stream id. */
export interface StreamId {
  ms: bigint;
  seq: bigint;
}

/** The parts of a `<ms>-<seq>` id (each a 64-bit unsigned integer), or `undefined` if it is not one. */
export function parseStreamId(id: string): StreamId | undefined {
  const match = STREAM_ID.exec(id);
  if (!match) return undefined;
  const ms = BigInt(match[1]!);
  const seq = BigInt(match[2]!);
  return ms > MAX_PART || seq > MAX_PART ? undefined : { ms, seq };
}

/** Whether `id` is 0-0, which no engine hands out: Redis refuses it, as no id is below it. */
export function isZeroStreamId(id: StreamId): boolean {
  return id.ms === 0n && id.seq === 0n;
}

/** Negative, zero or positive as `a` is before, equal to or after `b`. */
export function compareStreamIds(a: StreamId, b: StreamId): number {
  if (a.ms !== b.ms) return a.ms < b.ms ? -1 : 1;
  return a.seq === b.seq ? 0 : a.seq < b.seq ? -1 : 1;
}

/**
 * The id after `last` at time `now` (ms), as `XADD *` picks it: the clock, or `last` + 1 if the clock
 * is behind, where the sequence after the largest is the next millisecond's first.
 * @throws {RangeError} after the largest id, as Redis refuses: an id past 64 bits breaks the id rule;
 *   and for a `now` that is no time in ms (negative, not finite, past 64 bits).
 */
export function nextStreamId(last: StreamId | undefined, now: number): StreamId {
  // Checked before any id is made from it: a stored id that breaks the id rule fails every
  // subscriber and every replay after it.
  if (!(Number.isFinite(now) && now >= 0 && now < 2 ** 64))
    throw new RangeError(`The clock must give a time in ms, not ${now}`);
  const ms = BigInt(Math.floor(now));
  if (!last || ms > last.ms) return { ms, seq: 0n };
  if (last.seq < MAX_PART) return { ms: last.ms, seq: last.seq + 1n };
  if (last.ms < MAX_PART) return { ms: last.ms + 1n, seq: 0n };
  throw new RangeError(`No stream id follows ${formatStreamId(last)}`);
}

/** The `<ms>-<seq>` text of an id. */
export function formatStreamId(id: StreamId): string {
  return `${id.ms}-${id.seq}`;
}
