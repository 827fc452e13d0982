import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How long an upload may go on once its response went out, before its connection is cut. */
const LINGER_MS = 5_000;

/**
 * Closes an HTTP/1 connection whose response went out while its request body still arrives; call
 * it as the response finishes, ahead of Node's own work then. Node would read the rest to serve the
 * next request on it, so an upload no one reads would hold the connection, and a server's
 * `close()`, for as long as it lasts. Cut at once with body bytes unread, the connection is reset
 * instead of closed: the kernel drops what it still holds for the client, the end of the response.
 * So the connection is half-closed (its client reads the end after the last byte), the body read to
 * its end, and the connection closed then, or after {@link LINGER_MS}, or at a shutdown's deadline
 * if that comes first.
 */
export function closeWhenUploaded(req: IncomingMessage, res: ServerResponse): void {
  // Read now: a response that waited behind a pipelined one had no connection when it ended.
  const socket = res.socket;
  if (req.complete || !socket) return;
  // Node closes the connection of a response that ends it (`Connection: close`, HTTP/1.0) once it
  // finished, which would reset it as well: held until the body is known.
  let closeAsked = false;
  socket.destroySoon = () => {
    closeAsked = true;
  };
  // Body bytes that came with the request (in its last packet) are parsed only after a stream that
  // ended at once finished: a body whole by then leaves its connection to Node, kept alive.
  setImmediate(() => {
    if (req.complete) {
      delete (socket as Partial<Socket>).destroySoon;
      if (closeAsked) socket.destroySoon();
    } else if (socket.destroyed) abortUnfinished(req);
    else closeUnfinished(req, socket);
  });
}

function closeUnfinished(req: IncomingMessage, socket: Socket): void {
  socket.end();
  // Node gives a connection whose response finished its keepAliveTimeout to send the next request:
  // a short one would cut this one, and the end of the response, before the upload's own time.
  socket.setTimeout(0);
  const close = () => socket.destroy();
  const timer = setTimeout(close, LINGER_MS);
  // The connection keeps the process alive while it lasts; the timer need not.
  timer.unref();
  req.once('end', close);
  socket.once('close', () => {
    clearTimeout(timer);
    req.off('end', close);
    abortUnfinished(req);
  });
  // Node drops a body no one touched once the response finished; one the app paused, it leaves.
  req.resume();
}

/**
 * However the connection ended, a body cut short aborts its request, so that what still reads it
 * (a multipart parser) hears of it: Node tells no request whose response has finished. One that
 * came whole is left to its reader.
 */
function abortUnfinished(req: IncomingMessage): void {
  if (!req.complete) req.destroy();
}
