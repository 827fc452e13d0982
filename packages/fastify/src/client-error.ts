import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Each HTTP/1 socket's latest event-stream response: what a client error on it would cut into. */
const streams = new WeakMap<Socket, ServerResponse>();
const guarded = new WeakSet<object>();

/**
 * Fastify answers a client error (garbage bytes pipelined after a request) by writing a raw
 * `HTTP/1.1 400` into the socket, which lands in the middle of a live event stream's chunked body.
 * Node's own default destroys a socket whose response has begun instead; this listener, ahead of
 * Fastify's, does the same for sockets carrying a live stream (a `client` close), and leaves every
 * other socket to the app's `clientErrorHandler`.
 */
export function guardClientErrors(server: Server): void {
  if (guarded.has(server)) return;
  guarded.add(server);
  server.prependListener('clientError', (_error: Error, socket: Socket) => {
    const res = streams.get(socket);
    if (res?.headersSent && !res.writableEnded) socket.destroy();
  });
}

/** Notes `res` as the stream its request's socket may carry, from before its first byte. */
export function trackStreamSocket(req: IncomingMessage, res: ServerResponse): void {
  if (req.httpVersionMajor === 1 && req.socket) streams.set(req.socket, res);
}
