// The hand-written references: node:http doing what rxsse's stream does, nothing else (no validation,
// heartbeats or options). Each connection writes a tick's events in one `res.write` from a microtask;
// while the response is full, events wait (past a byte cap, the connection is closed) and go out in
// one write on 'drain'. A fan-out event is formatted once for all connections (a one-entry cache).
//
// `batching.mjs [chunkBytes]` (the `chunks` reference: 65536): a tick that emits more writes as it
// goes, one chunk per `chunkBytes`, and uncorks the socket after a write that filled it (Node corks a
// response until the next tick), so the client reads the first chunk while the tick goes on.

import { listenHandWritten, ROUTES } from './common.mjs';

let lastMessage;
let lastEvent = '';
function format(m) {
  if (m !== lastMessage) {
    lastMessage = m;
    lastEvent = typeof m.data === 'string' ? `data: ${m.data}\n\n` : `data: ${JSON.stringify(m.data)}\n\n`;
  }
  return lastEvent;
}

function stream(res, source, cap, chunkBytes) {
  let parts = [];
  let bytes = 0;
  let writable = true;
  let scheduled = false;
  let done = false;
  let dead = false;
  let subscription;
  const socket = res.socket;
  const write = () => {
    const chunk = parts.length === 1 ? parts[0] : parts.join('');
    parts = [];
    bytes = 0;
    writable = res.write(chunk);
    if (!writable && chunkBytes && socket.writableCorked) {
      socket.uncork();
      writable = socket.writableLength < socket.writableHighWaterMark;
    }
  };
  const flush = () => {
    scheduled = false;
    if (!writable || parts.length === 0) return;
    write();
    if (done && writable) res.end();
  };
  const stop = () => {
    dead = true;
    subscription?.unsubscribe();
  };
  subscription = source.subscribe({
    next: (m) => {
      if (dead) return;
      const event = format(m);
      bytes += event.length;
      if (bytes > cap) {
        stop();
        res.destroy();
        return;
      }
      parts.push(event);
      if (!writable) return;
      if (chunkBytes && bytes >= chunkBytes) write();
      else if (!scheduled) {
        scheduled = true;
        queueMicrotask(flush);
      }
    },
    complete: () => {
      done = true;
      if (parts.length === 0 && writable) res.end();
    },
  });
  res.on('drain', () => {
    writable = true;
    flush();
    if (done && writable && parts.length === 0) res.end();
  });
  res.once('close', stop);
  if (dead) subscription.unsubscribe();
}

const chunkBytes = Number(process.argv[2] ?? 0);
// Like rxsse's routes: the burst's cap raised above the burst, the 1 MiB default elsewhere.
const routes = ROUTES.map(({ path, source, options }) => {
  const cap = options?.maxQueueBytes ?? 1024 * 1024;
  return [path, (res, n) => stream(res, source(n), cap, chunkBytes)];
});
listenHandWritten(Object.fromEntries(routes));
