import type { Http2Session } from 'node:http2';
import type { Server } from 'node:net';
import { openStreams, type ShutdownOptions, type StreamGroup } from '@rxsse/core';

/**
 * Makes `server.close()` end the event streams first. Node's `close()` waits for open
 * connections, and an event stream never ends on its own, so without this it would hang.
 * Streams get reason `'shutdown'`, write what they queued (and the retry hint), then end.
 * On an HTTP/2 server, client sessions are closed gracefully (GOAWAY) too: Node waits for them,
 * and browsers keep idle sessions open.
 *
 * @example
 * ```ts
 * const server = app.listen(3000);
 * closeStreamsOnServerClose(server, { retry: 2000, spread: 8000 });
 * ```
 */
export function closeStreamsOnServerClose(
  server: Server,
  options: ShutdownOptions & { group?: StreamGroup } = {},
): void {
  const { group = openStreams, ...shutdown } = options;
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  const close = server.close;
  server.close = function closeWithStreams(this: Server, callback?: (error?: Error) => void) {
    close.call(this, callback);
    void group.close(shutdown).then(() => {
      for (const session of sessions) session.close();
    });
    return this;
  };
}
