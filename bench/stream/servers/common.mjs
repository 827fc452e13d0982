// What every stream-suite server shares: the workloads (defined once, so every contender streams the
// same events), the ROUTES table, and serve(), the commands the suite drives a server child with
// (lib/child.mjs). A server listens on 127.0.0.1 (port chosen by the OS), then calls serve().

import { createServer } from 'node:http';
import { map, Observable, range, Subject } from 'rxjs';
import { serveParent } from '../../lib/child.mjs';

const T0 = Date.UTC(2025, 0, 1);

/** ~50 bytes on the wire: `data: {"n":1,"ts":1735689600001,"msg":"tick"}` and a blank line. */
export const smallMessage = (i) => ({ data: { n: i, ts: T0 + i, msg: 'tick' } });

/** A new object per 1 KiB event (`data: ` + 1,016 characters + `\n\n`): no cache can fold them. */
const STALL_PAYLOAD = 'x'.repeat(1016);
export const stallMessage = () => ({ data: STALL_PAYLOAD });

/** The burst: N events emitted synchronously on subscribe, then complete. */
export const burstSource = (n) => range(0, n).pipe(map(smallMessage));

/** A fast producer that cannot be paused: N 1 KiB events, 1,000 (1 MiB) per macrotask. */
export const stallSource = (n) =>
  new Observable((subscriber) => {
    let i = 0;
    let timer;
    const step = () => {
      const end = Math.min(n, i + 1000);
      while (i < end && !subscriber.closed) subscriber.next(stallMessage(i++));
      if (subscriber.closed) return;
      if (i < n) timer = setImmediate(step);
      else subscriber.complete();
    };
    step();
    return () => clearImmediate(timer);
  });

/** The one Subject every fan-out client of a server listens to. */
export const fanout = new Subject();

/** Emits `count` fan-out events, `batch` per macrotask (as a message bus delivers them). */
const emitFanout = (count, batch) =>
  new Promise((resolve) => {
    let i = 0;
    const step = () => {
      const end = Math.min(count, i + batch);
      while (i < end) fanout.next(smallMessage(i++));
      if (i < count) setImmediate(step);
      else resolve();
    };
    step();
  });

/**
 * The one option the rxsse contenders change: a synchronous burst of 100,000 events (~7 MB) is
 * queued whole within one tick, so the burst route raises maxQueueBytes (default 1 MiB) above it.
 */
const BURST_OPTIONS = { maxQueueBytes: 64 * 1024 * 1024 };

/** Headers every hand-written server sends. */
const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
};

/** `?n=` of a request URL, as a number. */
export const queryN = (url) => Number(new URL(url, 'http://localhost').searchParams.get('n'));

/**
 * The routes every contender serves: `source(n)` for `?n=`, and the options an rxsse route passes.
 *   GET /burst?n=N   N small events, emitted at once (rxjs `range`)
 *   GET /fanout      the shared `fanout` Subject, until the client leaves
 *   GET /stall?n=N   N events of 1 KiB, emitted 1,000 per macrotask
 */
export const ROUTES = [
  { path: '/burst', source: burstSource, options: BURST_OPTIONS },
  { path: '/fanout', source: () => fanout },
  { path: '/stall', source: stallSource },
];

/** Serves a node:http request listener (an Express app, a Koa callback) and reports it ready. */
export function listen(handler) {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1', () => serve({ server }));
}

/**
 * The hand-written servers' frame: SSE headers sent at once, Nagle off, then `routes[path](res, n)`.
 */
export function listenHandWritten(routes) {
  listen((req, res) => {
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    res.socket.setNoDelay(true);
    const route = routes[req.url.split('?')[0]];
    if (route) route(res, queryN(req.url));
    else res.end();
  });
}

/**
 * Tells the parent the port and answers its commands: `subscribers` (fan-out clients listening),
 * `emit`, `rss` (after a full GC), `sockets` (open, closed, lifetimes of the closed in ms).
 *
 * @param {{ server?: import('node:http').Server, port?: number, subscribers?: () => number }} options
 */
export function serve({ server, port = server.address().port, subscribers = () => fanout.observers.length }) {
  const sockets = { open: 0, closed: 0, lifetimes: [] };
  server?.on('connection', (socket) => {
    const opened = performance.now();
    sockets.open++;
    socket.once('close', () => {
      sockets.open--;
      sockets.closed++;
      sockets.lifetimes.push(performance.now() - opened);
    });
  });
  serveParent(
    {
      subscribers,
      emit: ({ count, batch }) => emitFanout(count, batch),
      rss: async ({ settle = 0 }) => {
        // V8 hands freed pages back from a background thread: `settle` ms give it time.
        globalThis.gc?.();
        await new Promise((resolve) => setTimeout(resolve, settle));
        globalThis.gc?.();
        return process.memoryUsage().rss;
      },
      sockets: () => sockets,
    },
    { port },
  );
}
