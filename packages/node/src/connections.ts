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
 * request began, and not at all on an HTTP/2 server. Call it before the server listens.
 */
export function trackConnections(server: Server): void {
  if (tracked.has(server) || !(server instanceof HttpServer || server instanceof TlsServer)) return;
  const sockets = new Set<Socket>();
  tracked.set(server, sockets);
  // One listener for all the server's sockets: a connection costs a set entry, no closure.
  const forget = function (this: Socket) {
    sockets.delete(this);
  };
  // Over TLS, requests come on the TLS socket; a handshake left unfinished is Node's to time out.
  server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (socket: Socket) => {
    // One that chose HTTP/2 (`allowHTTP1`) is a session, closed with the others at the shutdown.
    if ((socket as TLSSocket).alpnProtocol === 'h2') return;
    sockets.add(socket);
    socket.on('close', forget);
  });
}

/**
 * Drops, `delay` ms from now, the connections of `server` unused then, unless the server has
 * closed before. Over TLS, a connection accepted before the close may end its handshake only after
 * the unused ones were dropped, and Node's `close()` waits for it as long as its client sends
 * nothing: no timeout of Node's applies until a request begins.
 */
export function closeUnusedConnectionsAfter(server: object, delay: number): void {
  if (!tracked.has(server)) return;
  const emitter = server as Server;
  const cancel = () => clearTimeout(timer);
  const timer = setTimeout(() => {
    emitter.off('close', cancel);
    closeUnusedConnections(server);
  }, delay);
  // Never what keeps the process alive: a server still closing does, by its connections.
  timer.unref();
  emitter.once('close', cancel);
}

/**
 * Drops the connections of `server` that have not sent a byte and carry no response. Those that
 * did are Node's: `closeIdleConnections()` takes the idle ones, and one whose request is under way
 * (its headers, or its answer) is left to finish.
 */
export function closeUnusedConnections(server: object): void {
  const sockets = tracked.get(server);
  if (!sockets) return;
  for (const socket of sockets) {
    if (socket.bytesRead === 0 && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
    }
  }
}
