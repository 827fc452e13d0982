import { compareStreamIds, parseStreamId } from '@rxsse/core/channel';
import type { RedisClient } from './client.js';
import type { TimedClient } from './deadline.js';
import { RedisTimeoutError } from './errors.js';
import { evalReadOnly, refusedEval } from './read-script.js';
import type { Refusals } from './refusals.js';

/** An entry that a replay's read timed out on: suspected, or proven, too large to arrive in time. */
interface Large {
  id: string;
  /** Fetched alone (with the entry before it) and timed out again: it is skipped. */
  proven: boolean;
}

/** The range of a page's `XRANGE`, as sent: `from` (inclusive) to `end`, at most `count` entries. */
interface Range {
  from: string;
  end: string;
  count: number;
  /** Whether the entry at `from` was fetched too, not only checked for by a script. */
  fetchedFrom: boolean;
}

/** Most streams with entries remembered: a few at most in practice, bounded all the same. */
const MOST_STREAMS = 1000;
/** Most entries remembered per stream. */
const MOST_PER_STREAM = 16;

/**
 * The entries of one page read that it must not fetch with others, and what it fetched last: see
 * {@link LargeEntries}.
 */
export interface PageEntries {
  /** The first entry after `from` that timed a read out, if any. */
  after(from: string): Large | undefined;
  /** Whether the entry `id` timed a read out: a read from it must not fetch it. */
  has(id: string): boolean;
  /** Told before each `XRANGE`. */
  reading(from: string, end: string, count: number, fetchedFrom: boolean): void;
  /** A suspected entry arrived in time, fetched alone: it is not too large. */
  arrived(id: string): void;
}

/**
 * The stream entries too large to arrive in a replay's read in time (a slow link), one stream entry
 * at a time. After a read timed out over a connection that was up, a script (`EVAL`, which returns an
 * id and a size, not entries) finds the largest entry of the `XRANGE` that timed out: suspected, the
 * next page that reaches it ends before it, and the page after that fetches it alone with the entry
 * before it. If that times out too, and so does a fetch of it alone sent once Redis answered the
 * script (a Redis that froze as the page was read proves nothing), it is proven:
 * `onError` is told, and every replay that reaches it from then on is truncated there, instead of
 * every resume over it failing for good. One at the start of the range (a client's last event) is
 * remembered too: a read from it then checks it is there without fetching it. Until a read has timed
 * out, this costs nothing.
 */
export class LargeEntries {
  readonly #streams = new Map<string, Large[]>();
  /** Aborted by `close()`: a wait for the connection must not outlive the engine. */
  readonly #stop = new AbortController();
  /**
   * The wait for the connection under way: shared by every replay that timed out with it, each of
   * which would otherwise hold a listener of its own on the connection.
   */
  #waiting: Promise<boolean> | undefined;

  constructor(
    private readonly commands: TimedClient,
    private readonly onError: (error: unknown) => void,
    /** The engine's: a refused script command is told once, not at every read that times out. */
    private readonly refusals: Refusals,
  ) {}

  /** For one page read of `key`: the range it read last is kept for {@link timedOut}. */
  page(key: string): PageEntries & Range {
    const streams = this.#streams;
    return {
      from: '',
      end: '',
      count: 0,
      fetchedFrom: true,
      after(from) {
        const known = streams.get(key);
        if (known === undefined) return undefined;
        const start = parseStreamId(from)!;
        return known.find((entry) => compareStreamIds(parseStreamId(entry.id)!, start) > 0);
      },
      has(id) {
        return streams.get(key)?.some((entry) => entry.id === id) ?? false;
      },
      reading(from, end, count, fetchedFrom) {
        this.from = from;
        this.end = end;
        this.count = count;
        this.fetchedFrom = fetchedFrom;
      },
      arrived: (id) => this.#forget(key, id),
    };
  }

  /** Ends every wait for the connection: the engine closed. */
  close(): void {
    this.#stop.abort();
  }

