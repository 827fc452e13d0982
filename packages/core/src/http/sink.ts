/**
 * What an {@link EventStream} needs from a transport: the one contract an adapter implements.
 * `@rxsse/node` implements it over `http.ServerResponse` and `http2.Http2ServerResponse`; implement
 * it yourself to serve events from any other runtime. A method that throws ends only its own
 * stream: with close reason `'error'` and the throw reported when the stream was running (the sink
 * is then only destroyed), else with the reason it was ending with and the throw reported.
 */
export interface Sink {
  /** True on HTTP/2, where connection-specific headers such as `Connection` are forbidden. */
  readonly http2: boolean;
  /**
   * Aborted once when the connection is closed: when the client goes away (the stream then stops
   * writing and cleans up), or once `end()` has flushed or `destroy()` has dropped it.
   */
  readonly signal: AbortSignal;
  /**
   * Send status 200 with these headers, at once, without any header named in `remove` (lower case)
   * that the framework may have set already. Called exactly once, before the first write. Return
   * false when the transport cannot take bytes yet (a Web body until the runtime first reads it): the
   * stream then waits for the drain listener, and `stallTimeout` runs from now, even on a stream that
   * writes nothing.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a sink written when open() returned nothing still implements it.
  open(headers: Readonly<Record<string, string>>, remove?: readonly string[]): boolean | void;
  /**
   * Write bytes. Return false when the transport is full: the stream then writes nothing more until
   * the drain listener is called. Any other value says it has room. `chunk` is shared with other
   * connections (an event that reaches many clients is encoded once): never change it, and copy it
   * before handing it to anything that may take its buffer over (a byte `ReadableStream`'s
   * `enqueue` transfers it, and a reader of any Web body may transfer a chunk it read), which would
   * leave every other connection an empty chunk.
   */
  write(chunk: Uint8Array): boolean;
  /**
   * Optional: write `text` as its UTF-8 bytes; the return value as for {@link write}. For a
   * transport that encodes text itself, into memory it frees once the bytes are out (Node's sockets
   * do): the stream then hands it each chunk that is its own as text, and allocates no buffer for
   * it (which cost a 100,000-event burst ~15 % of its time on Node), and still hands `write` the
   * bytes of a chunk other connections share (a fan-out's, encoded once). `text` is well-formed.
   */
  writeText?(text: string): boolean;
  /**
   * Optional: register the one listener to call when the connection closes, instead of listening
   * to `signal` (which a transport may then create only when someone reads it). Returns false, and
   * does not register, when the connection is already closed. Call it before `signal` aborts: a
   * source that ends on that abort must find its stream closed by the client already.
   */
  onClose?(listener: () => void): boolean;
  /**
   * Optional: the bytes written that the client has not taken yet (those the transport still
   * holds). Read only after a stream ended with its transport full: a client that took some since
   * the last look keeps its connection for another `stallTimeout`. Without it, a client must take
   * everything within one `stallTimeout`.
   */
  pending?(): number;
  /** Register the listener to call each time a full transport can take bytes again. */
  onDrain(listener: () => void): void;
  /** End the response cleanly after what was written (source completed, server shutdown). */
  end(): void;
  /** Drop the connection at once, discarding what is buffered (overflow, stall). */
  destroy(): void;
}
