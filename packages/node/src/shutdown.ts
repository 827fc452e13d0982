import type { Server } from 'node:net';
import { openStreams, type ShutdownOptions, type StreamGroup } from '@rxsse/core';

/**
 * Makes `server.close()` end the event streams first. Node's `close()` waits for open
 * connections, and an event stream never ends on its own, so without this it would hang.
 * Streams get reason `'shutdown'`, write what they queued (and the retry hint), then end.
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
  const close = server.close;
  server.close = function closeWithStreams(this: Server, callback?: (error?: Error) => void) {
    close.call(this, callback);
    void group.close(shutdown);
    return this;
  };
}
