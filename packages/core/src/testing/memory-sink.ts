import type { Sink } from '../http/sink.js';

/** A Sink that keeps what it is given: the contract's own in-memory implementation. */
export class MemorySink implements Sink {
  readonly http2 = false;
  readonly chunks: Uint8Array[] = [];
  headers: Readonly<Record<string, string>> | undefined;
  ended = false;
  destroyed = false;
  /** While true, `write` reports the transport full. */
  full = false;
  private readonly controller = new AbortController();
  private drain: (() => void) | undefined;
  /** Bytes written while the transport was full that the client has not taken yet. */
  private held = 0;
  readonly signal: AbortSignal = this.controller.signal;
  open(headers: Readonly<Record<string, string>>) {
    this.headers = headers;
  }
  write(chunk: Uint8Array) {
    this.chunks.push(chunk);
    if (this.full) this.held += chunk.length;
    return !this.full;
  }
  pending() {
    return this.held;
  }
  onDrain(listener: () => void) {
    this.drain = listener;
  }
  /** Flushed, and closed, at once; or when the client has taken what a full transport holds. */
  end() {
    this.ended = true;
    if (!this.full) this.controller.abort();
  }
  destroy() {
    this.destroyed = true;
    this.controller.abort();
  }
  /** The client reads everything: the transport has room again. */
  release() {
    this.full = false;
    this.held = 0;
    this.drain?.();
    if (this.ended) this.controller.abort();
  }
  /** The client takes `bytes` of what the full transport holds: taking the last of them releases it. */
  read(bytes: number) {
    this.held = Math.max(0, this.held - bytes);
    if (this.held === 0) this.release();
  }
  /** The client reads what was written, and the next write fills the transport again. */
  drainOnce() {
    this.drain?.();
  }
  /** The client goes away. */
  disconnect() {
    this.controller.abort();
  }
  get text() {
    return this.chunks.map((c) => new TextDecoder().decode(c)).join('');
  }
}
