import { Server as HttpServer } from 'node:http';
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
 * Call it before the server listens.
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
 * Drops, `delay` ms from now, the connections of `server` unused then, unless the server has
 * closed before: those that carry no response, a request head or a TLS handshake still under way
 * included. Over TLS, a connection accepted before the close may end its handshake only after the
 * unused ones were dropped, and Node's `close()` waits for it as long as its client sends nothing:
 * no timeout of Node's applies until a request begins. Nor once the server closes: Node stops
 * checking its `headersTimeout` then, and a client that sent part of a head and then nothing would
 * hold the close for good; one that never ends its handshake, for Node's 120 s.
 */
export function closeUnusedConnectionsAfter(server: object, delay: number): void {
  if (!tracked.has(server)) return;
  const emitter = server as Server;
  const cancel = () => clearTimeout(timer);
  const timer = setTimeout(() => {
    emitter.off('close', cancel);
    closeUnusedConnections(server, true);
  }, delay);
  // Never what keeps the process alive: a server still closing does, by its connections.
  timer.unref();
  emitter.once('close', cancel);
}

/**
 * Drops the connections of `server` that carry no response and have not sent a byte, or, with
 * `heads`, any that still speaks HTTP (its request head still arriving, or idle) or is still in its
 * TLS handshake. Those that sent bytes are otherwise Node's: `closeIdleConnections()` takes the idle
 * ones, and one whose request is under way (its handshake, its head, or its answer) is left to
 * finish. One handed to an `upgrade` listener (a WebSocket) is its listener's.
 */
export function closeUnusedConnections(server: object, heads = false): void {
  const sockets = tracked.get(server);
  if (!sockets) return;
  const tls = server instanceof TlsServer;
  for (const socket of sockets) {
    const { _httpMessage, parser, encrypted } = socket as TLSSocket & {
      _httpMessage?: unknown;
      parser?: unknown;
    };
    if (_httpMessage) continue;
    // Over TLS, the raw socket stands for a connection whose handshake has not ended.
    const handshaking = tls && !encrypted;
    if (heads ? parser || handshaking : socket.bytesRead === 0 && !handshaking) socket.destroy();
  }
}
