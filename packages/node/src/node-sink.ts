import { OutgoingMessage, type ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Sink } from '@rxsse/core';
import { HeldChunks } from './held-chunks.js';
import { closeWhenUploaded } from './http1-upload.js';
import { destroyOnReset } from './http2-reset.js';
import { closeWhenAnswered } from './http2-upload.js';
import {
  closedAlready,
  headStream,
  type NodeRequest,
  type NodeResponse,
  unwatchClose,
  waitingOn,
  watchClose,
} from './response-close.js';
import { canWriteChunks, writeChunk } from './socket-chunk.js';

/**
 * The {@link Sink} over a Node response. It lives in its own package because Express, Fastify and
 * Koa all hand out the same Node objects underneath: backpressure and disconnect handling are
 * written once, here, and every adapter behaves the same.
 */
export class NodeSink implements Sink {
  readonly http2: boolean;
  // Created on first read: an AbortSignal is an EventTarget with two Maps and a hidden class of
  // its own, most of a kilobyte per connection that nobody may ever look at.
  #controller: AbortController | undefined;
  #isClosed = false;
  #onClose: (() => void) | undefined;
  readonly #res: NodeResponse;
  /** The HTTP/1 socket, when writes reach it through Node's own `write` (see {@link write}). */
  readonly #socket: ServerResponse['socket'] | undefined;
  /** The same socket, once the headers are out, when chunks go to it directly (see `socket-chunk.ts`). */
  #chunkSocket: NonNullable<ServerResponse['socket']> | undefined;
  #drain: (() => void) | undefined;
  /** On HTTP/2, what was written while the response was full (see `held-chunks.ts`). */
  #held: HeldChunks | undefined;
  /**
   * The HTTP/1 connection, watched for its close while this response waits behind pipelined ones
   * (see below), and for its client's half-close once the response was full (see `onDrain`).
   */
  #connection: NodeRequest['socket'] | undefined;
  #halfClosed: (() => void) | undefined;

