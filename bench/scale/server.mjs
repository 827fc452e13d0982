// A server of the scale suite: `node --expose-gc scale/server.mjs KIND`, one process per contender so
// that its heap, RSS and event loop are its own. It measures itself and reports over IPC.
//
// KIND                 what answers GET /sse, /churn and /fanout
//   http               bare node:http: writeHead + flushHeaders, the response kept open in a Set;
//                      heartbeats are one setInterval writing `:\n` to every response at once
//   express            the same handler as an Express 5 route (shows what Express itself costs)
//   rxsse-node         openEventStream() from @rxsse/node in a bare node:http handler
//   rxsse-express      sse() from @rxsse/express
//
// Routes: /sse idles (a Subject that never emits), /churn counts its subscriptions (and gives each
// stream a maxLifetime timer, so timer clean-up is exercised), /fanout is one shared Subject.

import { openSync, readSync } from 'node:fs';
import { createServer } from 'node:http';
import { monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { heartbeatCount, openStreams, resolveStreamOptions } from '@rxsse/core';
import { sse } from '@rxsse/express';
import { openEventStream } from '@rxsse/node';
import express from 'express';
import { Observable, Subject } from 'rxjs';
import { serve, settleHeap } from './proc.mjs';

const kind = process.argv[2];
const HEARTBEAT = Number(process.env.SCALE_HEARTBEAT ?? 2000);
const rxsse = kind.startsWith('rxsse');

// --- sources --------------------------------------------------------------------------------------

const idle = new Subject();
const fanout = new Subject();
const subscriptions = { live: 0, total: 0 };
const counting = new Observable(() => {
  subscriptions.live++;
  subscriptions.total++;
  return () => {
    subscriptions.live--;
  };
});

const idleOptions = resolveStreamOptions({ heartbeat: HEARTBEAT });
const churnOptions = resolveStreamOptions({ heartbeat: HEARTBEAT, maxLifetime: 600_000 });
const fanoutOptions = resolveStreamOptions({ heartbeat: HEARTBEAT });

// --- the bare baseline ----------------------------------------------------------------------------

const HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
  connection: 'keep-alive',
};
const responses = new Set();
const HEARTBEAT_BYTES = Buffer.from(':\n');

function bare(_req, res) {
  res.writeHead(200, HEADERS);
  res.flushHeaders();
  responses.add(res);
  res.on('close', () => responses.delete(res));
}

/** The naive heartbeat: every interval, one loop writes to every open response. */
function naiveRound() {
  for (const res of responses) res.write(HEARTBEAT_BYTES);
}

// --- the server -----------------------------------------------------------------------------------

const SOURCES = {
  '/sse': [idle, idleOptions],
  '/churn': [counting, churnOptions],
  '/fanout': [fanout, fanoutOptions],
};

let handler;
if (kind === 'http') {
  handler = bare;
  setInterval(naiveRound, HEARTBEAT);
} else if (kind === 'rxsse-node') {
  handler = (req, res) => {
    const route = SOURCES[req.url];
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    openEventStream(req, res, () => route[0], route[1]).catch(() => res.destroy());
  };
} else if (kind === 'express' || kind === 'rxsse-express') {
  const app = express();
  for (const [path, [source, options]] of Object.entries(SOURCES)) {
    app.get(path, kind === 'express' ? bare : sse(() => source, options));
  }
  handler = app;
} else {
  throw new Error(`unknown server kind '${kind}'`);
}

const server = createServer(handler);
let sockets = 0;
server.on('connection', (socket) => {
  sockets++;
  socket.once('close', () => sockets--);
});
server.listen(0, '127.0.0.1', 4096);
await new Promise((resolve) => server.once('listening', resolve));

// --- measurements ---------------------------------------------------------------------------------

const streams = () => (rxsse ? openStreams.size : responses.size);

/** What a leak would show as: listeners on the server and the process, and live timers. */
function resources() {
  const listeners = {};
  for (const emitter of [
    ['server', server],
    ['process', process],
  ]) {
    for (const event of emitter[1].eventNames()) {
      listeners[`${emitter[0]}:${String(event)}`] = emitter[1].listenerCount(event);
    }
  }
  const active = {};
  for (const type of process.getActiveResourcesInfo()) active[type] = (active[type] ?? 0) + 1;
  return {
    sockets,
    streams: streams(),
    subscriptions: { ...subscriptions },
    heartbeatTargets: heartbeatCount(),
    openStreams: openStreams.size,
    listeners,
    timeouts: active.Timeout ?? 0,
    active,
  };
}

let loop;