  /**
   * A read of `key` timed out, connected, on `range`: asks Redis for its largest entry, and suspects
   * it, or, if it was fetched alone as a suspect already, proves it. If Redis cannot say, nothing
   * changes: `EVAL` refused goes to `onError` (once per engine); no reply in time (Redis frozen),
   * as the read's own failure says as much, does not.
   */
  async timedOut(key: string, range: Range): Promise<void> {
    if (range.count === 0) return;
    // The timeout dropped the connection: the script waits for the new one, rather than be the
    // call that times out on a handshake Redis does not answer (frozen) and drop that one too.
    this.#waiting ??= ready(this.commands.client, this.commands.timeoutMs, this.#stop.signal).finally(() => {
      this.#waiting = undefined;
    });
    if (!(await this.#waiting)) return;
    let reply: unknown;
    try {
      reply = await this.commands.run((client) =>
        evalReadOnly(
          client,
          LARGEST_ENTRY,
          {
            keys: [key],
            // An entry the read did not fetch did not time it out.
            arguments: [range.fetchedFrom ? range.from : `(${range.from}`, range.end, String(range.count)],
          },
          this.refusals,
        ),
      );
    } catch (error) {
      // A refused `EVAL` was told to the engine's refusals (once).
      if (!(refusedEval(error) || error instanceof RedisTimeoutError)) this.onError(error);
      return;
    }
    if (!Array.isArray(reply)) return;
    const [id, size] = reply as [unknown, unknown];
    if (typeof id !== 'string' || typeof size !== 'number') return;
    const known = this.#streams.get(key) ?? [];
    const entry = known.find((large) => large.id === id);
    if (entry?.proven) return;
    // The page's own start (the client's last event, or a page's last entry so far): known, a read
    // from it checks it is there without fetching it, so a client that has it can resume.
    if (id === range.from) {
      if (entry === undefined) this.#suspect(key, known, id);
      return;
    }
    if (entry !== undefined) {
      // Fetched alone, with the entry before it, and timed out again.
      if (range.end !== id) return;
      // Redis answered the script, which proves it answers now, not that it did then: it may have
      // frozen as the fetch was sent. Only a fetch of the entry alone that times out now proves it.
      const alone = await this.#fetchAlone(key, id);
      if (alone === 'arrived') this.#forget(key, id);
      if (alone !== 'timed out' || entry.proven) return;
      entry.proven = true;
      this.onError(
        new Error(
          `Stream ${key} entry ${id} (${size} bytes) did not arrive in time for a replay, even alone: replays over it are truncated`,
        ),
      );
      return;
    }
    this.#suspect(key, known, id);
  }

  /** Fetches entry `id` of `key` alone, on the command connection, with its deadline. */
  async #fetchAlone(key: string, id: string): Promise<'arrived' | 'timed out' | 'unknown'> {
    try {
      await this.commands.run((client) => client.xRange(key, id, id, { COUNT: 1 }));
      return 'arrived';
    } catch (error) {
      if (error instanceof RedisTimeoutError && error.connected) return 'timed out';
      if (!(error instanceof RedisTimeoutError)) this.onError(error);
      return 'unknown';
    }
  }

  /** `id` of `key` arrived in time: it is not too large, unless proven so already. */
  #forget(key: string, id: string): void {
    const known = this.#streams.get(key);
    const left = known?.filter((entry) => entry.id !== id || entry.proven);
    if (left?.length === 0) this.#streams.delete(key);
    else if (left !== undefined) this.#streams.set(key, left);
  }

  /** Remembers `id` among the `known` large entries of `key`, within the bounds. */
  #suspect(key: string, known: Large[], id: string): void {
    if (known.length >= MOST_PER_STREAM) {
      // A suspect goes first: a proven entry forgotten would fail every replay over it again.
      const suspect = known.findIndex((entry) => !entry.proven);
      known.splice(suspect === -1 ? 0 : suspect, 1);
    }
    known.push({ id, proven: false });
    known.sort((a, b) => compareStreamIds(parseStreamId(a.id)!, parseStreamId(b.id)!));
    this.#streams.delete(key);
    this.#streams.set(key, known);
    if (this.#streams.size > MOST_STREAMS) this.#streams.delete(this.#streams.keys().next().value!);
  }
}

/**
 * Whether `client` is ready, or gets ready within `ms` and before `signal` aborts: waits for a
 * connection, never starts one.
 */
function ready(client: RedisClient, ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (client.isReady) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (value: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      signal.removeEventListener('abort', onAbort);
      resolve(value);
    };
    const onReady = () => done(true);
    const onAbort = () => done(false);
    const timer = setTimeout(onAbort, ms);
    timer.unref();
    client.on('ready', onReady);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The id and size (its fields' and values' bytes) of the largest entry of `XRANGE KEYS[1] ARGV[1]
 * ARGV[2] COUNT ARGV[3]`, without the entries: what a read that timed out met.
 */
export const LARGEST_ENTRY = `
local largest, most = nil, -1
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])) do
  local size = 0
  for _, part in ipairs(entry[2]) do size = size + #part end
  if size > most then largest, most = entry[1], size end
end
if not largest then return nil end
return { largest, most }
`;
