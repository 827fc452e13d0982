import { checkOptionNames, checkOptionsObject } from '../http/option-names.js';
import { describeValue } from '../http/source.js';
import { checkDuration, checkIntegerDuration, MAX_DURATION } from './duration.js';

/** What a group needs of a stream: an `EventStream` is one. */
export interface GroupMember {
  /** Aborted once the connection is closed. */
  readonly signal: AbortSignal;
  /** Bytes waiting for a slow client. */
  readonly queuedBytes: number;
  /** Ends the stream after its queue, with an optional `retry:` hint. */
  close(reason: 'shutdown', retryHint?: number): void;
  /** Drops the connection at once. */
  destroy(): void;
}

/** How {@link StreamGroup.close} ends its streams. */
export interface ShutdownOptions {
  /**
   * Send each client `retry: <ms>` before its stream ends, drawn between `retry` and
   * `retry + spread`, so clients come back spread over a window instead of all at once.
   */
  retry?: number | undefined;
  /** Width of the reconnect window, in ms. @defaultValue 0 */
  spread?: number | undefined;
  /** Destroy connections that have not flushed after this many ms. @defaultValue 5_000 */
  deadline?: number | undefined;
}

/** The `deadline` of a shutdown, in ms: the one default every transport's shutdown counts with. */
export function shutdownDeadline(options: ShutdownOptions): number {
  return options.deadline ?? 5_000;
}

/** What gauges read of a set of streams. */
export interface StreamGauges {
  /** Number of open streams. */
  readonly size: number;
  /** Bytes queued for slow clients. */
  readonly queuedBytes: number;
}

/**
 * @internal One per process, however many copies of rxsse it loads: an app's ESM code and a
 * CommonJS dependency each get their own build, a bundle (Next.js's `instrumentation.ts`) its own
 * copy, and a shutdown through one must still reach the streams of the others.
 */
export function processWide<T>(name: string, make: () => T): T {
  const shared = globalThis as Record<symbol, unknown>;
  const key = Symbol.for(`rxsse.${name}`);
  shared[key] ??= make();
  return shared[key] as T;
}

/** The groups that hold streams now, whoever made them: what {@link allStreams} adds up. */
const busyGroups = processWide('busyGroups', () => new Set<StreamGroup>());

/** The groups of {@link serverStreams}: each of their streams counts in its own group already. */
const uncounted = new WeakSet<StreamGroup>();

/**
 * The open streams of a server (or of the process): what a graceful shutdown closes, and what a
 * metrics scrape counts. Every stream joins its options' `group` when it starts and leaves it
 * when it ends.
 */
export class StreamGroup {
  readonly #streams = new Set<GroupMember>();
  /** Handlers of its routes still setting up: a close reaches them, the gauges count no stream yet. */
  readonly #pending = new Set<GroupMember>();
  /** The options of the last {@link close}, for the reconnect hint. */
  #shutdown: ShutdownOptions | undefined;
  #closing = 0;
  /** Streams a {@link close} ended that are still flushing: they left `#streams`, not the close. */
  readonly #flushing = new Set<GroupMember>();

  /**
   * True while {@link close} runs: a transport answers new requests with a reconnect hint instead
   * of a stream that would keep the closing server open.
   */
  get closing(): boolean {
    return this.#closing > 0;
  }

  /** Number of open streams. */
  get size(): number {
    return this.#streams.size;
  }

