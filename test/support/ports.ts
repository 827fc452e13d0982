import { createServer } from 'node:net';

// Below Linux's ephemeral range (32768-60999): no outgoing connection of another test can take a
// port from here between the check and the child binding it, or while a server restarts on it.
const FIRST = 20_000;
const LAST = 32_000;

/** Ports handed out in this process: a child may not have bound its port when the next is chosen. */
const given = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 (closed again, so a child process can bind it), outside the
 * ephemeral range the kernel hands to outgoing connections, and never one this process handed out
 * before (six cluster nodes take twelve ports before any of them binds).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = FIRST + Math.floor(Math.random() * (LAST - FIRST));
    if (given.has(port)) continue;
    given.add(port);
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (bound) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
}
