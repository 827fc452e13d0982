import { Server as HttpServer, type ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';
import { type TLSSocket, Server as TlsServer } from 'node:tls';

/** The open connections of each server given to {@link trackConnections}. */
const tracked = new WeakMap<object, Set<Socket>>();

/**
 * Keeps the HTTP/1 connections of `server` (those of an HTTP/2 server over TLS with `allowHTTP1`
 * too; its sessions are `trackHttp2Sessions`'s), so that its shutdown can drop those on which no
 * request ever came: Node's `close()` waits for them as long as the client keeps them (a browser's
 * preconnect, a client's spare connection), since its idle and header timeouts apply only once a
 * request began, and not at all on an HTTP/2 server. Over TLS, a connection is kept from its
 * accept, as its raw socket until its handshake ends: Node times out a handshake only after 120 s.
 * Its `closeIdleConnections()` then spares a connection that still flushes an answer that ended,
 * and closes it once flushed if the server is closing by then. Call it before the server listens.
 */
export function trackConnections(server: Server): void {
  if (tracked.has(server) || !(server instanceof HttpServer || server instanceof TlsServer)) return;
  const sockets = new Set<Socket>();
  tracked.set(server, sockets);
  // One listener for all the server's sockets: a connection costs a set entry, no closure.
  const forget = function (this: Socket) {
    sockets.delete(this);
  };
  const keep = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', forget);
  };
  server.on('connection', keep);
  spareFlushingAnswers(server, sockets);
  if (!(server instanceof TlsServer)) return;
  // Requests come on the TLS socket, which takes its raw socket's place.
  server.on('secureConnection', (socket: TLSSocket) => {
    const raw = (socket as TLSSocket & { _parent?: Socket | null })._parent;
    if (raw) {
      sockets.delete(raw);
      raw.off('close', forget);
    }
    // One that chose HTTP/2 (`allowHTTP1`) is a session, closed with the others at the shutdown.
    if (socket.alpnProtocol !== 'h2') keep(socket);
  });
}

/**
 * Makes `server.closeIdleConnections()` spare a connection whose response ended but still flushes:
 * Node takes it for idle, and its `close()` calls that method first, which would cut the rest of
 * the answer. A runtime serving a fetch handler (`@rxsse/web`) ends the response as soon as it has
 * written the body's last chunk, to a client still reading it. A spared connection is closed once
 * its answer has flushed, if the server is closing by then: Node would keep it alive.
 */
function spareFlushingAnswers(server: Server, sockets: Set<Socket>): void {
  const http = server as HttpServer;
  const closeIdle = http.closeIdleConnections;
  if (typeof closeIdle !== 'function') return;
  const watched = new WeakSet<ServerResponse>();
  // Checked once the answer's socket was left idle, and not before: Node 20's close() calls this
  // method while it still listens.
  const closeIfClosing = () => setImmediate(() => !http.listening && http.closeIdleConnections());
  http.closeIdleConnections = function closeIdleConnections(this: HttpServer) {
    const spared: ServerResponse[] = [];
    for (const socket of sockets) {
      const answer = flushingAnswer(socket);
      if (!answer) continue;
      spared.push(answer);
      if (watched.has(answer)) continue;
      watched.add(answer);
      answer.once('finish', closeIfClosing);
    }
    // Node's own check reads the response's `finished`: set back for the call's length only.
    for (const answer of spared) answer.finished = false;
    try {
      closeIdle.call(this);
    } finally {
      for (const answer of spared) answer.finished = true;
    }
  };
}

/**
 * Whether `answer` is an event stream, by the head it stored: a runtime's `writeHead()` leaves no
 * header that `getHeader()` reads.
 */
function isEventStream(answer: ServerResponse): boolean {
  const head = (answer as ServerResponse & { _header?: string | null })._header;
  return typeof head === 'string' && /\r\ncontent-type:[ \t]*text\/event-stream/i.test(head);
}

/** The response `socket` carries now, as Node reads it (one pipelined behind it waits), if any. */
export function responseOn(socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/** The response on `socket` that ended and has not flushed yet, if any. */
function flushingAnswer(socket: Socket): ServerResponse | undefined {
  const answer = responseOn(socket);
  return answer?.writableEnded && !answer.writableFinished ? answer : undefined;
}

/**
 * Drops, `delay` ms from now, the connections of `server` unused then, unless the server has closed
 * before: those that carry no response, a request head or a TLS handshake still under way included,
 * and those still flushing an answer that ended. Over TLS, a connection accepted before the close
 * may end its handshake only after the unused ones were dropped, and Node's `close()` waits for it
 * as long as its client sends nothing: no timeout of Node's applies until a request begins. Nor
 * once the server closes: Node stops checking its `headersTimeout` then, and a client that sent
 * part of a head and then nothing would hold the close for good; one that never ends its handshake,
 * for Node's 120 s.
 */
export function closeUnusedConnectionsAfter(server: object, delay: number): void {
  unlessClosedBy(server, delay, () => closeUnusedConnections(server, true));
}

/**
 * Cuts, `delay` ms from now, the connections of `server` that still carry an event stream, unless
 * the server has closed before. A fetch handler's runtime may hold a stream's last bytes past its
 * end (it read them from the body, and waits for a client that reads nothing to make room), where
 * no group sees them: the stream counts as flushed, and `close()` would wait for that client.
 */
export function cutEventStreamsAfter(server: object, delay: number): void {
  unlessClosedBy(server, delay, () => {
    for (const socket of tracked.get(server) ?? []) {
      const answer = responseOn(socket);
      if (answer && isEventStream(answer)) socket.destroy();
    }
  });
}

/** Runs `action` `delay` ms from now, unless the tracked `server` has closed before. */
function unlessClosedBy(server: object, delay: number, action: () => void): void {
  if (!tracked.has(server)) return;
  const emitter = server as Server;
  const cancel = () => clearTimeout(timer);
  const timer = setTimeout(() => {
    emitter.off('close', cancel);
    action();
  }, delay);
  // Never what keeps the process alive: a server still closing does, by its connections.
  timer.unref();
  emitter.once('close', cancel);
}

/**
 * Drops the connections of `server` that carry no response and have not sent a byte, or, with
 * `heads`, any that still speaks HTTP (its request head still arriving, or idle), is still in its
 * TLS handshake, or still flushes an answer that ended. Those that sent
 * bytes are otherwise Node's: `closeIdleConnections()` takes the idle ones, and one whose request
 * is under way (its handshake, its head, or its answer) is left to finish. One handed to an
 * `upgrade` listener (a WebSocket) is its listener's.
 */
export function closeUnusedConnections(server: object, heads = false): void {
  const sockets = tracked.get(server);
  if (!sockets) return;
  const tls = server instanceof TlsServer;
  for (const socket of sockets) {
    const { parser, encrypted } = socket as TLSSocket & { parser?: unknown };
    if (responseOn(socket)) {
      // Cut at the deadline: one that ended and has not flushed, as Node's close() would at once.
      if (heads && flushingAnswer(socket)) socket.destroy();
      continue;
    }
    // Over TLS, the raw socket stands for a connection whose handshake has not ended.
    const handshaking = tls && !encrypted;
    if (heads ? parser || handshaking : socket.bytesRead === 0 && !handshaking) socket.destroy();
  }
}
