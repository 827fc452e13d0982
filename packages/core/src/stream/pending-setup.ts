import type { Sink } from '../http/sink.js';
import type { GroupMember } from './group.js';

/** What a {@link PendingSetup} needs of its transport's sink. */
export interface AbortableSink extends Pick<Sink, 'signal' | 'destroy'> {
  onClose(listener: () => void): boolean;
  /** Aborts `signal` while the connection stays open, for the answer that turns its client away. */
  abort(): void;
}

/**
 * @internal A handler still setting up its source (one that returned a promise), as one of its
 * server's streams, so that it cannot hold the server's close for as long as it takes: the
 * shutdown aborts its `signal` (what it resolves to later is turned away), and at the deadline
 * `onDeadline` runs (by default, the connection is dropped).
 */
export class PendingSetup implements GroupMember {
  readonly queuedBytes = 0;
  /** Whether a shutdown aborted the handler's signal: its abort is then no client's close. */
  shutDown = false;
  #closed: AbortController | undefined;

  constructor(
    private readonly sink: AbortableSink,
    private readonly onDeadline: () => void = () => sink.destroy(),
  ) {}

  /** Aborted once the connection is closed; the group reads it only when it closes. */
  get signal(): AbortSignal {
    if (!this.#closed) {
      const closed = new AbortController();
      this.#closed = closed;
      // The sink's own signal aborts at the shutdown already, with the connection still open. A
      // stream that starts later registers its own listener, but none starts once shut down.
      if (!this.sink.onClose(() => closed.abort())) closed.abort();
    }
    return this.#closed.signal;
  }

  close(): void {
    // A client that left first keeps its own close: the handler's abort is then its.
    if (this.signal.aborted) return;
    this.shutDown = true;
    this.sink.abort();
  }

  destroy(): void {
    this.onDeadline();
  }
}

/** Whether a handler returned a promise (or any thenable): only then is there a setup to wait for. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
