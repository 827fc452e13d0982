import type { ServerHttp2Stream } from 'node:http2';

/**
 * Destroys an HTTP/2 stream its client reset with `NO_ERROR` while it still held bytes for it.
 * Node 20 keeps such a stream open until those writes finish, which they never do once the stream
 * is gone: its response never closes, and the event stream, with what it holds, stays in its groups
 * (and holds a server's `close()`) until a stall, an overflow or the deadline ends it. Node 24
 * destroys it itself. Any other code Node destroys the stream at once.
 */
export function destroyOnReset(stream: ServerHttp2Stream): void {
  // A reset while the stream runs says 'aborted'; one after its end, only the request's 'end'
  // that Node pushes for it.
  stream.on('aborted', checkSoon);
  stream.on('end', checkSoon);
}

function checkSoon(this: ServerHttp2Stream): void {
  // After Node's own handling of the reset, which runs on past the 'aborted' it emits.
  process.nextTick(destroyIfHeld, this);
}

function destroyIfHeld(stream: ServerHttp2Stream): void {
  // A stream that closed the usual way wrote everything first: only a reset leaves bytes behind.
  if (stream.closed && !stream.destroyed && stream.writableLength > 0) stream.destroy();
}
