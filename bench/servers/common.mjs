// What every stream-suite server shares: the workloads (one definition, so every contender streams
// the same events) and the IPC protocol the suite drives a server child with.
//
// A server is a script: `node --expose-gc servers/NAME.mjs`, forked by lib/child.mjs. It listens on
// 127.0.0.1 (port chosen by the OS), then calls serve(), which tells the parent the port and answers
// its commands. Routes, the same on every server:
//   GET /burst?n=N   N small events, emitted at once (rxjs `range`)
//   GET /fanout      the shared `fanout` Subject, until the client leaves
//   GET /stall?n=N   N events of 1 KiB, emitted 1,000 per macrotask

import { map, Observable, range, Subject } from 'rxjs';

const T0 = Date.UTC(2025, 0, 1);

/** A small event, ~50 bytes on the wire: `data: {"n":1,"ts":1735689600001,"msg":"tick"}` and a blank line. */
export const smallMessage = (i) => ({ data: { n: i, ts: T0 + i, msg: 'tick' } });

/** 1,016 characters: `data: ` + this + `\n\n` is one 1 KiB event. */
export const STALL_PAYLOAD = 'x'.repeat(1016);
/** A new object per event (an encode-once cache must not turn 200,000 events into one). */
export const stallMessage = () => ({ data: STALL_PAYLOAD });
/** Events of the stall workload emitted per macrotask: 1 MiB of events, then the loop turns. */
export const STALL_BATCH = 1000;

/** The burst: N events emitted synchronously on subscribe, then complete. */
export const burstSource = (n) => range(0, n).pipe(map(smallMessage));

/** A fast producer that cannot be paused: N 1 KiB events, STALL_BATCH per macrotask. */
export const stallSource = (n) =>
  new Observable((subscriber) => {
    let i = 0;
    let timer;
    const step = () => {
      const end = Math.min(n, i + STALL_BATCH);
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

/**
 * Emits `count` fan-out events, `batch` per macrotask (a Subject fed by, say, a message bus delivers
 * several messages per socket read). Every subscriber sees the same message object.
 */
export function emitFanout(count, batch) {
  return new Promise((resolve) => {
    let i = 0;
    const step = () => {
      const end = Math.min(count, i + batch);
      while (i < end) fanout.next(smallMessage(i++));
      if (i < count) setImmediate(step);
      else resolve();
    };
    step();
  });
}

/** Headers every hand-written server sends. */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
};

export const queryNumber = (url, name) => Number(new URL(url, 'http://localhost').searchParams.get(name));

/**
 * Hooks a listening server up to the parent: reports its port, tracks its sockets and answers
 * commands. `subscribers()` says how many fan-out clients are listening (the parent waits for all
 * before emitting).
 *
 * @param {{ server: import('node:http').Server, subscribers?: () => number }} options
 */
export function serve({ server, subscribers = () => fanout.observers.length }) {
  const sockets = { open: 0, closed: 0, lifetimes: [] };
  server.on('connection', (socket) => {
    const opened = performance.now();
    sockets.open++;
    socket.once('close', () => {
      sockets.open--;
      sockets.closed++;
      sockets.lifetimes.push(performance.now() - opened);
    });
  });
  const commands = {
    subscribers: () => subscribers(),
    emit: ({ count, batch }) => emitFanout(count, batch),
    rss: async ({ settle = 0 }) => {
      // A full collection first: the growth to report is what the server keeps, not its garbage.
      // V8 hands freed pages back to the OS from a background thread: `settle` ms give it time.
      globalThis.gc?.();
      if (settle > 0) {
        await new Promise((resolve) => setTimeout(resolve, settle));
        globalThis.gc?.();
      }
      return process.memoryUsage().rss;
    },
    sockets: () => ({ ...sockets, lifetimes: [...sockets.lifetimes] }),
    exit: () => setImmediate(() => process.exit(0)),
  };
  process.on('message', async ({ id, command, args }) => {
    try {
      const result = await commands[command](args ?? {});
      process.send({ id, result });
    } catch (error) {
      process.send({ id, error: String(error?.stack ?? error) });
    }
  });
  // The parent going away (even killed) must never leave a server behind.
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: { port: server.address().port } });
}
