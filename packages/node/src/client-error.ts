import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { NodeRequest, NodeResponse } from './response-close.js';

/** Each guarded HTTP/1 socket's latest event-stream response: what a client error there would cut into. */
const streams = new WeakMap<object, NodeResponse>();
const guarded = new WeakSet<object>();

/**
 * Makes a client error (bytes that are not HTTP pipelined after a request) on a socket whose
 * event stream is live drop the connection, as Node's own default does, ahead of the server's
 * `clientError` listeners: Fastify's writes a raw `HTTP/1.1 400` into the socket, in the middle of
 * the stream's chunked body. Other sockets are left to those listeners. A no-op on a server with
 * none, where Node's default already does this, and which a listener would replace.
 */
export function guardClientErrors(server: Server): void {
  if (guarded.has(server) || server.listenerCount('clientError') === 0) return;
  guarded.add(server);
  server.prependListener('clientError', (_error: Error, socket: Socket) => {
    const res = streams.get(socket) as ServerResponse | undefined;
    if (res?.headersSent && !res.writableEnded) socket.destroy();
  });
}

/** Notes `res` as the stream its request's socket carries, on a guarded server. */
export function trackStreamSocket(req: NodeRequest, res: NodeResponse): void {
  const socket = req.socket as (Socket & { server?: object }) | null;
  if (req.httpVersionMajor === 1 && socket?.server && guarded.has(socket.server)) streams.set(socket, res);
}
