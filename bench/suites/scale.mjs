// Proof at scale: rxsse (on Express, and on bare node:http through openEventStream) against a bare
// node:http server holding the same connections. Each server is its own child process
// (`node --expose-gc`, `ulimit -n` raised) that measures itself and reports over IPC; the clients are
// raw TCP sockets in one more child. The work happens in scale/main.mjs, run synchronously here so the
// suite fits run.mjs's `run()` contract; its progress goes to stderr.

import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { table } from '../lib/harness.mjs';

export const description = [
  'rxsse on Express and on node:http (`openEventStream`) against bare node:http holding the same',
  'connections, each server in its own process (`node --expose-gc`), the clients (raw TCP, one more',
  'process) on 127.0.0.1. Heartbeat 2,000 ms. Heap and RSS after full GCs. Event-loop blocks: the',
  "main thread's CPU time between 1 ms samples (Linux schedstat), so another process cannot inflate",
  'them, and the wall-clock `monitorEventLoopDelay` besides; GC pauses count in both. Both cores are',
  'shared by server and clients: the fan-out figures are those of this machine as a whole.',
].join('\n');

const KB = 1024;
const MB = 1024 * 1024;
const CONTENDERS = ['rxsse-express', 'rxsse-node'];
const LABEL = { 'rxsse-express': 'Express', 'rxsse-node': 'node:http' };

const int = (x) => Math.round(x).toLocaleString('en-US');
const ms = (x) => `${x.toFixed(1)} ms`;
const bytes = (x) => `${int(x)} B`;
const signed = (x, unit = 'B') => `${x >= 0 ? '+' : '−'}${int(Math.abs(x))} ${unit}`;
const kib = (x) => `${x >= 0 ? '+' : '−'}${int(Math.abs(x) / KB)} KiB`;

export function run() {
  const main = fileURLToPath(new URL('../scale/main.mjs', import.meta.url));
  const out = join(tmpdir(), `rxsse-scale-${process.pid}.json`);
  let results;
  try {
    const child = spawnSync(process.execPath, [main, out], { stdio: 'inherit', timeout: 9.5 * 60_000 });
    if (child.error) throw child.error;
    results = JSON.parse(readFileSync(out, 'utf8'));
  } catch (error) {
    return {
      markdown: `scale suite failed to run: ${error.message}`,
      goals: [{ name: 'scale suite ran', pass: false, actual: error.message }],
    };
  } finally {
    rmSync(out, { force: true });
  }
  return report(results);
}

