// rxsse on Bun (@rxsse/web on Bun.serve) against a hand-written Bun.serve event stream: the stream
// suite's burst and fan-out workloads, each server a Bun process of its own, the clients here.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, rate, ratio, table } from '../lib/harness.mjs';
import { connectFanout, measureBurst } from '../lib/sse-client.mjs';

const BURST_EVENTS = 100_000;
const FANOUT_CLIENTS = 500;
const FANOUT_EVENTS = 2_000;
const FANOUT_BATCH = 100;
const FANOUT_WARMUP = 200;
/** rxsse against the hand-written stream, paired per round. */
const GOAL = 0.9;

const require = createRequire(import.meta.url);
const bunPackage = require.resolve('bun/package.json');
const bun = join(dirname(bunPackage), 'bin', 'bun.exe');
const { version } = require('bun/package.json');
const script = fileURLToPath(new URL('../servers/bun.mjs', import.meta.url));

const CONTENDERS = [
  { name: 'rxsse', label: `rxsse · Bun ${version} (@rxsse/web on Bun.serve)` },
  { name: 'hand', label: `Bun ${version}, a hand-written Bun.serve stream (one enqueue per event)` },
];

export const description = [
  `Bun ${version} servers, one process each, clients in this Node process. **burst**: ${BURST_EVENTS.toLocaleString('en-US')} small`,
  `events emitted at once to one client. **fan-out**: ${FANOUT_CLIENTS} clients × ${FANOUT_EVENTS.toLocaleString('en-US')} events from one shared`,
  `Subject (${FANOUT_BATCH} per macrotask). ×hand: median over rounds of the ratio to the hand-written stream.`,
].join('\n');

export const defaults = { rounds: 3 };

export const summary = ({ rounds }) => `${rounds} interleaved rounds per contender, a fresh server each`;

const progress = (line) => process.stderr.write(`  bun: ${line}\n`);

/** Starts `bun servers/bun.mjs <mode>`; resolves to the stream suite's server shape, over HTTP. */
function startBun(mode) {
  const child = spawn(bun, [script, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bun ${mode} exited with ${code}`)));
    child.stdout.once('data', (text) => {
      const port = Number(String(text).trim());
      const request = async (command, args = {}) => {
        const query = new URLSearchParams(args).toString();
        return (await fetch(`http://127.0.0.1:${port}/${command}?${query}`)).json();
      };
      const stop = () => {
        if (child.exitCode !== null) return Promise.resolve();
        const exited = new Promise((done) => child.once('exit', done));
        child.kill();
        return exited;
      };
      resolve({ port, request, stop });
    });
  });
}

async function once(contender) {
  const server = await startBun(contender.name);
  try {
    await measureBurst(server.port, BURST_EVENTS);
    const burst = (await measureBurst(server.port, BURST_EVENTS)).rate;
    const clients = await connectFanout(server, FANOUT_CLIENTS);
    try {
      await clients.measure(FANOUT_WARMUP, FANOUT_BATCH);
      return { burst, fanout: await clients.measure(FANOUT_EVENTS, FANOUT_BATCH) };
    } finally {
      clients.close();
    }
  } finally {
    await server.stop();
  }
}

export async function run({ rounds }) {
  const samples = Object.fromEntries(CONTENDERS.map((c) => [c.name, { burst: [], fanout: [] }]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < CONTENDERS.length; k++) {
      const contender = CONTENDERS[(round + k) % CONTENDERS.length];
      const r = await once(contender);
      samples[contender.name].burst.push(r.burst);
      samples[contender.name].fanout.push(r.fanout);
      progress(
        `round ${round + 1}/${rounds} ${contender.name}: burst ${rate(r.burst)} ev/s, fan-out ${rate(r.fanout)}`,
      );
    }
  }
  const paired = (key) => median(samples.rxsse[key].map((v, i) => v / samples.hand[key][i]));
  const rows = CONTENDERS.map((c) => [
    c.label,
    rate(median(samples[c.name].burst)),
    c.name === 'hand' ? '1.00x' : ratio(paired('burst')),
    rate(median(samples[c.name].fanout)),
    c.name === 'hand' ? '1.00x' : ratio(paired('fanout')),
  ]);
  const goals = ['burst', 'fanout'].map((key) => ({
    name: `bun: ${key} rxsse >= ${GOAL}x the hand-written stream`,
    pass: paired(key) >= GOAL,
    actual: ratio(paired(key)),
  }));
  return {
    markdown: table(['contender', 'burst ev/s', '×hand', 'fan-out deliveries/s', '×hand'], rows),
    goals,
  };
}
