import { createRequire } from 'node:module';
import { startChild } from '../lib/child.mjs';
import * as h from '../lib/harness.mjs';
import { throughputRounds } from '../stream/index.mjs';

const GOAL = 0.9;
const { version } = createRequire(import.meta.url)('bun/package.json');
const CONTENDERS = {
  rxsse: `rxsse · Bun ${version} (@rxsse/web on Bun.serve)`,
  hand: `Bun ${version}, a hand-written Bun.serve stream (one enqueue per event)`,
};

export const description = `Bun ${version} servers, one process each, clients in this Node process: the stream suite's **burst**
and **fan-out**. ×hand: median over rounds of the ratio to the hand-written stream in the same round.`;

export const defaults = { rounds: 3 };

export const summary = ({ rounds }) => `${rounds} interleaved rounds per contender, a fresh server each`;

const start = (mode) => startChild(new URL('./server.mjs', import.meta.url), { args: [mode], bun: true });

export async function run({ rounds }) {
  const samples = await throughputRounds('bun', Object.keys(CONTENDERS), rounds, start);
  const of = (mode, key) => samples[mode].map((r) => r[key]);
  const paired = (mode, key) => (mode === 'hand' ? 1 : h.pairedRatio(of('rxsse', key), of('hand', key)));
  const rows = Object.entries(CONTENDERS).map(([mode, label]) => [
    label,
    ...['burst', 'fanout'].flatMap((key) => [h.rate(h.median(of(mode, key))), h.ratio(paired(mode, key))]),
  ]);
  const goal = (key) =>
    h.atLeast(`bun: ${key} rxsse >= ${GOAL}x the hand-written stream`, paired('rxsse', key), GOAL);
  const headers = ['contender', 'burst ev/s', '×hand', 'fan-out deliveries/s', '×hand'];
  return { markdown: h.table(headers, rows), goals: ['burst', 'fanout'].map(goal) };
}
