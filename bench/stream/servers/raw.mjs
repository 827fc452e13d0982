// The baseline: plain node:http, written the way the Node docs teach. One `res.write` per event,
// and when it returns false, nothing more is written until 'drain'. Finite workloads are pulled
// (the loop stops at backpressure); the fan-out Subject cannot be paused, so its events wait in a
// per-connection array until 'drain'. Each event is formatted for each connection with a template.

import { createServer } from 'node:http';
import { fanout, queryNumber, SSE_HEADERS, serve, smallMessage, stallMessage } from './common.mjs';

/** Writes make(0..n-1) one event per write, pausing at backpressure until 'drain'. */
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

const server = createServer((req, res) => {
  const path = req.url.split('?')[0];
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();
  res.socket.setNoDelay(true);
  if (path === '/burst') pump(res, queryNumber(req.url, 'n'), smallMessage, jsonEvent);
  else if (path === '/stall') pump(res, queryNumber(req.url, 'n'), stallMessage, stringEvent);
  else if (path === '/fanout') {
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
  } else res.end();
});

server.listen(0, '127.0.0.1', () => serve({ server }));
