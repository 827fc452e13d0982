// What every stream-suite server shares: the workloads (defined once, so every contender streams the
// same events) in ROUTES, and serve(), the commands the suite drives a child with, once it listens.

import { createServer } from 'node:http';
import { map, Observable, range, Subject } from 'rxjs';
import { serveParent } from '../../lib/child.mjs';
import { sleep } from '../../lib/harness.mjs';

const T0 = Date.UTC(2025, 0, 1);

/** ~50 bytes on the wire: `data: {"n":1,"ts":1735689600001,"msg":"tick"}` and a blank line. */
export const smallMessage = (i) => ({ data: { n: i, ts: T0 + i, msg: 'tick' } });

/** A new object per 1 KiB event (`data: ` + 1,016 characters + `\n\n`): no cache can fold them. */
const STALL_PAYLOAD = 'x'.repeat(1016);
export const stallMessage = () => ({ data: STALL_PAYLOAD });

export const burstSource = (n) => range(0, n).pipe(map(smallMessage));

/** `make(i)` for i < n, `perStep` per macrotask, then complete: a producer that cannot be paused. */
const paced = (n, perStep, make) =>
  new Observable((subscriber) => {
    let i = 0;
    let timer;
    const step = () => {
      const end = Math.min(n, i + perStep);
      while (i < end && !subscriber.closed) subscriber.next(make(i++));
      if (subscriber.closed) return;
      if (i < n) timer = setImmediate(step);
      else subscriber.complete();
    };
    step();
    return () => clearImmediate(timer);
  });

export const stallSource = (n) => paced(n, 1000, stallMessage);

/** The one Subject every fan-out client of a server listens to. */
export const fanout = new Subject();

export const queryN = (url) => Number(new URL(url, 'http://localhost').searchParams.get('n'));

/**
 * The routes every contender serves: `source(n)` for `?n=`, and the options an rxsse route passes.
 *   GET /burst?n=N   N small events, emitted at once (rxjs `range`)
 *   GET /fanout      the shared `fanout` Subject, until the client leaves
 *   GET /stall?n=N   N events of 1 KiB, emitted 1,000 per macrotask
 * A synchronous burst of 100,000 events (~7 MB) is queued whole within one tick, so the burst route
 * raises maxQueueBytes (default 1 MiB) above it: the one option the rxsse contenders change.
 */
export const ROUTES = [
  { path: '/burst', source: burstSource, options: { maxQueueBytes: 64 * 1024 * 1024 } },
  { path: '/fanout', source: () => fanout },
  { path: '/stall', source: stallSource },
];

/** Serves a node:http request listener (an Express app, a Koa callback) and reports it ready. */
export function listen(handler) {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1', () => serve({ server }));
}

/** The hand-written servers' frame: SSE headers sent at once, Nagle off, then `routes[path](res, n)`. */
export function listenHandWritten(routes) {
  listen((req, res) => {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.flushHeaders();
    res.socket.setNoDelay(true);
    const route = routes[req.url.split('?')[0]];
    if (route) route(res, queryN(req.url));
    else res.end();
  });
}

/**
 * Tells the parent the port and answers its commands: `subscribers` (fan-out clients listening),
 * `emit` (`count` fan-out events, `batch` per macrotask, as a message bus delivers them), `rss` (after
 * a full GC), `sockets` (how many opened, and how long each closed one lived, in ms).
 */
export function serve({ server, port = server.address().port, subscribers = () => fanout.observers.length }) {
  const sockets = { opened: 0, lifetimes: [] };
  server?.on('connection', (socket) => {
    const opened = performance.now();
    sockets.opened++;
    socket.once('close', () => sockets.lifetimes.push(performance.now() - opened));
  });
  serveParent(
    {
      subscribers,
      emit: ({ count, batch }) => paced(count, batch, smallMessage).forEach((m) => void fanout.next(m)),
      rss: async ({ settle = 0 }) => {
        // V8 hands freed pages back from a background thread: `settle` ms give it time.
        globalThis.gc?.();
        await sleep(settle);
        globalThis.gc?.();
        return process.memoryUsage().rss;
      },
      sockets: () => sockets,
    },
    { port },
  );
}
