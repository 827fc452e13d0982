import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How long an upload may go on once its response went out, before its connection is half-closed. */
const LINGER_MS = 5_000;

/**
 * Keeps the end of a response on an HTTP/1 connection whose request body still arrives, and bounds
 * how long that upload holds it; call it as the response finishes, ahead of Node's own work then.
 * Closed with body bytes unread, a connection is reset: the kernel drops what it still holds for a
 * slow client, the end of the response. So the connection stays as Node leaves it (kept alive, or
 * closed once the body has come) while Node reads the body and drops it. An upload still going on
 * {@link LINGER_MS} later is half-closed (its client reads the end of the response, then the FIN),
 * read on, and its connection closed when it ends, or {@link LINGER_MS} after that, or at a
 * shutdown's deadline if that comes first.
 */
export function closeWhenUploaded(req: IncomingMessage, res: ServerResponse): void {
  // Read now: a response that waited behind a pipelined one had no connection when it ended.
  const socket = res.socket;
  if (req.complete || !socket) return;
  // Node closes the connection of a response that ends it (`Connection: close`, HTTP/1.0) once it
  // finished: held until the body has come.
  let closeAsked = false;
  socket.destroySoon = () => {
    closeAsked = true;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stopWatching = () => {
    clearTimeout(timer);
    req.off('end', uploaded);
    req.off('end', cut);
    req.off('timeout', keep);
    socket.off('close', closed);
  };
  const uploaded = () => {
    stopWatching();
    delete (socket as Partial<Socket>).destroySoon;
    if (closeAsked) socket.destroySoon();
  };
  const closed = () => {
    stopWatching();
    abortUnfinished(req);
  };
  const cut = () => socket.destroy();
  const halfClose = () => {
    socket.end();
    req.off('end', uploaded);
    req.once('end', cut);
    timer = unrefTimer(cut);
  };
  timer = unrefTimer(halfClose);
  req.once('end', uploaded);
  // Node's keep-alive timeout, armed as the response finished, would cut the connection with body
  // bytes unread while the upload pauses: it leaves alone one whose request listens for it.
  req.on('timeout', keep);
  socket.once('close', closed);
  // Node drops a body no one touched once the response finished; one the app paused, it leaves.
  req.resume();
}

/** A {@link LINGER_MS} timer that does not keep the process alive: the connection does, while it lasts. */
function unrefTimer(callback: () => void): ReturnType<typeof setTimeout> {
  const timer = setTimeout(callback, LINGER_MS);
  timer.unref();
  return timer;
}

function keep(): void {}

/**
 * However the connection ended, a body cut short aborts its request, so that what still reads it
 * (a multipart parser) hears of it: Node tells no request whose response has finished. One that
 * came whole is left to its reader.
 */
function abortUnfinished(req: IncomingMessage): void {
  if (!req.complete) req.destroy();
}
