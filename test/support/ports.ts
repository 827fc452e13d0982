import { createServer } from 'node:net';

// Below Linux's ephemeral range (32768-60999): no outgoing connection of another test can take a
// port from here between the check and the child binding it, or while a server restarts on it.
const FIRST = 20_000;
const LAST = 32_000;
/**
 * Each of vitest's workers (`VITEST_POOL_ID`, 1 to maxWorkers) draws from its own slice: the
 * processes of one run cannot hand a port out twice, which `given` alone guards only within one.
 */
const SLICES = 8;
const SLICE = Math.floor((LAST - FIRST) / SLICES);
const slice = (Math.max(1, Number(process.env.VITEST_POOL_ID) || 1) - 1) % SLICES;
const START = FIRST + slice * SLICE;

/** Ports handed out in this process: a child may not have bound its port when the next is chosen. */
const given = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 (closed again, so a child process can bind it), outside the
 * ephemeral range the kernel hands to outgoing connections, never one this process handed out
 * before (six cluster nodes take twelve ports before any of them binds), and from this worker's
 * own slice of the range.
 */
export async function freePort(): Promise<number> {
  return freePorts(1);
}

/**
 * `count` consecutive free ports, drawn as {@link freePort} draws one (a server that takes a range
 * from a base, as the examples' demo does): the first of them.
 */
export async function freePorts(count: number): Promise<number> {
  for (;;) {
    const first = START + Math.floor(Math.random() * (SLICE - count + 1));
    const ports = Array.from({ length: count }, (_, i) => first + i);
    if (ports.some((port) => given.has(port))) continue;
    for (const port of ports) given.add(port);
    if ((await Promise.all(ports.map(bindable))).every(Boolean)) return first;
  }
}

/** Whether `port` on 127.0.0.1 can be bound now (it is, then closed again). */
async function bindable(port: number): Promise<boolean> {
  const server = createServer();
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (bound) await new Promise((resolve) => server.close(resolve));
  return bound;
}
