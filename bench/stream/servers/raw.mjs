// The baseline: plain node:http, written the way the Node docs teach. One `res.write` per event,
// and when it returns false, nothing more is written until 'drain'. Finite workloads are pulled
// (the loop stops at backpressure); the fan-out Subject cannot be paused, so its events wait in a
// per-connection array until 'drain'. Each event is formatted for each connection with a template.

import { fanout, listenHandWritten, smallMessage, stallMessage } from './common.mjs';

function pump(res, n, make, format) {
  let i = 0;
  let closed = false;
  res.once('close', () => {
    closed = true;
  });
  const next = () => {
    while (i < n) {
      if (closed) return;
      if (!res.write(format(make(i++)))) {
        res.once('drain', next);
        return;
      }
    }
    res.end();
  };
  next();
}

const jsonEvent = (m) => `data: ${JSON.stringify(m.data)}\n\n`;
const stringEvent = (m) => `data: ${m.data}\n\n`;

function follow(res) {
  const pending = [];
  let writable = true;
  const subscription = fanout.subscribe((m) => {
    const event = jsonEvent(m);
    if (writable) writable = res.write(event);
    else pending.push(event);
  });
  res.on('drain', () => {
    writable = true;
    let k = 0;
    while (k < pending.length && writable) writable = res.write(pending[k++]);
    pending.splice(0, k);
  });
  res.once('close', () => subscription.unsubscribe());
}

listenHandWritten({
  '/burst': (res, n) => pump(res, n, smallMessage, jsonEvent),
  '/stall': (res, n) => pump(res, n, stallMessage, stringEvent),
  '/fanout': follow,
});
