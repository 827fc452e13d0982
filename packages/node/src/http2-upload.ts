import type { ServerHttp2Stream } from 'node:http2';

/**
 * Closes an HTTP/2 stream whose response went out while its client still uploads, with
 * RST_STREAM `NO_ERROR` (RFC 9113 §8.1: stop sending, the response is complete). Node closes such
 * a stream on its own only when no one touched the request body; one the app reads, or paused,
 * would stay half-open, and hold the session and a server's `close()`, for as long as the upload lasts.
 *
 * The reset waits for the frame that carries END_STREAM to leave (`localClose`): submitted
 * earlier, it would overtake it, and the client would see the end only as a reset.
 */
export function closeWhenAnswered(stream: ServerHttp2Stream): void {
  stream.once('finish', () => setImmediate(check, stream));
}

/** How long to wait again for END_STREAM to leave, when the connection is still busy writing. */
const RETRY_MS = 10;

function check(stream: ServerHttp2Stream): void {
  if (stream.closed || stream.destroyed) return;
  const { localClose, remoteClose } = stream.state;
  // A body that ended meanwhile leaves the stream to close as any other.
  if (remoteClose) return;
  // Not `close()`: a stream whose body the app paused would keep it buffered, and never close.
  // Destroyed after its end, it is reset with NO_ERROR all the same.
  if (localClose) stream.destroy();
  else setTimeout(check, RETRY_MS, stream);
}
