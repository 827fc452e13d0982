import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { responseOn } from './connections.js';
import type { NodeRequest, NodeResponse } from './response-close.js';

/** The event-stream responses of guarded HTTP/1 servers. */
const streams = new WeakSet<object>();
const guarded = new WeakSet<object>();

/**
 * Makes a client error (bytes that are not HTTP pipelined after a request) on a socket whose
 * event stream is live drop the connection, as Node's own default does, ahead of the server's
 * `clientError` listeners added with `on()`: Fastify's, and the one Node's docs show, write a raw
 * `HTTP/1.1 400` into the socket, in the middle of the stream's chunked body. One added with
 * `prependListener()` runs before it. Other sockets are left to those
 * listeners. On a server with none yet, where Node's default already does this and a listener
 * would replace it, it waits for the first one the app adds. `closeStreamsOnServerClose` calls it.
 */
export function guardClientErrors(server: Server): void {
  if (guarded.has(server)) return;
  guarded.add(server);
  if (server.listenerCount('clientError') > 0) {
    server.prependListener('clientError', dropLiveStream);
    return;
  }
  // Told before the app's listener is added: ours goes first.
  const added = (event: string | symbol) => {
    if (event !== 'clientError') return;
    server.off('newListener', added);
    server.prependListener('clientError', dropLiveStream);
  };
  server.on('newListener', added);
}

function dropLiveStream(_error: Error, socket: Socket): void {
  // The response the socket carries now, as Node's default reads it: a stream request pipelined
  // behind the live one (its handler still running, or its response waiting) writes nothing there.
  const res = responseOn(socket);
  if (res && streams.has(res) && res.headersSent && !res.writableEnded) socket.destroy();
}

/** Notes `res` as an event stream, on a guarded server. */
export function trackStreamResponse(req: NodeRequest, res: NodeResponse): void {
  const socket = req.socket as (Socket & { server?: object }) | null;
  if (req.httpVersionMajor === 1 && socket?.server && guarded.has(socket.server)) streams.add(res);
}