  /** Bytes queued for slow clients, across the group (computed on demand, for gauges). */
  get queuedBytes(): number {
    let total = 0;
    for (const stream of this.#streams) total += stream.queuedBytes;
    return total;
  }

  /** @internal `pending`: a handler still setting up, which a close aborts but no gauge counts. */
  add(stream: GroupMember, pending = false): void {
    if (pending) {
      this.#pending.add(stream);
      return;
    }
    // A group counts in {@link allStreams} from its first stream to its last.
    if (this.#streams.size === 0 && !uncounted.has(this)) busyGroups.add(this);
    this.#streams.add(stream);
  }

  /** @internal */
  delete(stream: GroupMember): void {
    if (this.#pending.delete(stream)) return;
    if (this.#streams.delete(stream) && this.#streams.size === 0) busyGroups.delete(this);
  }

  /**
   * @internal A stream that ended by itself while its transport still holds bytes for a slow
   * client: a {@link close} waits for that flush too, within its deadline, as for the streams it
   * ends itself, instead of letting the server cut the tail or wait for the client without bound.
   */
  addFlushing(stream: GroupMember): void {
    if (stream.signal.aborted) return;
    this.#flushing.add(stream);
    stream.signal.addEventListener('abort', () => this.#flushing.delete(stream), { once: true });
  }

  /**
   * Closes every open stream with reason `'shutdown'`: each writes what it has queued (and the
   * retry hint), then ends; a handler of its routes still setting up has its `signal` aborted, and
   * its client is turned away. Resolves once every connection has closed, or once `deadline` ms have
   * passed, after destroying the ones that were still flushing. A close called while another one
   * waits also waits for the connections that one is flushing (within its own `deadline`).
   */
  async close(options: ShutdownOptions = {}): Promise<void> {
    checkShutdownOptions(options);
    const deadline = shutdownDeadline(options);
    this.#shutdown = options;
    this.#closing++;
    try {
      for (const stream of [...this.#streams, ...this.#pending]) {
        stream.close('shutdown', this.reconnectHint());
        this.#flushing.add(stream);
      }
      // An ended stream leaves the group at once, but its connection may still be flushing for an
      // earlier close: a second close must not resolve (and let the process exit) before it has.
      const open = [...this.#flushing].filter((stream) => !stream.signal.aborted);
      for (const stream of this.#flushing) if (stream.signal.aborted) this.#flushing.delete(stream);
      if (open.length === 0) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const flushed = Promise.all(open.map((stream) => aborted(stream.signal)));
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadline);
      });
      await Promise.race([flushed, late]);
      clearTimeout(timer);
      for (const stream of open) {
        if (!stream.signal.aborted) stream.destroy();
        this.#flushing.delete(stream);
      }
    } finally {
      this.#closing--;
    }
  }

  /**
   * Keeps {@link closing} true until `until` settles, after {@link close} returned: a server that
   * stops listening goes on turning requests away (those on its kept-alive connections) until its
   * own close completes, also where the handler cannot see the server (a fetch handler).
   */
  closeUntil(until: PromiseLike<unknown>): void {
    this.#closing++;
    const release = () => {
      this.#closing--;
    };
    until.then(release, release);
  }

  /**
   * The `retry:` hint for a stream ended by the last {@link close}, drawn from its window; `undefined`
   * before any close, or when it gave no `retry`. Also sent to requests that arrive while a server
   * shuts down, so they come back spread out too.
   */
  reconnectHint(): number | undefined {
    const retry = this.#shutdown?.retry;
    return retry === undefined
      ? undefined
      : Math.round(retry + Math.random() * (this.#shutdown?.spread ?? 0));
  }
}

/**
 * Checks shutdown options where they are given (not when the server is already going down).
 * @throws {RangeError} naming the option that is not a duration in range.
 * @param also - the names a caller takes in the same object beside them (`['group']`).
 * @throws {TypeError} when `options` is not an object, or has a name no shutdown option has.
 */
export function checkShutdownOptions(options: ShutdownOptions, also: readonly string[] = []): void {
  checkOptionsObject(options, 'shutdown options');
  checkOptionNames(
    'shutdown',
    options,
    also.length ? [...SHUTDOWN_OPTION_NAMES, ...also] : SHUTDOWN_OPTION_NAMES,
  );
  const { retry, spread, deadline } = options;
  if (retry !== undefined) checkIntegerDuration('retry', retry);
  if (spread !== undefined) checkDuration('spread', spread, 0);
  if (deadline !== undefined) checkDuration('deadline', deadline);
  if ((retry ?? 0) + (spread ?? 0) > MAX_DURATION) {
    throw new RangeError(`retry + spread must be at most ${MAX_DURATION} ms`);
  }
}

const SHUTDOWN_OPTION_NAMES = Object.keys({
  retry: true,
  spread: true,
  deadline: true,
} satisfies Record<keyof ShutdownOptions, true>);

const GROUP_METHODS = ['add', 'delete', 'reconnectHint', 'close', 'closeUntil'] as const;

/**
 * Checks a `group` option where it is given, so that a wrong one fails there, naming it, not when
 * a stream starts or the server shuts down.
 * @throws {TypeError} unless `group` has the methods of a {@link StreamGroup}.
 */
export function checkStreamGroup(group: unknown): void {
  const methods = group as Partial<Record<string, unknown>> | null;
  if (
    typeof methods === 'object' &&
    methods !== null &&
    GROUP_METHODS.every((name) => typeof methods[name] === 'function')
  )
    return;
  throw new TypeError(`group must be a StreamGroup, got ${describeValue(group)}`);
}

/**
 * @internal Closes each group (see {@link StreamGroup.close}) and waits for them all, even when one's
 * close throws or rejects (a subclass's): a shutdown still ends every other stream. Rejects then
 * with the first failure, for the caller to tell.
 */
export function closeEach(groups: readonly StreamGroup[], options: ShutdownOptions): Promise<void> {
  return allClosed(groups.map(async (group) => group.close(options)));
}

/**
 * @internal Waits for every close in `closing`, then rejects with the first failure, if one failed:
 * a close that fails may not cut the others short.
 */
export async function allClosed(closing: readonly Promise<unknown>[]): Promise<void> {
  const closed = await Promise.allSettled(closing);
  const failed = closed.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** The streams of each server, by the server: one map per process, as {@link openStreams}. */
const servers = processWide('serverStreams', () => new WeakMap<object, StreamGroup>());

/**
 * @internal Every open stream `server` serves, whatever group its options name: what the server's
 * shutdown ends, so that a stream of a route's own group never holds it open. A transport that
 * knows its server passes this group to {@link streamEvents}; one that cannot see it (a fetch
 * handler) passes the group of no `server`, one per process. Not counted by {@link allStreams}.
 */
export function serverStreams(server: object = globalThis): StreamGroup {
  let group = servers.get(server);
  if (!group) {
    group = new StreamGroup();
    uncounted.add(group);
    servers.set(server, group);
  }
  return group;
}

/** The group every stream joins unless its options name another: the whole process, every copy of rxsse in it. */
export const openStreams: StreamGroup = processWide('openStreams', () => new StreamGroup());

/**
 * Every open stream of the process, whatever its group: also those of the groups an adapter makes
 * for each app (the Fastify plugin's, `RxsseModule`'s), which no one else can name. What metrics
 * gauges read unless told a group.
 */
export const allStreams: StreamGauges = {
  get size() {
    let total = 0;
    for (const group of busyGroups) total += group.size;
    return total;
  },
  get queuedBytes() {
    let total = 0;
    for (const group of busyGroups) total += group.queuedBytes;
    return total;
  },
};
