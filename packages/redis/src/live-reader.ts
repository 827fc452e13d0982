import { compareStreamIds, type GapKind, parseStreamId } from '@rxsse/core/channel';
import { ClientOfflineError, ErrorReply, MultiErrorReply, SocketClosedUnexpectedlyError } from 'redis';
import type { RedisClient } from './client.js';
import type { TimedClient } from './deadline.js';
import { RedisTimeoutError } from './errors.js';
import { FailureReports } from './failure-reports.js';
import { LARGEST_ENTRY } from './large-entries.js';
import { type Listened, listenOn } from './listeners.js';
import { evalReadOnly, readsAsReadOnly, refusedEval, refusedReadOnly } from './read-script.js';
import { type Refusals, refusedCommand } from './refusals.js';
import { sleep } from './sleep.js';
import { STREAM_INFO, type StreamInfo, streamInfo, toStreamInfo } from './stream-info.js';
import {
  type Entry,
  isLargeEntry,
  isWrongType,
  lastEntryOf,
  NOT_A_STREAM,
  startPointOf,
} from './stream-read.js';

/** Receives a stream's entries, decoded, from a {@link LiveReader}. Must not throw. */
export interface EntryListener<T> {
  event(value: T): void;
  /** As `LiveListener.gap`: `'continue'` when the next entries follow the cursor, as read. */
  gap(kind: GapKind): void;
  /** As `LiveListener.end`: the reader closed, nothing follows. */
  end?(): void;
  /** As `LiveListener.startsAfter`: every entry after `id` reaches it. */
  startsAfter?(id: string): void;
}

/** Options of a {@link LiveReader}. */
export interface LiveReaderOptions<T> {
  /** How long one XREAD blocks, in ms: the longest a new topic or a recovered Redis waits. */
  blockMs: number;
  /** Most entries per topic per read. */
  readCount: number;
  /**
   * Told about failed reads (the reader retries on its own): each failure at once, its repeats at
   * growing intervals with their count, and the first success after failures once. A read that
   * failed with its connection is not: the connection's own reports tell that.
   */
  onError: (error: unknown) => void;
  /**
   * Turns an entry into what listeners get: once per entry, one value for all of them. Throws for an
   * entry this engine did not write.
   */
  decode: (entry: Entry) => T;
  /**
   * One Redis, not a Cluster. Its restart is told by its `run_id` (`INFO server`), read with each
   * topic's start point and after each (re)connect (on a Cluster a failover changes the node too),
   * and its reading client is one connection, whose connect goes on after `destroy()` until its
   * socket has connected.
   */
  single: boolean;
  /** The engine's: a refused `XINFO` or script is told once, whichever reader meets it first. */
  refusals: Refusals;
}

interface Topic<T> extends Listened<EntryListener<T>> {
  readonly key: string;
  /** The last id delivered (`0-0`: the stream did not exist); `undefined` until it is known. */
  cursor: string | undefined;
  /** The last read was full: trimming may outrun the reader, so the next read is a checked one. */
  behind: boolean;
  /**
   * For a stream that was empty when the topic started (cursor `0-0`, no entry to check): how many
   * entries Redis had deleted from it by then. More deleted by the first read means a gap.
   */
  deletedAtStart: number;
  /** How many times it was read from `0-0` again: a count asked for an earlier time is dropped. */
  startedOver: number;
  /** Entries wait in a stream read from `0-0`: the next read checks nothing was trimmed first. */
  fresh: boolean;
  /**
   * A read after a failure found its cursor gone with nothing after it, and entries came after that
   * read: the next read, which finds them after the gap, tells it as one after a failure.
   */
  goneAfterFailure: boolean;
  /** Its key holds something other than a stream: left out of reads until it is a stream again. */
  broken: boolean;
  /** The `run_id` of the Redis its cursor is from, if known. */
  node: string | undefined;
  /**
   * The cursor's entry was skipped as too large to read in time: the entry before it, whose check
   * (still in the stream) stands for the cursor's without fetching it (`0-0`: none, nothing to check).
   */
  checkAt: string | undefined;
  /**
   * The entry the read checks is large: the check runs in a script that answers whether it is there,
   * rather than fetch it again with every read.
   */
  checkLarge: boolean;
}

interface Batch<T> {
  topic: Topic<T>;
  /** The cursor was gone from the stream: what followed it may be lost. */
  gap: boolean;
  /**
   * Read after a failed one, or after one that found its cursor gone (`goneAfterFailure`): Redis may
   * have restarted without its data, numbering from its clock.
   */
  afterFailure: boolean;
  /**
   * The cursor is gone and nothing follows it, but the stream still holds what came before it: its
   * ids go on above the cursor (its entry was deleted or trimmed), or, after a failure, Redis came
   * back with less (an older snapshot, a replica behind), its entries delivered already. `gap`: the
   * one to tell, if entries may be lost (`'restart'`: ids may go on below the cursor); `cursor`: the
   * stream's last entry, below the cursor, to read on from (none: it is empty); `deleted`: how many
   * entries Redis had deleted from it then, if known, which its read from the start counts from.
   */
  goesOn: { gap: GapKind | undefined; cursor: string | undefined; deleted?: number } | undefined;
  entries: Entry[];
}

