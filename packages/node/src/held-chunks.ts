import type { Http2ServerResponse } from 'node:http2';

/**
 * Chunks written to an HTTP/2 response while it is full, handed over one at a time as it drains.
 * Node's stream passes every chunk buffered behind a write in flight to one write of their own,
 * which counts whole until the client took its last byte: a stream that ended with its queue full
 * would show no progress until its client had it all, and one that reads, only slowly, would be
 * dropped as stalled. Handed over one at a time, each chunk the client takes shows.
 */
export class HeldChunks {
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #ending = false;
  readonly #res: Http2ServerResponse;

  constructor(res: Http2ServerResponse) {
    this.#res = res;
    res.on('drain', this.#drained);
  }

  /** The bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  add(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  /** Ends the response once the last chunk held was handed over. */
  end(): void {
    this.#ending = true;
  }

  /** Drops what is held (the response closed or is destroyed). */
  clear(): void {
    this.#chunks = [];
    this.#bytes = 0;
    this.#ending = false;
    this.#res.off('drain', this.#drained);
  }

  readonly #drained = (): void => {
    const res = this.#res;
    while (this.#chunks.length > 0) {
      const chunk = this.#chunks.shift()!;
      this.#bytes -= chunk.length;
      if (!res.write(chunk)) return;
    }
    if (this.#ending) {
      this.clear();
      res.end();
    }
  };
}
