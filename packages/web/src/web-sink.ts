import { type Sink, utf8Bytes } from '@rxsse/core';
import { headResponse } from './head-response.js';
import { checkRequestSignal } from './request-signal.js';

/**
 * What the response body fails with when the server drops a stream on purpose (a slow client's
 * overflow or stall, a shutdown deadline). A body stream's error is the only way a Web `Response`
 * can cut its connection; runtimes log it, naming this error. The stream's `onClose` has the reason.
 */
export class SseStreamDroppedError extends Error {
  override readonly name = 'SseStreamDroppedError';
  constructor() {
    super('rxsse dropped the event stream (see onClose for the reason)');
  }
}

/** Bytes the body stream holds before it says "full": the runtime's own buffer comes on top. */
const HIGH_WATER_MARK = 64 * 1024;

/**
 * `ByteLengthQueuingStrategy` as a plain object: the class is not a global of every runtime (Next.js's
 * Edge runtime throws when it is constructed).
 */
const BYTE_LENGTH: QueuingStrategy<Uint8Array> = {
  highWaterMark: HIGH_WATER_MARK,
  size: (chunk) => chunk.byteLength,
};

/**
 * The headers with an `ETag` of this response's own, unless the route gave one or removed it
 * (`ETag: null`, named in `remove`): a middleware that
 * tags a response by hashing its whole body (Hono's `etag()`) skips one that has a tag, and would
 * otherwise wait for an endless stream to end, holding all of it. Never the same twice, so no
 * `If-None-Match` a client sends back can match it and have a stale stream replayed from a cache.
 */
function withEntityTag(
  headers: Readonly<Record<string, string>>,
  remove: readonly string[] = [],
): Readonly<Record<string, string>> {
  if (remove.includes('etag') || Object.keys(headers).some((name) => name.toLowerCase() === 'etag'))
    return headers;
  return { ...headers, etag: `"${crypto.randomUUID()}"` };
}

/**
 * The {@link Sink} over a WHATWG `ReadableStream` of bytes: the runtime pulls, `desiredSize` (counted
 * in bytes) says when it is full, and the client is gone when the runtime cancels the body or aborts
 * `request.signal`, whichever it does first (some runtimes only do one of them). Until the runtime
 * first reads it, the body is full whatever it holds, so a body no one reads meets `stallTimeout`.
 */
export class WebSink implements Sink {
  /** A `Response` may carry no hop-by-hop header (`Connection`, `Keep-Alive`, ...) on any HTTP version. */
  readonly http2 = true;
  #controller: AbortController | undefined;
  #body: ReadableStreamDefaultController<Uint8Array> | undefined;
  #stream: ReadableStream<Uint8Array> | undefined;
  #response: Response | undefined;
  #isClosed = false;
  #onClose: (() => void) | undefined;
  #drain: (() => void) | undefined;
  #full = false;
  #ending = false;
  #wrote = false;
  #reading = false;
  readonly #request: Request;

  /**
   * @throws TypeError for a Request-like object whose `signal` is not an `AbortSignal` (node-fetch's
   * Request): nothing would tell when its client leaves.
   */
  constructor(request: Request) {
    checkRequestSignal(request, 'new WebSink()');
    this.#request = request;
    if (request.signal.aborted) this.#isClosed = true;
    else request.signal.addEventListener('abort', this.#closed);
  }

  /** Whether the connection closed: the client left, or the body ended. */
  get closed(): boolean {
    return this.#isClosed;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#isClosed) this.#controller.abort(this.#request.signal.reason);
    }
    return this.#controller.signal;
  }

  /**
   * Aborts `signal` while the body stays open: a shutdown tells a handler still setting up to
   * stop, and the request is left for the answer that turns its client away.
   */
  abort(): void {
    this.#controller ??= new AbortController();
    this.#controller.abort();
  }