const INITIAL = '0-0';

/**
 * Live delivery for one process: one dedicated connection loops `XREAD BLOCK` over the topics that
 * have listeners here, each from the last id it delivered. The block is short, so a new topic or a
 * Redis that went away never waits long; after any failure the next read first checks, in the same
 * MULTI, that every cursor is still in its stream, and tells listeners about a gap if not (Redis
 * restarted without its data, or trimming outran the reader). It never skips silently. On one
 * Redis, the first read after a (re)connect also asks its `run_id`: a stream with no cursor to check
 * may have lost its first entries to a restart.
 */
export class LiveReader<T> {
  readonly #topics = new Map<string, Topic<T>>();
  #running = false;
  #closed = false;
  /** Aborted by `close()`: cuts the loop's waits, so no timer of the reader outlives it. */
  readonly #stop = new AbortController();
  /** A read failed: the connection may have been to a Redis that has since lost data. */
  #suspect = false;
  /** A read failed with `WRONGTYPE`: one key that is not a stream fails a whole `XREAD`. */
  #refused = false;
  /** A read of one entry per topic timed out: the largest of those entries may be too large. */
  #oversize = false;
  /**
   * The largest next entry (key and id) when a read of one entry per topic last timed out: if it is
   * again when the next such read times out, it is skipped (a Redis frozen meanwhile answers neither).
   */
  #tooLarge: string | undefined;
  #failures = 0;
  /** Failed reads, told to `onError` without repeating one twice a second while it lasts. */
  readonly #reports: FailureReports;
  /**
   * The errors the reading connection emitted: the engine's connection reports told them (or count
   * them), and a read that fails with one of them has nothing to add.
   */
  readonly #toldByConnection = new WeakSet<object>();
  /** The reading connection failed since it was last ready: its reports hold that failure. */
  #connectionDown = false;
  /** Redis refused `EVAL` (an ACL): large entries are checked by `XRANGE` too. */
  #evalRefused = false;
  /** Redis refused `XINFO` (an ACL): no stream's counts are asked again. */
  #xinfoRefused = false;
  /**
   * Most entries per topic in the next read: halved after a read that timed out (a batch of large
   * events may not arrive in time, and the same read again would not either), doubled back up to
   * `readCount` after each that did not.
   */
  #count: number;
  /** The `run_id` of the Redis the reading connection last found, if known. */
  #node: string | undefined;
  /** The reading connection (re)connected since the last read: it may be to a new Redis. */
  #unidentified: boolean;
  /** Restarts are told by `run_id`: until Redis refuses `INFO` for good (an ACL without it). */
  #identify: boolean;
  /** The reading connection's socket connected since it last closed or failed. */
  #socketUp = false;

  readonly #main: TimedClient;
  readonly #reading: TimedClient;

  constructor(
    /** For start points: may queue while Redis reconnects. */
    main: TimedClient,
    /** Dedicated to the loop, with the offline queue off, so a disconnect fails the read at once. */
    reading: TimedClient,
    private readonly options: LiveReaderOptions<T>,
  ) {
    this.#main = main;
    this.#reading = reading;
    this.#identify = options.single;
    this.#count = options.readCount;
    this.#unidentified = options.single;
    this.#reports = new FailureReports('live reads', options.onError);
    const failed = (error: unknown) => {
      this.#suspect = true;
      this.#unidentified = this.#identify;
      this.#socketUp = false;
      this.#connectionDown = true;
      if (typeof error === 'object' && error !== null) this.#toldByConnection.add(error);
    };
    const ready = () => {
      this.#connectionDown = false;
    };
    reading.client.on('error', failed);
    reading.client.on('node-error', failed);
    reading.client.on('ready', ready);
    reading.client.on('node-ready', ready);
    reading.client.on('connect', () => {
      this.#socketUp = true;
    });
    reading.client.on('end', () => {
      this.#socketUp = false;
    });
  }

  /**
   * Registers `listener` for the stream `key`. Resolves once the reader knows where the stream ends:
   * everything appended from then on reaches the listener.
   */
  async listen(key: string, listener: EntryListener<T>): Promise<() => void> {
    const unlisten = await listenOn(
      this.#topics,
      key,
      listener,
      (added) => this.#addTopic(added),
      // The last id delivered, or `0-0` for a stream that was empty: every entry reaches the
      // listener, so a resume counts none the reader has yet to bring against its replay limit. A
      // key that is no stream keeps the cursor of the stream it was, whose last events it lost.
      (topic) => (topic.broken ? undefined : topic.cursor),
    );
    this.#ensureRunning();
    return unlisten;
  }

