import type { HistoryPage } from '@rxsse/core/channel';
import { RedisTimeoutError } from './errors.js';

/** Page ends remembered to go first (see {@link ReadGate}): a replay reads its next page at once. */
const REMEMBERED_PAGE_ENDS = 1024;

interface Waiting {
  since: number;
  go: () => void;
  fail: (error: unknown) => void;
}

/**
 * Lets at most `limit` history reads use the engine's command connection at once; the others wait
 * their turn, in order. A reconnect storm sends thousands of replays at once: on one connection
 * each page's second `XRANGE` would queue behind every other's first and its reply behind all of
 * theirs, so none would finish in time, the first timeout would drop the connection with every
 * call on it. In turns, each read takes about as long as alone. A read from where a page this gate
 * handed out ended, with more to come, is a replay's next page: it goes before the replays that have
 * not begun, so that replays end one after another, not all at the end of the storm.
 */
export class ReadGate {
  #running = 0;
  readonly #waiting: Waiting[] = [];
  readonly #nextPages: Waiting[] = [];
  readonly #pageEnds = new Set<string>();
  #closed: (() => Error) | undefined;

  constructor(
    readonly limit: number,
    /** The longest a read waits for its turn, in ms. */
    readonly maxWaitMs: number,
  ) {}

  /**
   * Runs `read`, the page of `key` after `afterId`, in its turn. One that waited for its turn fails
   * once `maxWaitMs` passed since this call, as a command that got no reply in that time: its own
   * deadline is a whole `maxWaitMs` from its start. It still holds its turn until it settles. One
   * still waiting when `signal` aborts is dropped, failing with its reason.
   */
  async read(
    key: string,
    afterId: string,
    read: () => Promise<HistoryPage>,
    signal?: AbortSignal,
  ): Promise<HistoryPage> {
    if (this.#closed) throw this.#closed();
    signal?.throwIfAborted();
    const since = Date.now();
    const waited = this.#running >= this.limit;
    if (!waited) this.#running++;
    else {
      const queue = this.#pageEnds.has(`${afterId} ${key}`) ? this.#nextPages : this.#waiting;
      // The turn is handed over with the count unchanged, so no read that comes meanwhile takes it.
      await new Promise<void>((go, fail) => {
        const waiting: Waiting = {
          since,
          go: () => {
            signal?.removeEventListener('abort', left);
            go();
          },
          fail: (error) => {
            signal?.removeEventListener('abort', left);
            fail(error);
          },
        };
        // Its client left: in a reconnect storm, reads for no one would hold up the others' turns.
        const left = () => {
          queue.splice(queue.indexOf(waiting), 1);
          waiting.fail(signal!.reason);
        };
        signal?.addEventListener('abort', left, { once: true });
        queue.push(waiting);
      });
    }
    const reading = this.#run(key, read);
    return waited ? this.#within(reading, since) : reading;
  }

  async #run(key: string, read: () => Promise<HistoryPage>): Promise<HistoryPage> {
    try {
      const page = await read();
      const last = page.events.at(-1);
      if (page.more && last) this.#remember(`${last.id} ${key}`);
      return page;
    } finally {
      this.#handOver();
    }
  }

  /** `reading`, or a {@link RedisTimeoutError} once `maxWaitMs` passed `since`. */
  #within(reading: Promise<HistoryPage>, since: number): Promise<HistoryPage> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(this.#timedOut('waited for one', 'then for its reply')),
        // Its turn may come in the very ms its wait ends: Node warns of a negative delay.
        Math.max(0, this.maxWaitMs - (Date.now() - since)),
      );
    });
    // Its own outcome, once nobody waits for it, is the command's: told where it failed.
    reading.catch(() => {});
    return Promise.race([reading, expired]).finally(() => clearTimeout(timer));
  }

  #timedOut(waited: string, then?: string): RedisTimeoutError {
    const turns = `${waited} of the engine's ${this.limit} history reads at once${then ? `, ${then}` : ''}`;
    return new RedisTimeoutError(this.maxWaitMs, true, new Error(turns));
  }

  /** Fails every waiting read, and every later one, with `error()`. */
  close(error: () => Error): void {
    this.#closed = error;
    for (const waiting of [...this.#nextPages.splice(0), ...this.#waiting.splice(0)]) waiting.fail(error());
  }

  #remember(pageEnd: string): void {
    this.#pageEnds.delete(pageEnd);
    this.#pageEnds.add(pageEnd);
    if (this.#pageEnds.size > REMEMBERED_PAGE_ENDS)
      this.#pageEnds.delete(this.#pageEnds.values().next().value!);
  }

  /**
   * Gives a finished read's turn to the next. One that waited past `maxWaitMs` fails instead, as a
   * command that got no reply in that time, and the turn goes on: behind a frozen Redis, every
   * waiting read has failed once the reads before it time out, not `limit` of them per timeout.
   */
  #handOver(): void {
    const now = Date.now();
    for (;;) {
      const waiting = this.#nextPages.shift() ?? this.#waiting.shift();
      if (!waiting) break;
      if (now - waiting.since <= this.maxWaitMs) {
        waiting.go();
        return;
      }
      waiting.fail(this.#timedOut('waited longer for one'));
    }
    this.#running--;
  }
}