// The main thread's time on a CPU, in ms: Linux's schedstat has it in ns (pread on one open fd, a
// few microseconds). Elsewhere, the process's CPU time (which also counts GC helper threads).
const schedstat = (() => {
  try {
    const fd = openSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'r');
    const buffer = Buffer.alloc(128);
    const read = () =>
      Number(buffer.toString('latin1', 0, readSync(fd, buffer, 0, 128, 0)).split(' ')[0]) / 1e6;
    return Number.isFinite(read()) ? read : undefined;
  } catch {
    return undefined;
  }
})();
function mainThreadCpu() {
  if (schedstat) return schedstat();
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

serve(
  {
    count: () => ({ sockets, streams: streams() }),
    /** CPU time so far, in ms: the main thread's (see mainThreadCpu) and the whole process's. */
    cpu: () => {
      const { user, system } = process.cpuUsage();
      return { main: mainThreadCpu(), process: (user + system) / 1000 };
    },
    memory: async () => ({ memory: await settleHeap(), sockets, streams: streams() }),
    resources: async () => {
      const memory = await settleHeap();
      return { memory, ...resources() };
    },
    /** For profiling: a heap snapshot of this process, written to `path`. */
    snapshot: async ({ path }) => {
      await settleHeap();
      return writeHeapSnapshot(path);
    },
    /**
     * Starts watching the event loop while heartbeats go out, three ways:
     * - `monitorEventLoopDelay` over the whole window (p99, max) and per heartbeat round (reset every
     *   interval), in wall-clock time: what a request arriving then would wait, including the time
     *   this process was not even scheduled (the two cores are shared with the clients);
     * - a 1 ms sampler that also reads the main thread's CPU time (see mainThreadCpu): a block's
     *   CPU time, which another process on the machine cannot inflate;
     * - GC pauses, which are part of both.
     */
    loopStart: () => {
      const histogram = monitorEventLoopDelay({ resolution: 1 });
      const round = monitorEventLoopDelay({ resolution: 1 });
      histogram.enable();
      round.enable();
      const rounds = [];
      const cpuRounds = [];
      let cpuRoundMax = 0;
      let cpuMax = 0;
      let last = performance.now();
      let lastCpu = mainThreadCpu();
      const sampler = setInterval(() => {
        const now = performance.now();
        const cpu = mainThreadCpu();
        const wall = now - last - 1;
        const block = Math.max(0, Math.min(wall, cpu - lastCpu));
        if (block > cpuRoundMax) cpuRoundMax = block;
        if (block > cpuMax) cpuMax = block;
        last = now;
        lastCpu = cpu;
      }, 1);
      const timer = setInterval(() => {
        rounds.push(round.max / 1e6);
        round.reset();
        cpuRounds.push(cpuRoundMax);
        cpuRoundMax = 0;
      }, HEARTBEAT);
      const gc = { count: 0, total: 0, max: 0 };
      const observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          gc.count++;
          gc.total += entry.duration;
          gc.max = Math.max(gc.max, entry.duration);
        }
      });
      observer.observe({ entryTypes: ['gc'] });
      const elu = performance.eventLoopUtilization();
      const start = performance.now();
      loop = () => {
        clearInterval(timer);
        clearInterval(sampler);
        observer.disconnect();
        histogram.disable();
        round.disable();
        const ms = (ns) => ns / 1e6;
        return {
          seconds: (performance.now() - start) / 1000,
          max: ms(histogram.max),
          roundMax: rounds,
          cpuMax,
          cpuRoundMax: cpuRounds,
          p99: ms(histogram.percentile(99)),
          p50: ms(histogram.percentile(50)),
          mean: ms(histogram.mean),
          samples: histogram.count,
          elu: performance.eventLoopUtilization(elu).utilization,
          gc,
        };
      };
      return true;
    },
    loopStop: () => loop(),
    fanout: ({ events, rate }) =>
      new Promise((resolve) => {
        const histogram = monitorEventLoopDelay({ resolution: 1 });
        histogram.enable();
        const elu = performance.eventLoopUtilization();
        let n = 0;
        const first = performance.timeOrigin + performance.now();
        const timer = setInterval(() => {
          const t = performance.timeOrigin + performance.now();
          if (rxsse) fanout.next({ data: { t, n } });
          else {
            const bytes = Buffer.from(`data: ${JSON.stringify({ t, n })}\n\n`);
            for (const res of responses) res.write(bytes);
          }
          if (++n < events) return;
          clearInterval(timer);
          // Let the writes queued in this tick go out before the loop statistics are read.
          setImmediate(() => {
            histogram.disable();
            resolve({
              emitted: n,
              first,
              last: t,
              elu: performance.eventLoopUtilization(elu).utilization,
              loopMax: histogram.max / 1e6,
            });
          });
        }, 1000 / rate);
      }),
  },
  { port: server.address().port, pid: process.pid },
);