/** The markdown tables and goals of one run of scale/main.mjs. */
export function report(results) {
  const { env, config } = results;
  const by = (phase) => Object.fromEntries(results[phase].map((row) => [row.kind, row]));
  const idle = by('idle');
  const churn = by('churn');
  // Fan-out runs in rounds: each contender's best round (most deliveries/s) stands for it.
  const fan = {};
  const fanRounds = {};
  for (const row of results.fanout) {
    fanRounds[row.kind] = [...(fanRounds[row.kind] ?? []), row];
    if (!fan[row.kind] || row.deliveriesPerSecond > fan[row.kind].deliveriesPerSecond) fan[row.kind] = row;
  }
  const base = idle.http;
  const goals = [];
  const rows = [];

  /**
   * One line of the main table: `cell(kind)` for each contender and the baseline, and a goal test per
   * contender (`pass(kind)`, or none for information).
   */
  const line = (measure, goal, phase, cell, pass, baseCell = cell) => {
    const results = CONTENDERS.map((kind) => {
      if (!phase[kind]) return { text: 'n/a' };
      const ok = pass ? pass(phase[kind]) : undefined;
      return { text: cell(phase[kind]), ok };
    });
    const verdict = pass
      ? CONTENDERS.map((kind, i) => (phase[kind] ? (results[i].ok ? 'PASS' : 'MISS') : 'n/a')).join(' / ')
      : 'info';
    rows.push([
      measure,
      goal,
      ...results.map((r) => r.text),
      phase.http ? baseCell(phase.http) : 'n/a',
      verdict,
    ]);
    if (pass) {
      for (const [i, kind] of CONTENDERS.entries()) {
        if (!phase[kind]) continue;
        goals.push({
          name: `scale: ${measure} (${LABEL[kind]})`,
          pass: results[i].ok,
          actual: results[i].text,
        });
      }
    }
  };

  const n = int(config.connections);
  if (base) {
    // Express alone (the bare handler as an Express route) is what rxsse on Express is measured
    // against: what Express itself costs per connection is no SSE library's to save.
    const floor = (row) => (row.kind === 'rxsse-express' && idle.express ? idle.express : base);
    const over = (row) => row.heapPerConnection - floor(row).heapPerConnection;
    line(
      `heap per idle connection (${n})`,
      '≤ +1 KB over the same server without rxsse',
      idle,
      (row) => {
        if (row === base) return bytes(row.heapPerConnection);
        const overBare = signed(row.heapPerConnection - base.heapPerConnection);
        return floor(row) === base
          ? `${bytes(row.heapPerConnection)} (${overBare})`
          : `${bytes(row.heapPerConnection)} (${overBare}; ${signed(over(row))} over Express alone)`;
      },
      (row) => over(row) <= KB,
    );
    line(`RSS per idle connection (${n})`, 'info', idle, (row) =>
      row === base
        ? bytes(row.rssPerConnection)
        : `${bytes(row.rssPerConnection)} (${signed(row.rssPerConnection - base.rssPerConnection)})`,
    );
  }
  const hb = Object.fromEntries(Object.entries(idle).filter(([, row]) => row.loop));
  line(
    `heartbeats at ${n}: longest block per ${config.heartbeat} ms round, main-thread CPU (median of rounds)`,
    '≤ 5 ms',
    hb,
    (row) => ms(row.loop.cpuRoundMaxMedian),
    (row) => row.loop.cpuRoundMaxMedian <= 5,
  );
  line(
    `heartbeats at ${n}: the same in wall-clock time (median of rounds; max)`,
    'info',
    hb,
    (row) => `${ms(row.loop.roundMaxMedian)} (${ms(row.loop.max)})`,
  );
  line(
    `heartbeats at ${n}: p99 event-loop delay`,
    '≤ 10 ms',
    hb,
    (row) => ms(row.loop.p99),
    (row) => row.loop.p99 <= 10,
  );
  line(
    `heartbeats at ${n}: event-loop utilization`,
    'info',
    hb,
    (row) => `${(row.loop.elu * 100).toFixed(1)}%`,
  );

  const cycles = int(config.churnCycles);
  const na = () => 'n/a';
  line(
    `churn ${cycles}: live subscriptions after`,
    '0',
    churn,
    (row) => `${row.liveSubscriptions} of ${int(row.subscribed)}`,
    (row) => row.liveSubscriptions === 0 && row.subscribed === row.cycles,
    na,
  );
  line(
    `churn ${cycles}: heartbeat registrations, openStreams after`,
    '0, 0',
    churn,
    (row) => `${row.heartbeatTargets}, ${row.openStreams}`,
    (row) => row.heartbeatTargets === 0 && row.openStreams === 0,
    (row) => `${row.streams} open responses`,
  );
  const listeners = (row) => Object.values(row.listenerDelta).reduce((sum, d) => sum + Math.abs(d), 0);
  line(
    `churn ${cycles}: server + process listeners added`,
    '0',
    churn,
    (row) => String(listeners(row)),
    (row) => listeners(row) === 0,
  );
  line(
    `churn ${cycles}: active 'Timeout's added`,
    '0',
    churn,
    (row) => String(row.timeoutDelta),
    (row) => row.timeoutDelta === 0,
  );
  line(
    `churn ${cycles}: heap after − before (after GC)`,
    '≤ 1 MB',
    churn,
    (row) => kib(row.heapDelta),
    (row) => row.heapDelta <= MB,
  );

  const fanTitle = `fan-out ${int(config.fanoutClients)} × ${config.fanoutEvents} events (${config.fanoutRate}/s asked)`;
  const rate = (row) => `${int(row.deliveriesPerSecond)}/s`;
  line(`${fanTitle}: deliveries/s`, 'info', fan, (row) =>
    row === fan.http
      ? rate(row)
      : `${rate(row)} (${(row.deliveriesPerSecond / fan.http?.deliveriesPerSecond).toFixed(2)}x)`,
  );
  line(`${fanTitle}: p99 publish-to-receive`, 'info', fan, (row) => ms(row.p99));
  // CPU per delivery: the least of the rounds (the one least disturbed by other processes).
  const cpu = (kind) => Math.min(...(fanRounds[kind] ?? []).map((r) => r.serverCpuPerDelivery));
  const us = (row) => `${cpu(row.kind).toFixed(1)} µs`;
  line(`${fanTitle}: server main-thread CPU per delivery`, 'info', fan, (row) =>
    row === fan.http ? us(row) : `${us(row)} (${(cpu(row.kind) / cpu('http')).toFixed(2)}x)`,
  );

  const load = results.load
    ? ` · load average ${results.load.before.toFixed(1)} → ${results.load.after.toFixed(1)}`
    : '';
  const header = `${env.date} · node ${env.node} · ${env.cpu} · ${env.platform} · fd limit ${config.limit} · ${Math.round(results.seconds)} s${load}`;
  const main = table(
    [
      'measure',
      'goal',
      'rxsse on Express',
      'rxsse on node:http',
      'bare node:http',
      'result (Express / node:http)',
    ],
    rows,
  );

  // Details: what the main table summarizes, and Express alone (the same bare handler as a route).
  const details = [];
  const kinds = ['rxsse-express', 'rxsse-node', 'express', 'http'];
  const name = { ...LABEL, express: 'Express alone', http: 'bare node:http' };
  const idleRows = kinds
    .filter((kind) => idle[kind])
    .map((kind) => {
      const row = idle[kind];
      return [
        kind === 'express' || kind === 'http' ? name[kind] : `rxsse on ${name[kind]}`,
        ms(row.connectMs),
        bytes(row.heapPerConnection),
        bytes(row.rssPerConnection),
        row.loop ? row.loop.cpuRoundMax.map((x) => x.toFixed(1)).join(', ') : 'n/a',
        row.loop ? row.loop.roundMax.map((x) => x.toFixed(1)).join(', ') : 'n/a',
        row.loop ? ms(row.loop.gc.max) : 'n/a',
        row.received ? int(row.received.busiestSlot) : 'n/a',
        row.received ? int(row.received.chunks) : 'n/a',
      ];
    });
  details.push(
    table(
      [
        `idle ${n}`,
        'connect all',
        'heap/conn',
        'RSS/conn',
        'longest block per round, CPU (ms)',
        'wall clock (ms)',
        'longest GC',
        'heartbeats in busiest 100 ms',
        'heartbeats received',
      ],
      idleRows,
    ),
  );
  const fanRows = kinds
    .filter((kind) => fan[kind])
    .map((kind) => {
      const row = fan[kind];
      return [
        kind === 'express' || kind === 'http' ? name[kind] : `rxsse on ${name[kind]}`,
        `${int(row.deliveries)} / ${int(row.expected)}`,
        `${row.seconds.toFixed(1)} s`,
        rate(row),
        fanRounds[kind].map((r) => int(r.deliveriesPerSecond)).join(', '),
        fanRounds[kind].map((r) => r.serverCpuPerDelivery.toFixed(1)).join(', '),
        ms(row.p50),
        ms(row.p99),
        ms(row.max),
        `${(row.serverElu * 100).toFixed(0)}%`,
        `${(row.clientElu * 100).toFixed(0)}%`,
      ];
    });
  if (fanRows.length > 0) {
    details.push(
      table(
        [
          'fan-out (best round)',
          'delivered',
          'publish → last receive',
          'deliveries/s',
          'all rounds (/s)',
          'server CPU per delivery, all rounds (µs)',
          'p50',
          'p99',
          'max',
          'server ELU',
          'client ELU',
        ],
        fanRows,
      ),
    );
  }
  const churnRows = ['rxsse-express', 'rxsse-node', 'http']
    .filter((kind) => churn[kind])
    .map((kind) => {
      const row = churn[kind];
      return [
        kind === 'http' ? name[kind] : `rxsse on ${name[kind]}`,
        `${row.seconds.toFixed(1)} s`,
        String(row.failed),
        kib(row.heapDelta),
        kib(row.rssDelta),
        Object.entries(row.active)
          .map(([type, count]) => `${type} ${count}`)
          .join(', '),
      ];
    });
  if (churnRows.length > 0) {
    details.push(
      table(
        ['churn', 'time', 'failed', 'heap after − before', 'RSS after − before', 'active resources after'],
        churnRows,
      ),
    );
  }
  const errors = results.errors.length > 0 ? `\n\nErrors: ${results.errors.join('; ')}` : '';
  const markdown = `${header}\n\n${main}\n\n${details.join('\n\n')}${errors}`;
  for (const error of results.errors) goals.push({ name: `scale: ${error}`, pass: false, actual: 'failed' });
  return { markdown, goals };
}