  /**
   * The response: its status and headers once {@link open} ran, its body the stream's bytes. A
   * client gone before the stream began gets an empty 204 that no one reads: the runtime still
   * awaits an answer, and an error here would be logged as the server's.
   */
  get response(): Response {
    if (!this.#response && this.#isClosed) this.#response = new Response(null, { status: 204 });
    if (!this.#response) throw new Error('WebSink.response read before open()');
    return this.#response;
  }

  onClose(listener: () => void): boolean {
    if (this.#isClosed) return false;
    this.#onClose = listener;
    return true;
  }

  /**
   * Returns false: the body is full until the runtime first reads it (see {@link WebSink}). A HEAD
   * is answered as `sse()` answers it, the headers of its GET and an empty body of no stated length,
   * and the sink closes as soon as the stream has begun: none of its bytes can reach that client.
   */
  open(headers: Readonly<Record<string, string>>, remove?: readonly string[]): boolean {
    if (this.#request.method === 'HEAD') {
      // The headers its GET gets (RFC 9110 9.3.2), an ETag of its own among them.
      this.#response = headResponse(withEntityTag(headers, remove));
      // Not from within open(): the stream is still setting up.
      queueMicrotask(this.#closed);
      return false;
    }
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#body = controller;
        },
        pull: (controller) => this.#pulled(controller),
        cancel: () => {
          this.#body = undefined;
          this.#closed();
        },
      },
      BYTE_LENGTH,
    );
    this.#stream = body;
    // The request aborted already (a turn-away answered anyway): nobody will read more than this.
    if (this.#isClosed) this.#endBody();
    this.#response = new Response(body, { status: 200, headers: withEntityTag(headers, remove) });
    // A stream that writes nothing (no heartbeat, a quiet source) still meets `stallTimeout` when
    // no one ever reads the body; the runtime's first read drains it.
    this.#full = true;
    return false;
  }

  /**
   * Copies `chunk`, which other connections share: a reader of the body may take over the buffer of
   * a chunk it read (transfer it to a worker), which must leave every other connection its bytes.
   */
  write(chunk: Uint8Array): boolean {
    return this.#enqueue(chunk, false);
  }

  /** Encodes `text` into bytes of this body's own. */
  writeText(text: string): boolean {
    return this.#enqueue(utf8Bytes(text), true);
  }

  /** Puts `chunk` in the body: as it is if `owned`, else a copy; every piece of a large one its own. */
  #enqueue(chunk: Uint8Array, owned: boolean): boolean {
    const body = this.#body;
    if (this.#isClosed || !body) return true;
    this.#wrote = true;
    // In even pieces of about the high-water mark: a runtime reads one piece, and stops reading when
    // its socket is full, so a large chunk waits here, counted, instead of in the runtime's buffer.
    // A queue's chunk is a little over 64 KiB: cut at 64 KiB, every one would leave a sliver.
    const pieces = Math.round(chunk.length / HIGH_WATER_MARK);
    if (pieces <= 1) body.enqueue(owned ? chunk : chunk.slice());
    else {
      const size = Math.ceil(chunk.length / pieces);
      // A runtime may write a piece to its socket as it is enqueued (Deno), find the client gone
      // and cancel the body right there: the pieces after it have nowhere to go.
      for (let at = 0; at < chunk.length && this.#body === body; at += size)
        body.enqueue(chunk.slice(at, at + size));
    }
    // A body the runtime has not begun to read is full: one no one will ever read (a `timeout()`
    // that answered in the handler's place, a middleware that replaced the Response) is then dropped
    // after `stallTimeout`, not once heartbeats filled 64 KiB of it, a day and more later.
    if (this.#reading && (body.desiredSize ?? 0) > 0) return true;
    this.#full = true;
    return false;
  }

  /** What the body stream holds; the runtime's own buffer is not counted. */
  pending(): number {
    return this.#body ? HIGH_WATER_MARK - (this.#body.desiredSize ?? HIGH_WATER_MARK) : 0;
  }

  onDrain(listener: () => void): void {
    this.#drain = listener;
  }

  end(): void {
    if (this.#isClosed) return;
    this.#ending = true;
    // Closed once the runtime has read every byte, so `signal` aborts when the stream has flushed.
    if (this.#body && this.#body.desiredSize === HIGH_WATER_MARK) this.#finishBody();
    else if (!this.#body) this.#closed();
  }

  destroy(): void {
    if (!this.#isClosed && this.#body) {
      this.#body.error(new SseStreamDroppedError());
      this.#body = undefined;
    }
    this.#closed();
  }

  /** The runtime wants bytes: a full stream has room again, an ending one may have flushed. */
  #pulled(controller: ReadableStreamDefaultController<Uint8Array>): void {
    if (this.#isClosed) return;
    if (!this.#reading) {
      // The stream pulls by itself too, when it starts and after an enqueue below the high-water
      // mark; only a pull of a locked stream comes from a reader.
      if (!this.#stream!.locked) return;
      this.#reading = true;
    }
    if (this.#ending) {
      if (controller.desiredSize === HIGH_WATER_MARK) this.#finishBody();
      return;
    }
    if (this.#full) {
      this.#full = false;
      this.#drain?.();
    }
    // The runtime waits for a first chunk, and some (Bun) hold the headers back until one comes.
    if (!this.#wrote) this.writeText(':\n');
  }

  #finishBody(): void {
    this.#endBody();
    this.#closed();
  }

  /** Closes the body, if still open: a runtime reads what it holds, then its end. */
  #endBody(): void {
    const body = this.#body;
    this.#body = undefined;
    body?.close();
  }

  readonly #closed = (): void => {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#request.signal.removeEventListener('abort', this.#closed);
    this.#drain = undefined;
    // The request aborted: a runtime that still reads the body must not wait for it for good.
    this.#endBody();
    const listener = this.#onClose;
    this.#onClose = undefined;
    try {
      // The stream hears of it first: a source that ends as the handler's signal aborts would
      // otherwise end it as `complete`, and what waited for the client would count as sent.
      listener?.();
    } finally {
      // With the request's reason, if it aborted: a handler that gave `request.signal` itself to a
      // fetch fails with that reason (on @hono/node-server a string), which must still read as its
      // client's close, not as an error of the route.
      this.#controller?.abort(this.#request.signal.reason);
    }
  };
}
