import { createServer } from 'node:net';

// Below Linux's ephemeral range (32768-60999): no outgoing connection of another test can take a
// port from here between the check and the child binding it, or while a server restarts on it.
const FIRST = 20_000;
const LAST = 32_000;

/**
 * A free TCP port on 127.0.0.1 (closed again, so a child process can bind it), outside the
 * ephemeral range the kernel hands to outgoing connections.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = FIRST + Math.floor(Math.random() * (LAST - FIRST));
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
