import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';

/**
 * A server shared by the tests of a `describe`: waits for it to listen before them and closes it
 * after them. `url()` is its `http://127.0.0.1:<port>` once the tests run.
 */
export function serveForSuite(server: Server): { url: () => string } {
  const listening = once(server, 'listening');
  let url = '';
  beforeAll(async () => {
    await listening;
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));
  return { url: () => url };
}