  /**
   * Stops the loop, and drops and ends every listener. Called from a listener (as it is handed an
   * event), the rest of that read reaches none: the sets are emptied, as every listener is ended.
   */
  close(): void {
    this.#closed = true;
    this.#stop.abort();
    const topics = [...this.#topics.values()];
    this.#topics.clear();
    for (const topic of topics) {
      for (const listener of topic.listeners) this.#call(() => listener.end?.());
      topic.listeners.clear();
    }
  }

  #addTopic(key: string): Topic<T> {
    const topic: Topic<T> = {
      key,
      listeners: new Set(),
      cursor: undefined,
      ready: Promise.resolve(),
      behind: false,
      deletedAtStart: 0,
      startedOver: 0,
      fresh: false,
      goneAfterFailure: false,
      broken: false,
      node: undefined,
      checkAt: undefined,
      checkLarge: false,
    };
    topic.ready = (async () => {
      const main = this.#main;
      // Asked first, on the same connection: a restart between the two reads the cursor on the
      // new Redis, where it is safe.
      const [node, last] = await main.run((client) =>
        Promise.all([
          this.#identify ? client.info('server').catch(refusal) : undefined,
          startPointOf(client, key, this.options.refusals, this.options.onError),
        ]),
      );
      topic.node = node === undefined ? undefined : this.#identity(node);
      if (last === NOT_A_STREAM) {
        // Left out of reads, as a key overwritten later is, until it is a stream again.
        topic.broken = true;
        topic.cursor = INITIAL;
        return;
      }
      const id = last?.id;
      if (id === undefined) topic.deletedAtStart = await this.#deletedEntries(key);
      topic.cursor = id ?? INITIAL;
      topic.checkLarge = last?.large ?? false;
    })();
    // A start point that could not be read is retried by the next listener, not cached.
    topic.ready.catch(() => {
      if (this.#topics.get(key) === topic) this.#topics.delete(key);
    });
    this.#topics.set(key, topic);
    return topic;
  }

  #ensureRunning(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    void this.#run();
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        const listened = [...this.#topics.values()].filter(
          (t) => t.cursor !== undefined && t.listeners.size > 0,
        );
        if (listened.length === 0 || this.#closed) return;
        try {
          // Until the connection is ready, do not queue a read: a MULTI would wait for the
          // reconnect, and the first read after it must be a checked one. A connection not yet
          // opened (the first listen, or one dropped after a timeout) is waited for, not failed
          // on: the listeners that started the loop must not wait a backoff for their events.
          if (!this.#reading.client.isOpen) await this.#connect();
          if (!this.#reading.client.isReady) {
            // node-redis's own reconnect (after a drop) whose handshake goes unanswered (a proxy
            // whose Redis is gone) would wait for good: a new connection replaces it.
            if (this.#reading.handshakeUnanswered) this.#drop();
            throw new ClientOfflineError();
          }
          const suspects = this.#refused ? listened : listened.filter((t) => t.broken);
          if (suspects.length > 0) await this.#checkTypes(suspects);
          if (this.#closed) return;
          const topics = listened.filter((t) => !t.broken);
          if (topics.length === 0) {
            await sleep(this.options.blockMs, this.#stop.signal);
            continue;
          }
          if (this.#oversize) await this.#skipOversize(topics);
          if (this.#closed) return;
          // A start point read on another Redis than the one last read: which one is it now?
          if (this.#node !== undefined && topics.some((t) => t.node !== undefined && t.node !== this.#node))
            this.#unidentified = this.#identify;
          const check = this.#suspect || topics.some((t) => t.behind || t.fresh);
          const count = this.#count;
          const batches = await (check
            ? this.#checkedRead(topics, count)
            : this.#blockingRead(topics, count)
          ).catch((error: unknown) => {
            // Not even one entry per topic arrived in time over a connection that was up: one of them
            // may be too large to, ever. A connection still coming back (a restart) proves nothing.
            if (count === 1 && error instanceof RedisTimeoutError && error.connected) this.#oversize = true;
            throw error;
          });
          if (this.#closed) return;
          await this.#findGoingOn(batches);
          if (this.#closed) return;
          this.#failures = 0;
          this.#reports.succeeded();
          this.#count = Math.min(this.options.readCount, count * 2);
          for (const topic of topics) topic.behind = false;
          for (const batch of batches) this.#deliver(batch, count);
        } catch (error) {
          if (this.#closed) return;
          this.#suspect = true;
          this.#unidentified = this.#identify;
          // The read may still be pending: a new connection leaves no stale reply in the way.
          if (error instanceof RedisTimeoutError) {
            this.#drop();
            this.#count = Math.max(1, Math.floor(this.#count / 2));
          }
          if (wrongType(error)) this.#refused = true;
          if (!this.#toldElsewhere(error)) this.#reports.failed(error);
          await sleep(Math.min(500, 25 * 2 ** this.#failures++), this.#stop.signal);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /**
   * Whether a failed read's `error` is the reading connection's failure, which its reports tell:
   * the error it emitted (a read under way when the socket closed fails with it), a timeout waiting
   * for it to connect, or one of a connection that is down, while it is. Told again as a live read's,
   * an outage would be told twice, and its recovery too. A connection that is not ready with no
   * failure on record (its handshake unanswered) is the reads' to tell.
   */
  #toldElsewhere(error: unknown): boolean {
    if (typeof error !== 'object' || error === null) return false;
    if (this.#toldByConnection.has(error)) return true;
    if (error instanceof RedisTimeoutError && !error.connected) {
      const { cause } = error;
      return typeof cause === 'object' && cause !== null && this.#toldByConnection.has(cause);
    }
    return this.#connectionDown && isConnectionError(error);
  }

  /**
   * node-redis retries connecting on its own, but a connection that never gets ready (Redis frozen
   * during the handshake) is dropped after the timeout, and the next loop starts a new one.
   */
  async #connect(): Promise<void> {
    const { client } = this.#reading;
    try {
      await this.#reading.run(client.connect());
    } catch (error) {
      if (!client.isReady) this.#drop();
      throw error;
    }
  }

  /**
   * Drops the reading connection, unless its socket is still connecting: destroy() would miss that
   * socket, and the next loop's connect run beside it, the replies of both read as one. That connect
   * is left to node-redis, whose connect timeout bounds it.
   */
  #drop(): void {
    if (this.options.single && !this.#socketUp) return;
    this.#reading.client.destroy();
  }

  /**
   * Leaves out of reads the topics whose key holds something other than a stream (someone wrote
   * over it), and tells their listeners of a gap: one such key would fail every read, and stop every
   * other topic. A topic whose key is a stream again, or gone, is read again from its start.
   */
  async #checkTypes(topics: Topic<T>[]): Promise<void> {
    const { client } = this.#reading;
    const types = await this.#reading.run(Promise.all(topics.map((t) => client.type(t.key))));
    this.#refused = false;
    topics.forEach((topic, i) => {
      const broken = types[i] !== 'stream' && types[i] !== 'none';
      if (broken === topic.broken) return;
      topic.broken = broken;
      if (broken) for (const listener of topic.listeners) this.#call(() => listener.gap('restart'));
      // Its stream, if any, was made after the gap was told: every entry deleted from it counts.
      else this.#startOver(topic, 0);
    });
  }

  /**
   * `XREAD BLOCK`, with each cursor's check sent right behind it: Redis runs the checks as soon as the
   * read is served, so a cursor found then was still there when the read ran, and nothing after it
   * had been trimmed (trimming goes in order). A cursor gone means a gap before what the read brought:
   * between two reads, a burst (or one MULTI) can trim past it, and `XREAD` starts after the hole.
   */
  async #blockingRead(listened: Topic<T>[], count: number): Promise<Batch<T>[]> {
    const { client, timeoutMs } = this.#reading;
    const checked = listened.filter((t) => checkOf(t) !== INITIAL);
    const identity = this.#identityOf(client);
    const [node, reply, ...found] = await this.#reading.run(
      Promise.all([
        identity,
        client.xRead(
          listened.map((t) => ({ key: t.key, id: t.cursor! })),
          { BLOCK: this.options.blockMs, COUNT: count },
        ),
        ...checked.map((t) => this.#stillThere(client, t)),
      ]),
      this.options.blockMs + timeoutMs,
    );
    const lost = new Set(checked.filter((_, i) => !found[i]));
    const { topics, restarted } = this.#sinceRestart(listened, identity && node);
    const batches = batchesOf(topics, reply as StreamsReply, lost, false);
    for (const batch of batches) if (restarted.has(batch.topic)) batch.afterFailure = true;
    // Entries of a stream read from `0-0` wait for a checked read, which can tell if any were trimmed.
    for (const batch of batches)
      if (batch.topic.cursor === INITIAL && batch.entries.length > 0) batch.topic.fresh = true;
    return batches.filter((batch) => !batch.topic.fresh);
  }

  /**
   * Whether the entry `topic`'s read checks is still in its stream. A large one, by a script that
   * answers without it: an `XRANGE` would fetch it again in every read, several times a second on a
   * quiet topic. Once Redis refuses the script (an ACL without `EVAL`), by the `XRANGE`.
   */
  async #stillThere(client: RedisClient, topic: Topic<T>): Promise<boolean> {
    const id = checkOf(topic);
    if (topic.checkLarge && !this.#evalRefused) {
      try {
        const args = { keys: [topic.key], arguments: [id] };
        return (await evalReadOnly(client, HAS_ENTRY, args, this.options.refusals)) === 1;
      } catch (error) {
        if (!refusedEval(error)) throw error;
        this.#evalRefused = true;
      }
    }
    return ((await client.xRange(topic.key, id, id))?.length ?? 0) > 0;
  }

  /**
   * A non-blocking read, in one MULTI with the checks that make it safe: every cursor is still in
   * its stream, and a stream read from `0-0` lost nothing to trimming yet. Caught-up cursors too: a
   * burst can trim past one between two reads as well while another topic lags (as between two
   * blocking reads), and `XREAD` would start after the hole.
   */
  async #checkedRead(topics: Topic<T>[], count: number): Promise<Batch<T>[]> {
    const checked = topics.filter((t) => checkOf(t) !== INITIAL);
    const initial = topics.filter((t) => t.cursor === INITIAL);
    const { client } = this.#reading;
    const multi = client.multi();
    // As EVAL_RO: Redis holds a MULTI with an EVAL back while writes are paused (a failover), and
    // the checked read that follows a failed one would time out until the pause ends.
    const readOnly = readsAsReadOnly(client);
    const script = (source: string, options: { keys: string[]; arguments?: string[] }) =>
      readOnly ? multi.evalRo(source, options) : multi.eval(source, options);
    // A large entry is checked by the script, as in a blocking read: one too large to arrive in time
    // would time every checked read out, and a failed read is followed by a checked one, for good.
    const byScript = checked.map((t) => t.checkLarge && !this.#evalRefused);
    checked.forEach((topic, i) => {
      const id = checkOf(topic);
      if (byScript[i]) script(HAS_ENTRY, { keys: [topic.key], arguments: [id] });
      else multi.xRange(topic.key, id, id);
    });
    // Its counts, without the first and last entries `XINFO STREAM` sends whole. Refused, none.
    const infos = this.#xinfoRefused ? 0 : initial.length;
    const infoByScript = infos > 0 && !this.#evalRefused;
    for (const topic of initial.slice(0, infos))
      if (infoByScript) script(STREAM_INFO, { keys: [topic.key] });
      else multi.xInfoStream(topic.key);
    multi.xRead(
      topics.map((t) => ({ key: t.key, id: t.cursor! })),
      { COUNT: count },
    );
    const afterFailure = this.#suspect;
    const identity = this.#identityOf(client);
    let node: unknown;
    let replies: unknown[];
    try {
      [node, replies] = await this.#reading.run(
        Promise.all([identity, execAllowingMissingStreams(multi, checked.length, infos)]),
      );
    } catch (error) {
      // XINFO refused in the MULTI (an ACL without it or scripts) would fail every checked read.
      if (infos > 0 && !infoByScript && refusedXInfo(error)) {
        this.#refusedXInfo(error);
        if (identity !== undefined) this.#unidentified = this.#identify;
        return this.#checkedRead(topics, count);
      }
      // Refused (Redis 6.2 or an ACL without EVAL_RO, then an ACL without EVAL), the script discards
      // the whole MULTI: read again with EVAL, then by XRANGE.
      if (!(byScript.includes(true) || infoByScript)) throw error;
      if (readOnly ? !refusedReadOnly(client, error) : !refusedEval(error)) throw error;
      if (readOnly) this.options.refusals.refusedReadOnly(error);
      else {
        this.#evalRefused = true;
        this.options.refusals.refusedEval(error);
      }
      if (identity !== undefined) this.#unidentified = this.#identify;
      return this.#checkedRead(topics, count);
    }
    this.#suspect = false;
    const lost = new Set(
      checked.filter((_, i) => (byScript[i] ? replies[i] !== 1 : (replies[i] as Entry[]).length === 0)),
    );
    const streams = replies[checked.length + infos] as StreamsReply;
    initial.forEach((topic, i) => {
      topic.fresh = false;
      const reply = i < infos ? replies[checked.length + i] : undefined;
      // The script's XINFO refused (an ACL without it): told, and not asked again.
      if (refusedXInfo(reply)) this.#refusedXInfo(reply);
      const info = toStreamInfo(reply);
      // No counts (an ACL without XINFO): entries read from the start may have followed trimmed
      // ones, and a loss that cannot be ruled out is told. A stream with none to read lost nothing yet.
      if (info === undefined) {
        if (streams?.some((stream) => stream.name === topic.key && stream.messages.length > 0))
          lost.add(topic);
        return;
      }
      const deleted = deletedOf(info);
      if (deleted !== undefined && deleted > topic.deletedAtStart) lost.add(topic);
    });
    const { topics: read, restarted } = this.#sinceRestart(topics, identity && node);
    const batches = batchesOf(read, streams, lost, afterFailure);
    for (const batch of batches) if (restarted.has(batch.topic)) batch.afterFailure = true;
    return batches;
  }

  /**
   * After a (re)connect, `INFO server`, sent right before a read on the same connection: a reply
   * to both comes from the same Redis (the reading connection queues nothing while disconnected).
   */
  #identityOf(client: RedisClient): Promise<unknown> | undefined {
    if (!this.#unidentified) return undefined;
    this.#unidentified = false;
    return client.info('server').catch(refusal);
  }

  /**
   * Which of `topics` have their cursors from another Redis than the one just read, told by `reply`,
   * its `INFO` (if asked): all of them if it is not the one read before, as it restarted. Those
   * with a cursor have it checked, as after a failure; a stream read from its start has nothing to
   * check, and a restart may have lost its first entries before they were read: its listeners are
   * told, and it is read from its start again, without what this read brought it. Returns the
   * topics to deliver what this read brought.
   */
  #sinceRestart(topics: Topic<T>[], reply: unknown): { topics: Topic<T>[]; restarted: Set<Topic<T>> } {
    const restarted = new Set<Topic<T>>();
    const node = reply === undefined ? undefined : this.#identity(reply);
    if (node === undefined) return { topics, restarted };
    const all = this.#node !== undefined && this.#node !== node;
    this.#node = node;
    for (const topic of topics) {
      if (all || (topic.node !== undefined && topic.node !== node)) restarted.add(topic);
      topic.node = node;
    }
    const read = topics.filter((topic) => {
      if (!restarted.has(topic) || topic.cursor !== INITIAL) return true;
      for (const listener of topic.listeners) this.#call(() => listener.gap('restart'));
      this.#startOver(topic);
      return false;
    });
    return { topics: read, restarted };
  }

  /**
   * The `run_id` in an `INFO server` reply. An `INFO` refused for good (an ACL without it, a
   * renamed command) is told to `onError` once, and never asked again: every check would repeat it.
   * Another refusal is told each time.
   */
  #identity(reply: unknown): string | undefined {
    if (reply instanceof ErrorReply) {
      if (!this.#identify) return undefined;
      if (!/^(NOPERM|ERR unknown command)/.test(reply.message)) {
        this.options.onError(reply);
        return undefined;
      }
      this.#identify = false;
      this.#unidentified = false;
      this.options.onError(
        new Error(`Redis refused INFO, so a restart of Redis is told by the cursors only: ${reply.message}`, {
          cause: reply,
        }),
      );
      return undefined;
    }
    return /^run_id:(\w+)/m.exec(String(reply))?.[1];
  }

  /**
   * Looks into the batches whose cursor is gone. One with entries after the cursor has no gap if the
   * cursor's entry is the last Redis deleted from its stream (an `XDEL` of it alone, or trimming that
   * stopped there): nothing written after it went, and the stream is the one read before, whatever
   * failed meanwhile. One with nothing after the cursor, whose stream was not lost: its last
   * generated id is not below the cursor, whose entry was deleted (`XDEL`) or trimmed. One whose
   * stream went back below the cursor after a failure (Redis restarted from an older snapshot, a
   * replica behind took over) is read on after its last entry, with a gap told. Read again from its
   * start, such a stream would deliver every entry before the cursor a second time. One whose new
   * entries came after the read waits for the next.
   */
  async #findGoingOn(batches: Batch<T>[]): Promise<void> {
    const gone = batches.filter((b) => b.gap && b.topic.cursor !== INITIAL);
    if (gone.length === 0) return;
    const { client } = this.#reading;
    const infos = await this.#reading.run(
      Promise.all(
        gone.map(async (b) => {
          if (!this.#xinfoRefused) {
            try {
              return await streamInfo(client, b.topic.key, this.options.refusals);
            } catch (error) {
              if (!refusedXInfo(error)) return refusal(error);
              this.#refusedXInfo(error);
            }
          }
          // Without XINFO, entries after the cursor may have gone with it: the gap stands.
          if (b.entries.length > 0) return undefined;
          // An ACL without XINFO: the last entry still tells a stream that goes on below the
          // cursor, not whether entries written after the cursor went too, so they may have.
          const last = await lastEntryOf(client, b.topic.key, this.options.refusals);
          if (last === undefined) return undefined;
          return { lastEntryId: last.id, lastGeneratedId: undefined, maxDeletedId: undefined };
        }),
      ),
    );
    gone.forEach((batch, i) => {
      const info = infos[i];
      if (info instanceof ErrorReply && batch.entries.length === 0 && /no such key/i.test(info.message)) {
        // Lost whole: read from its start, as any lost stream is, where a stream made anew has no
        // entry deleted yet, so every one deleted before that read is one the listeners did not get.
        batch.goesOn = { gap: 'restart', cursor: undefined, deleted: 0 };
        return;
      }
      if (info === undefined || info instanceof ErrorReply) return;
      if (batch.entries.length > 0) {
        if (info.maxDeletedId === batch.topic.cursor) batch.gap = false;
        return;
      }
      const cursor = parseStreamId(batch.topic.cursor!)!;
      const last = info.lastEntryId;
      // Written after the read: the next read tells, as after a failure if this one was.
      if (last !== undefined && compareStreamIds(parseStreamId(last)!, cursor) > 0) {
        batch.gap = false;
        if (batch.afterFailure) batch.topic.goneAfterFailure = true;
        return;
      }
      const generated = info.lastGeneratedId === undefined ? undefined : parseStreamId(info.lastGeneratedId);
      const lower = generated !== undefined && compareStreamIds(generated, cursor) < 0;
      if (lower || generated === undefined) {
        // Unknown, or below the cursor: after a failure, Redis may have come back with less, and
        // numbers on from its last entry; without one, ids may have gone on above the cursor.
        if (batch.afterFailure) {
          if (last !== undefined) batch.goesOn = { gap: 'restart', cursor: last };
        } else if (!lower) batch.goesOn = { gap: 'continue', cursor: last };
        return;
      }
      batch.goesOn = {
        gap: compareStreamIds(generated, cursor) > 0 ? 'continue' : undefined,
        cursor: last,
        // Left empty, it is read from its start (no gap told if nothing was written after the
        // cursor), counting from what this check read: a count asked later could already include
        // a trim before that read, and hide it.
        deleted: ('length' in info ? deletedOf(info) : undefined) ?? 0,
      };
    });
  }

  /** Delivers a batch of a read that asked for `count` entries per topic. */
  #deliver({ topic, gap, afterFailure, goesOn, entries }: Batch<T>, count: number): void {
    if (goesOn) {
      const kind = goesOn.gap;
      if (kind) for (const listener of topic.listeners) this.#call(() => listener.gap(kind));
      if (goesOn.cursor === undefined) this.#startOver(topic, goesOn.deleted);
      else {
        topic.cursor = goesOn.cursor;
        // Its size is not known here: a script costs little either way.
        topic.checkLarge = true;
      }
    } else if (gap) {
      // Entries after the lost cursor, with no failure since the last read: trimming outran the
      // reader, and the ids go on above it. After a failure, Redis may have restarted: entries it
      // numbered since may be below ids a resume was replayed. None: the stream was lost or
      // restarted lower, so read it all.
      const kind = entries.length > 0 && !afterFailure ? 'continue' : 'restart';
      for (const listener of topic.listeners) this.#call(() => listener.gap(kind));
      if (entries.length === 0) this.#startOver(topic);
    }
    for (const entry of entries) {
      let value: T;
      try {
        value = this.options.decode(entry);
      } catch (error) {
        // An entry this engine did not write: skipping it is a gap, and listeners are told.
        this.options.onError(error);
        for (const listener of topic.listeners) this.#call(() => listener.gap('continue'));
        continue;
      }
      // One object for every listener: each route encodes it once.
      for (const listener of topic.listeners) this.#call(() => listener.event(value));
    }
    if (entries.length > 0) {
      topic.cursor = entries[entries.length - 1]!.id;
      topic.checkAt = undefined;
      topic.checkLarge = isLargeEntry(entries[entries.length - 1]);
    }
    topic.behind = entries.length >= count;
  }

  /**
   * After a read of one entry per topic timed out: asks Redis (on the command connection, a script
   * that returns ids and sizes, not entries) for each topic's next entry. The largest, if it was the
   * largest the last time such a read timed out as well, is skipped, and its listeners told of a
   * gap and `onError` why: left in, it would time every read out, and no topic of this reader would
   * get another event. If Redis cannot say (`EVAL` refused, no reply in time), that goes to
   * `onError` (a refused `EVAL` once per engine), and the reads go on as they were.
   */
  async #skipOversize(topics: Topic<T>[]): Promise<void> {
    this.#oversize = false;
    let next: unknown[];
    try {
      next = await this.#main.run((client) =>
        Promise.all(
          topics.map((t) =>
            evalReadOnly(
              client,
              LARGEST_ENTRY,
              { keys: [t.key], arguments: [`(${t.cursor!}`, '+', '1'] },
              this.options.refusals,
            ),
          ),
        ),
      );
    } catch (error) {
      // A refused `EVAL` was told to the engine's refusals (once).
      if (!refusedEval(error)) this.options.onError(error);
      return;
    }
    let largest: { topic: Topic<T>; id: string; size: number } | undefined;
    next.forEach((reply, i) => {
      if (!Array.isArray(reply)) return;
      const [id, size] = reply as [unknown, unknown];
      if (typeof id !== 'string' || typeof size !== 'number') return;
      if (largest === undefined || size > largest.size) largest = { topic: topics[i]!, id, size };
    });
    // Read meanwhile, or gone: the next read may well arrive in time.
    if (largest === undefined) return;
    const { topic, id, size } = largest;
    if (topic.cursor === undefined || compareStreamIds(parseStreamId(id)!, parseStreamId(topic.cursor)!) <= 0)
      return;
    const seen = this.#tooLarge;
    this.#tooLarge = `${topic.key} ${id}`;
    if (seen !== this.#tooLarge) return;
    this.options.onError(
      new Error(
        `Stream ${topic.key} entry ${id} (${size} bytes) did not arrive in time in two reads of one entry per topic: skipped`,
      ),
    );
    topic.checkAt ??= topic.cursor;
    topic.cursor = id;
    topic.behind = false;
    topic.fresh = false;
    for (const listener of topic.listeners) this.#call(() => listener.gap('continue'));
  }

  /**
   * Reads `topic` from `0-0` again, with a new baseline of deleted entries: `deleted` where the
   * caller knows it (a stream made anew has none; the read that found it emptied counted them), or
   * else asked now. Until that answers, no gap is claimed by the first read; one that cannot be asked
   * (a timeout, a connection lost) counts from none: any entry Redis ever deleted from the stream
   * may then be one the listeners did not get, and the first read that finds one tells a gap.
   */
  #startOver(topic: Topic<T>, deleted?: number): void {
    topic.cursor = INITIAL;
    topic.checkAt = undefined;
    topic.checkLarge = false;
    topic.behind = false;
    topic.fresh = false;
    topic.goneAfterFailure = false;
    const startedOver = ++topic.startedOver;
    topic.deletedAtStart = deleted ?? Number.POSITIVE_INFINITY;
    if (deleted !== undefined) return;
    void this.#deletedEntries(topic.key)
      .catch(() => 0)
      .then((counted) => {
        if (topic.startedOver === startedOver && topic.cursor === INITIAL) topic.deletedAtStart = counted;
      });
  }

  /**
   * How many entries Redis ever deleted from `key` (0 if it does not exist, Redis is older than 7,
   * or an ACL refuses XINFO: then the first read's check cannot count either, and tells a gap).
   */
  async #deletedEntries(key: string): Promise<number> {
    if (this.#xinfoRefused) return 0;
    const main = this.#main;
    if ((await main.run((client) => client.exists(key))) === 0) return 0;
    const info = await main
      .run((client) => streamInfo(client, key, this.options.refusals))
      .catch((error: unknown) => {
        if (!refusedXInfo(error)) throw error;
        this.#refusedXInfo(error);
        return undefined;
      });
    return deletedOf(info) ?? 0;
  }

  /** Redis refused `XINFO` (`refusal`): it is not asked again, and the engine's `onError` is told once. */
  #refusedXInfo(refusal: unknown): void {
    this.#xinfoRefused = true;
    this.options.refusals.refused(
      'XINFO',
      refusal,
      "trimming before a new topic's first entries, or after a live cursor whose entry was deleted, cannot be ruled out, and is told as a gap",
    );
  }

  #call(notify: () => void): void {
    try {
      notify();
    } catch (error) {
      this.options.onError(error);
    }
  }
}

/** 1 if the stream `KEYS[1]` holds the entry `ARGV[1]`, else 0, without the entry. */
const HAS_ENTRY = `return #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])`;

/** The id a topic's read checks is still in its stream. */
function checkOf(topic: Topic<unknown>): string {
  return topic.checkAt ?? topic.cursor!;
}

/** Redis's refusal of a command as its reply, to read later; any other failure is thrown. */
function refusal(error: unknown): ErrorReply {
  if (error instanceof ErrorReply) return error;
  throw error;
}

/** An error of the connection rather than of the read: it is down, or went down under the read. */
function isConnectionError(error: object): boolean {
  if (error instanceof ClientOfflineError || error instanceof SocketClosedUnexpectedlyError) return true;
  const { code } = error as { code?: unknown };
  return code === 'ECONNRESET' || code === 'ECONNREFUSED';
}

/** Whether Redis refused a command, or one in a MULTI, for a key of another type. */
function wrongType(error: unknown): boolean {
  const replies = error instanceof MultiErrorReply ? error.replies : [error];
  return replies.some(isWrongType);
}

/**
 * Runs `multi`, where replies `from` to `from + count` are XINFO STREAM of streams that may not
 * exist: their errors ("no such key", or a script's XINFO the ACL refuses) are left in their place,
 * as no counts; any other error is thrown.
 */
async function execAllowingMissingStreams(
  multi: ReturnType<RedisClient['multi']>,
  from: number,
  count: number,
): Promise<unknown[]> {
  try {
    return (await multi.exec()) as unknown[];
  } catch (error) {
    if (!(error instanceof MultiErrorReply)) throw error;
    if (error.errorIndexes.some((i) => i < from || i >= from + count)) throw error;
    return error.replies;
  }
}

/**
 * Whether `error` is Redis refusing XINFO: by the ACL, or as no such command (renamed away), or
 * either inside the script that runs it alone.
 */
function refusedXInfo(error: unknown): boolean {
  return (
    refusedCommand(error, 'xinfo') ||
    (error instanceof ErrorReply &&
      /can't run this command or subcommand script|Unknown Redis command called from script/.test(
        error.message,
      ))
  );
}

/** Entries trimmed or deleted from a stream so far (Redis >= 7). */
function deletedOf(info: StreamInfo | undefined): number | undefined {
  return info?.entriesAdded === undefined ? undefined : info.entriesAdded - info.length;
}

type StreamsReply = { name: string; messages: Entry[] }[] | null;

function batchesOf<T>(
  topics: Topic<T>[],
  reply: StreamsReply,
  lost: Set<Topic<T>>,
  afterFailure: boolean,
): Batch<T>[] {
  const byKey = new Map<string, Entry[]>();
  for (const stream of reply ?? []) byKey.set(stream.name, stream.messages);
  const batches: Batch<T>[] = [];
  for (const topic of topics) {
    const entries = byKey.get(topic.key) ?? [];
    const gap = lost.has(topic);
    const gone = topic.goneAfterFailure;
    topic.goneAfterFailure = false;
    if (gap || entries.length > 0)
      batches.push({ topic, gap, afterFailure: afterFailure || gone, goesOn: undefined, entries });
  }
  return batches;
}
