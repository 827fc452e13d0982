import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type EventSourceLike, resolveStreamOptions, type StreamOptions } from '@rxsse/core';
import { type EventContext, openEventStream } from '@rxsse/node';

/** A bare Node HTTP server on 127.0.0.1 that streams `produce`'s source to every request. */
export async function startStreamServer(
  produce: (context: EventContext) => EventSourceLike | Promise<EventSourceLike>,
  options: StreamOptions = {},
) {
  const resolved = resolveStreamOptions(options);
  const server = createServer((req, res) => {
    openEventStream(req, res, produce, resolved).catch((error: unknown) => {
      res.destroy(error as Error);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
