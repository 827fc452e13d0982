// A scale-suite server: `server.mjs KIND`, one process per contender so that its heap, RSS and event
// loop are its own. It measures itself and answers over IPC (lib/child.mjs).
//   http           bare node:http: writeHead + flushHeaders, one setInterval for every heartbeat
//   express        the same handler as an Express 5 route (what Express itself costs)
//   rxsse-node     openEventStream() from @rxsse/node in a bare node:http handler
//   rxsse-express  sse() from @rxsse/express
// Routes: /sse idles (a Subject that never emits), /churn counts its subscriptions (with a
// maxLifetime, so every stream has a timer to clean up).

import { existsSync, openSync, readSync } from 'node:fs';
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { heartbeatCount, openStreams, resolveStreamOptions, sseHeaders } from '@rxsse/core';
import { sse } from '@rxsse/express';
import { openEventStream } from '@rxsse/node';
import express from 'express';
import { Observable, Subject } from 'rxjs';
import { serveParent } from '../lib/child.mjs';
import { sleep } from '../lib/harness.mjs';

const kind = process.argv[2];
const HEARTBEAT = Number(process.env.SCALE_HEARTBEAT ?? 2000);
const rxsse = kind.startsWith('rxsse');

const subscriptions = { live: 0, total: 0 };
const counting = new Observable(() => {
  subscriptions.live++;
  subscriptions.total++;
  return () => subscriptions.live--;
});
const options = resolveStreamOptions({ heartbeat: HEARTBEAT });
const ROUTES = {
  '/sse': [new Subject(), options],
  '/churn': [counting, resolveStreamOptions({ heartbeat: HEARTBEAT, maxLifetime: 600_000 })],
};

// The headers rxsse sends: the bare server writes the same bytes.
const HEADERS = sseHeaders(false);
const responses = new Set();
function bare(_req, res) {
  res.writeHead(200, HEADERS);
  res.flushHeaders();
  responses.add(res);
  res.on('close', () => responses.delete(res));
}

let handler = bare;
if (kind === 'http') {
  const heartbeat = Buffer.from(':\n');
  setInterval(() => {
    for (const res of responses) res.write(heartbeat);
  }, HEARTBEAT);
} else if (kind === 'rxsse-node') {
  handler = (req, res) => {
    const [source, routeOptions] = ROUTES[req.url];
    openEventStream(req, res, () => source, routeOptions).catch(() => res.destroy());
  };
} else {
  handler = express();
  for (const [path, [source, routeOptions]] of Object.entries(ROUTES)) {
    handler.get(path, kind === 'express' ? bare : sse(() => source, routeOptions));
  }
}

const server = createServer(handler);
await new Promise((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
const streams = () => (rxsse ? openStreams.size : responses.size);
const sockets = () => new Promise((resolve) => server.getConnections((_, n) => resolve(n)));

/** Full collections until the heap stops shrinking, with turns of the loop for weak callbacks. */
async function settleHeap() {
  let last = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 8; i++) {
    globalThis.gc?.();
    await sleep(20);
    const used = process.memoryUsage().heapUsed;
    if (i >= 2 && used >= last - 4096) break;
    last = used;
  }
  globalThis.gc?.();
  return process.memoryUsage();
}

/** What a leak would leave: heap, listeners on the server and the process, timers and handles. */
async function resources() {
  const memory = await settleHeap();
  const listeners = {};
  for (const [name, emitter] of Object.entries({ server, process })) {
    for (const event of emitter.eventNames())
      listeners[`${name}:${String(event)}`] = emitter.listenerCount(event);
  }
  const active = {};
  for (const type of process.getActiveResourcesInfo()) active[type] = (active[type] ?? 0) + 1;
  const counts = { streams: streams(), heartbeats: heartbeatCount(), openStreams: openStreams.size };
  return { memory, ...subscriptions, ...counts, listeners, active };
}

// The main thread's CPU time in ms: Linux's schedstat (ns), which another process cannot inflate;
// elsewhere the process's (GC helper threads too).
const schedstat = `/proc/${process.pid}/task/${process.pid}/schedstat`;
const fd = existsSync(schedstat) ? openSync(schedstat, 'r') : undefined;
const buffer = Buffer.alloc(128);
const mainThreadCpu =
  fd === undefined
    ? () => Object.values(process.cpuUsage()).reduce((a, b) => a + b) / 1000
    : () => Number(buffer.toString('latin1', 0, readSync(fd, buffer, 0, 128, 0)).split(' ')[0]) / 1e6;

/** The event loop for `ms`: its delay (wall clock) over it all and per heartbeat round; a 1 ms sampler
 * of the main thread's CPU time, whose longest block per round a neighbour cannot inflate. */
async function watchLoop({ ms }) {
  const all = monitorEventLoopDelay({ resolution: 1 });
  const round = monitorEventLoopDelay({ resolution: 1 });
  all.enable();
  round.enable();
  const result = { roundMax: [], cpuRoundMax: [] };
  let cpuRoundMax = 0;
  let last = performance.now();
  let lastCpu = mainThreadCpu();
  const sampler = setInterval(() => {
    const [now, cpu] = [performance.now(), mainThreadCpu()];
    cpuRoundMax = Math.max(cpuRoundMax, Math.min(now - last - 1, cpu - lastCpu));
    [last, lastCpu] = [now, cpu];
  }, 1);
  const rounds = setInterval(() => {
    result.roundMax.push(round.max / 1e6);
    result.cpuRoundMax.push(cpuRoundMax);
    round.reset();
    cpuRoundMax = 0;
  }, HEARTBEAT);
  const elu = performance.eventLoopUtilization();
  await sleep(ms);
  clearInterval(sampler);
  clearInterval(rounds);
  all.disable();
  round.disable();
  const utilization = performance.eventLoopUtilization(elu).utilization;
  return { ...result, max: all.max / 1e6, p99: all.percentile(99) / 1e6, elu: utilization };
}

const commands = { sockets, streams, memory: settleHeap, resources, watchLoop };
serveParent(commands, { port: server.address().port });
