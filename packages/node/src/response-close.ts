import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse, ServerHttp2Stream } from 'node:http2';

/** A request of `node:http` or of the `node:http2` compatibility API. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;
/** A response of `node:http` or of the `node:http2` compatibility API. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

type Connection = NodeRequest['socket'];

/**
 * Calls `listener` once the client of `res` is gone: the response closed, now or before this call
 * (the client left while a framework's async steps ran), or the connection dropped while the
 * response still waits behind pipelined ones, which Node never closes. Returns what stops watching,
 * for a caller done with the response before that.
 *
 * For code that holds a request before its stream opens (an interceptor, a guard); the stream's own
 * sink watches the same way.
 */
export function watchResponseClose(req: NodeRequest, res: NodeResponse, listener: () => void): () => void {
  const socket = waitingOn(req, res);
  if (closedAlready(res) || socket?.destroyed) {
    listener();
    return stopNothing;
  }
  const head = headStream(req, res);
  const stop = () => {
    res.off('close', closed);
    head?.off('close', closed);
    if (socket) unwatchClose(socket, closed);
  };
  const closed = () => {
    stop();
    listener();
  };
  res.on('close', closed);
  head?.on('close', closed);
  if (socket) watchClose(socket, closed);
  return stop;
}

/**
 * The HTTP/2 stream of a HEAD: only its own 'close' tells of a client that reset it before the
 * headers went out, as Node's compatibility layer then emits no 'close' on the response.
 */
export function headStream(req: NodeRequest, res: NodeResponse): ServerHttp2Stream | undefined {
  if (req.httpVersionMajor < 2 || req.method !== 'HEAD') return undefined;
  return (res as Http2ServerResponse).stream ?? undefined;
}

function stopNothing(): void {}

/**
 * Settles once `res` has ended, or closed without an end: an answer a framework holds back (its own
 * async hooks) has gone out, so that no stream begins on it.
 */
export function responseDone(res: NodeResponse): Promise<void> {
  if (res.writableEnded || closedAlready(res)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('finish', done);
      res.off('close', done);
      resolve();
    };
    res.on('finish', done);
    res.on('close', done);
  });
}

/** Whether the response closed already: Node marks an HTTP/1 one destroyed, an HTTP/2 one's stream. */
export function closedAlready(res: NodeResponse): boolean {
  return (res as ServerResponse).destroyed || (res as Http2ServerResponse).stream?.destroyed === true;
}

/**
 * The connection of an HTTP/1 response that waits, without a socket, until the pipelined ones
 * before it finish (an event stream never does): only that connection tells when the client drops.
 */
export function waitingOn(req: NodeRequest, res: NodeResponse): Connection | undefined {
  return req.httpVersionMajor < 2 && !res.socket ? req.socket : undefined;
}

/** The responses waiting on a connection behind pipelined ones, and its one listener of each event. */
interface Waiting {
  readonly listeners: Set<() => void>;
  readonly closed: () => void;
  readonly ended: () => void;
}

/**
 * A client may pipeline any number of stream requests on one connection: one 'close' listener
 * tells every response waiting there, where a listener each would make Node warn of a listener
 * leak at the eleventh, a warning any client could raise in a server's log.
 */
const waitingResponses = new WeakMap<Connection, Waiting>();

export function watchClose(socket: Connection, listener: () => void): void {
  let waiting = waitingResponses.get(socket);
  if (!waiting) {
    const listeners = new Set<() => void>();
    const closed = () => {
      waitingResponses.delete(socket);
      socket.off('close', closed);
      socket.off('end', ended);
      for (const each of listeners) each();
    };
    // Its client half-closed, and Node ended it (as `NodeSink` tells for the response it serves):
    // none of the responses waiting there can reach the client any more.
    const ended = () => {
      if (socket.writableEnded) closed();
    };
    waiting = { listeners, closed, ended };
    waitingResponses.set(socket, waiting);
    socket.on('close', closed);
    socket.on('end', ended);
  }
  waiting.listeners.add(listener);
}

export function unwatchClose(socket: Connection, listener: () => void): void {
  const waiting = waitingResponses.get(socket);
  if (!waiting?.listeners.delete(listener) || waiting.listeners.size > 0) return;
  // The connection may serve more requests: it keeps no listener of ours.
  waitingResponses.delete(socket);
  socket.off('close', waiting.closed);
  socket.off('end', waiting.ended);
}
