import type { GroupMember } from '@rxsse/core';
import type { NodeSink } from './node-sink.js';

/**
 * A handler still setting up its source (an async `produce`), as one of its server's streams, so
 * that it cannot hold the server's close for as long as it takes: the shutdown aborts its
 * `signal` (what it resolves to later is turned away), and its deadline drops the connection.
 */
export class PendingSetup implements GroupMember {
  readonly queuedBytes = 0;
  /** Whether a shutdown aborted the handler's signal: its abort is then no client's close. */
  shutDown = false;
  #closed: AbortController | undefined;

  constructor(private readonly sink: NodeSink) {}

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
    this.sink.destroy();
  }
}
