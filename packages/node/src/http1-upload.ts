import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** How long an upload may go on once its response went out, before its connection is cut. */
const LINGER_MS = 5_000;

/**
 * Closes an HTTP/1 connection whose response went out while its request body still arrives. Node
 * would read the rest to serve the next request on it, so an upload no one reads would hold the
 * connection, and a server's `close()`, for as long as it lasts. Cut at once with body bytes
 * unread, the connection is reset instead of closed: the kernel drops what it still holds for the
 * client, the end of the response. So the connection is half-closed (its client reads the end after
 * the last byte), the body read to its end, and the connection closed then, or after
 * {@link LINGER_MS}, or at a shutdown's deadline if that comes first.
 */
export function closeWhenUploaded(req: IncomingMessage, socket: Socket): void {
  socket.end();
  // Node closes the connection of a response that ends it (`Connection: close`, HTTP/1.0) once
  // it finished, which would reset it as well: this one is closed here.
  socket.destroySoon = () => {};
  const close = () => socket.destroy();
  const timer = setTimeout(close, LINGER_MS);
  // The connection keeps the process alive while it lasts; the timer need not.
  timer.unref();
  req.once('end', close);
  socket.once('close', () => {
    clearTimeout(timer);
    req.off('end', close);
    // However the connection ended, a body cut short aborts its request, so that what still reads
    // it (a multipart parser) hears of it: Node tells no request whose response has finished. One
    // that came whole is left to its reader.
    if (!req.complete) req.destroy();
  });
  // Node drops a body no one touched once the response finished; one the app paused, it leaves.
  req.resume();
}