  constructor(req: NodeRequest, res: NodeResponse) {
    this.#res = res;
    this.http2 = req.httpVersionMajor >= 2;
    // A middleware that replaces `write` (compression) buffers on its own: then only its return
    // value tells whether there is room, and the socket is left alone.
    if (!this.http2 && res.write === OutgoingMessage.prototype.write) {
      this.#socket = (res as ServerResponse).socket;
    }
    // The response's 'close' (not the request's) means the client is gone, so POST bodies that
    // were fully read do not end the stream. It also fires after a normal end, when it is harmless.
    // 'close' is emitted once: `on` spares the wrapper `once` would allocate.
    res.on('close', this.#closed);
    if (this.http2) {
      const stream = (res as Http2ServerResponse).stream;
      if (stream) destroyOnReset(stream);
      headStream(req, res)?.on('close', this.#closed);
    }
    // A response that closed before the sink existed (the client left while the framework's own
    // async steps ran: an auth middleware, Nest's guards and pipes) emits no 'close' any more.
    if (closedAlready(res)) this.#isClosed = true;
    else if (!this.http2) {
      const connection = req.socket;
      // Gone, or ended by Node at its client's half-close (see `onDrain`), while the framework's
      // own async steps ran.
      if (connection.destroyed || connection.writableEnded) this.#isClosed = true;
      else {
        this.#connection = connection;
        // A pipelined request's response waits behind the others, and only its connection tells
        // when the client drops (see `waitingOn`). Not `watchResponseClose`: its closures, per stream.
        if (waitingOn(req, res)) watchClose(connection, this.#closed);
      }
    }
  }

  /** Whether the connection closed: the client left, or the response ended. */
  get closed(): boolean {
    return this.#isClosed;
  }

  /** Whether the response ended: before a stream opened it, another writer answered it. */
  get answered(): boolean {
    return this.#res.writableEnded;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#isClosed) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  /**
   * Aborts `signal` while the connection stays open: a shutdown tells a handler still setting up
   * to stop, and the response is left for the answer that turns its client away.
   */
  abort(): void {
    this.#controller ??= new AbortController();
    this.#controller.abort();
  }

  onClose(listener: () => void): boolean {
    if (this.#isClosed) return false;
    this.#onClose = listener;
    return true;
  }

  open(headers: Readonly<Record<string, string>>, remove: readonly string[] = []): void {
    const res = this.#res as ServerResponse;
    // `null` overrides also drop what the framework set before (Express's X-Powered-By).
    for (const name of remove) res.removeHeader(name);
    // The body's framing is Node's: a length or an encoding a middleware set for a body of its own
    // (Koa's `ctx.body` before `next()`) would frame the stream as that body. Only if set: Node
    // takes a removal as "add none of your own" too.
    for (const name of FRAMING) if (res.hasHeader(name)) res.removeHeader(name);
    // A removal a middleware made tells Node to frame no body either (Koa's `ctx.body = null`
    // removes Transfer-Encoding): the stream would go out unframed and end its connection.
    if (!this.http2) (res as ServerResponse & { _removedTE?: boolean })._removedTE = false;
    // The connection is Node's to frame, as for any response: `keep-alive` with its hint, or `close`
    // (the client's, a middleware's, the last request `maxRequestsPerSocket` allows). A route's own
    // `Connection` it would take at its word, keeping alive even a connection whose unframed body
    // (HTTP/1.0) only the close can end, or that takes no more requests (Node answers them 503).
    if (headers.connection !== undefined && !keepsAlive(res)) headers = { ...headers, connection: 'close' };
    // On HTTP/1 the reason phrase goes with it: Node keeps one a middleware set for a status of its
    // own (Koa's `ctx.status = 404` sets 'Not Found'), which would read `200 Not Found`. HTTP/2 has
    // none, and Node warns of one given there.
    if (this.http2) res.writeHead(200, headers);
    else res.writeHead(200, 'OK', headers);
    res.flushHeaders?.();
    // Events are small and latency matters: do not let Nagle hold them back.
    res.socket?.setNoDelay?.(true);
    if (this.#socket && canWriteChunks(res)) this.#chunkSocket = this.#socket;
  }

  write(chunk: Uint8Array): boolean {
    return this.#send(chunk);
  }

  /** Text goes to Node as it is: Node encodes it into memory it frees once the bytes are out. */
  writeText(text: string): boolean {
    return this.#send(text);
  }

  #send(chunk: Uint8Array | string): boolean {
    // Ended by the route itself (a hook of its own called `res.end()`): a write now would follow the
    // body's end on the wire, or make Node emit ERR_STREAM_WRITE_AFTER_END, which nobody hears. The
    // response's 'close' that follows ends the stream.
    if (this.#res.writableEnded) return false;
    if (this.#chunkSocket) {
      const room = writeChunk(this.#res as ServerResponse, this.#chunkSocket, chunk);
      if (room !== undefined) return room;
    }
    if (this.http2) return this.#writeHttp2(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    if (!this.#socket) return writeThrough(this.#res as ServerResponse, chunk);
    if ((this.#res as ServerResponse).write(chunk)) return true;
    // Node corks a response's socket until the next tick, so a write that filled the buffer has
    // reached no one yet and says "full" however fast the client reads. Send it now: the kernel
    // takes what it can, the client reads while this tick goes on, and only what the kernel
    // refused counts as full. (A response corks at most once per tick, and nobody else corks an
    // event stream's socket.)
    const socket = this.#socket;
    const res = this.#res as ServerResponse;
    if (socket.writableCorked) {
      if (res.writableLength > socket.writableLength) {
        // Node 24 corks the response instead, which holds the tick's chunks itself until it uncorks,
        // and then emits 'drain' at once if the socket took them all. This write's return value
        // tells the caller so; the listener is for a drain that follows a write that said full.
        const drain = this.#drain;
        if (drain) res.off('drain', drain);
        res.uncork();
        if (drain) res.on('drain', drain);
      } else {
        socket.uncork();
      }
      // What the response still holds counts too: once Node ended the connection (its client
      // half-closed), it keeps there, for good, all that is written.
      if (res.writableLength < socket.writableHighWaterMark) return true;
    }
    // Ended so while the stream had room (see `onDrain`): the 'end' that tells the stream came
    // already, and nothing written now reaches the client.
    if (socket.writableEnded) process.nextTick(() => this.#halfClosed?.());
    return false;
  }

  #writeHttp2(chunk: Uint8Array): boolean {
    const res = this.#res as Http2ServerResponse;
    // Behind a write in flight, a chunk waits here: Node would join it to the others waiting there.
    if ((this.#held === undefined || this.#held.bytes === 0) && !res.stream?.writableNeedDrain) {
      return res.write(chunk);
    }
    this.#held ??= new HeldChunks(res);
    this.#held.add(chunk);
    return false;
  }

  /**
   * What the response holds that the client has not taken. On HTTP/2 Node counts a write as a
   * whole until the client took its last byte, so progress shows a chunk at a time there.
   */
  pending(): number {
    const res = this.#res;
    if (this.http2) return res.writableLength + (this.#held?.bytes ?? 0);
    // A socket hands everything it buffered to the kernel as one write, and counts all of it until
    // the kernel took the last byte: only its handle tells how much of that write is left.
    const socket = this.#socket as unknown as Partial<InFlight> | undefined;
    const writing = socket?._writableState?.writelen;
    const left = socket?._handle?.writeQueueSize;
    if (typeof writing !== 'number' || typeof left !== 'number') return res.writableLength;
    return res.writableLength - writing + left;
  }

  onDrain(listener: () => void): void {
    if (this.#isClosed) return;
    this.#drain = listener;
    this.#res.on('drain', listener);
    // A chunk written to the socket directly sets no flag on the response, so only the socket
    // tells when it drained. Both may fire for one drain: a second call finds nothing to do.
    this.#chunkSocket?.on('drain', listener);
    // The client half-closed. Unless the server allows half-open connections, Node ends the
    // connection then, after what it holds: nothing written later reaches the client. With room
    // left, what Node holds still goes out to a client that reads on, and the write that fills the
    // response tells the stream (see `#send`). Full, it closes only once the client took what Node
    // holds, which a client that stopped reading never does: the stream would wait until its
    // overflow or stall, so the client is gone now. Only a stream that was full once listens: an
    // idle connection keeps no closure.
    const connection = this.#connection;
    if (connection && (this.#res as ServerResponse).socket === connection) {
      const res = this.#res;
      this.#halfClosed = () => {
        // Full as `#send` tells it: Node 24 may leave the socket's `writableNeedDrain` unset.
        const full = connection.writableLength >= connection.writableHighWaterMark || res.writableNeedDrain;
        if (connection.writableEnded && full) this.#closed();
      };
      connection.on('end', this.#halfClosed);
    }
  }

  end(): void {
    const res = this.#res as ServerResponse;
    // Node reads the rest of a request body still arriving, to serve the next request on the
    // connection: an upload no one reads would hold it, and `server.close()`, for as long as it
    // lasts. Checked again once the response finished: a request without a body is complete only
    // after its 'request' handlers returned, and a HEAD is answered within them.
    // On HTTP/2 the stream is reset instead, once the response went out (`http2-upload.ts`).
    const { req, socket } = res;
    if (this.http2) {
      const stream = (this.#res as Http2ServerResponse).stream;
      if (stream && !stream.destroyed && !stream.state.remoteClose) closeWhenAnswered(stream);
    } else if (req?.complete === false) {
      // Ahead of Node's own: it closes the connection of a response that ends it (`Connection:
      // close`, HTTP/1.0) once it finished, with body bytes unread, which resets it.
      res.prependOnceListener('finish', () => closeWhenUploaded(req, res));
    }
    const held = this.#held;
    if (held !== undefined && held.bytes > 0) held.end();
    // A socket Node ended (its client half-closed) takes no more writes, the empty one included.
    else if (!this.http2 && socket?.writable && this.pending() > 0) this.#endOnceFlushed(res, socket);
    else res.end();
  }

  /**
   * Ends `res` once the bytes written so far have left Node. Node takes the connection of an ended
   * response for idle even while it still flushes, and `server.close()` drops idle connections: the
   * rest would be lost. An empty write's callback on the socket comes after every write before it;
   * the response's own would do, but a middleware's `write` (compression) may drop it.
   */
  #endOnceFlushed(res: ServerResponse, socket: NonNullable<ServerResponse['socket']>): void {
    // Node 24 holds the tick's writes in the response: hand them to the socket first.
    if (res.writableLength > socket.writableLength) res.uncork();
    if (res.writableLength > socket.writableLength) {
      res.end();
      return;
    }
    // A client that half-closes meanwhile has Node end the connection (after what it holds): the
    // response ends first, so that its last chunk goes out ahead of that end.
    const halfClosed = () => res.end();
    socket.prependOnceListener('end', halfClosed);
    socket.write(NOTHING, () => {
      socket.off('end', halfClosed);
      if (!res.destroyed && !res.writableEnded) res.end();
    });
  }

  destroy(): void {
    this.#held?.clear();
    // Node resets a destroyed HTTP/2 stream with NO_ERROR, which clients (node:http2, undici's
    // fetch) read as the end of a complete response, as they do CANCEL: INTERNAL_ERROR tells them
    // the rest was dropped, as a cut connection does on HTTP/1.
    if (this.http2) (this.#res as Http2ServerResponse).stream?.close(NGHTTP2_INTERNAL_ERROR);
    const res = this.#res;
    res.destroy();
    // A middleware that finishes its work when the response ends hears of it only through `end()`
    // (express-session saves the session there), as after any route whose client left. Node writes
    // nothing more to a destroyed response. Only a stream's: a handler still setting up may yet
    // change what such a middleware would save, and an ended response reads as another's answer.
    if (res.headersSent && !res.writableEnded) res.end();
  }

  readonly #closed = (): void => {
    if (this.#isClosed) return;
    this.#isClosed = true;
    const connection = this.#connection;
    if (connection) {
      // The connection may serve the next request of a kept-alive connection.
      if (this.#halfClosed) connection.off('end', this.#halfClosed);
      unwatchClose(connection, this.#closed);
      this.#connection = undefined;
    }
    if (this.#drain) {
      this.#res.off('drain', this.#drain);
      // The socket may serve the next request of a kept-alive connection.
      this.#chunkSocket?.off('drain', this.#drain);
    }
    this.#drain = undefined;
    this.#chunkSocket = undefined;
    this.#held?.clear();
    const listener = this.#onClose;
    this.#onClose = undefined;
    try {
      // The stream hears of it first: a source that ends as the handler's signal aborts would
      // otherwise end it as `complete`, and what waited for the client would count as sent.
      listener?.();
    } finally {
      this.#controller?.abort();
    }
  };
}

const NOTHING = new Uint8Array(0);

/** A body's length and encodings, which a middleware may have set for a body of its own. */
const FRAMING = ['content-length', 'content-encoding', 'transfer-encoding'];

/** RFC 9113's INTERNAL_ERROR, without loading `node:http2` into an HTTP/1 server for one number. */
const NGHTTP2_INTERNAL_ERROR = 0x2;

/** Node's own counts of a socket's write in progress, where it has them. */
interface InFlight {
  _writableState: { writelen?: number };
  _handle: { writeQueueSize?: number } | null;
}

/**
 * A write through the `write` of a middleware that replaced it. `compression()` compresses a stream
 * whose `Cache-Control` lacks `no-transform` (a route's override) and holds the result until its
 * buffer fills: events, heartbeats included, would wait there for minutes. Its `flush()` sends them.
 */
function writeThrough(res: ServerResponse & { flush?: () => void }, chunk: Uint8Array | string): boolean {
  const room = res.write(chunk);
  if (typeof res.flush === 'function') res.flush();
  return room;
}

/**
 * Whether Node would keep the connection open after `res`: the client asked so, the body is framed,
 * and the connection takes more requests.
 */
function keepsAlive(res: ServerResponse): boolean {
  const node = res as { useChunkedEncodingByDefault?: boolean; maxRequestsOnConnectionReached?: boolean };
  return (
    res.shouldKeepAlive && node.useChunkedEncodingByDefault !== false && !node.maxRequestsOnConnectionReached
  );
}
