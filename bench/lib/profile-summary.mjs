// Summarizes a V8 .cpuprofile (from `node --cpu-prof`, see STREAM_CPU_PROF in suites/stream.mjs):
// the functions with the most self time, and the most inclusive time, as markdown tables.
//   node lib/profile-summary.mjs FILE.cpuprofile [--top=N] [--match=REGEX]
// `--match` keeps only the samples whose stack has a frame matching REGEX (function or URL), to
// look at one workload's share of a profile that also covers start-up.

import { readFileSync } from 'node:fs';
import { table } from './harness.mjs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
const top = Number(/--top=(\d+)/.exec(args.join(' '))?.[1] ?? 25);
const match = /--match=(\S+)/.exec(args.join(' '))?.[1];
if (!file) {
  console.error('usage: node lib/profile-summary.mjs FILE.cpuprofile [--top=N] [--match=REGEX]');
  process.exit(2);
}

const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const short = (url) =>
  url
    .replace(/^file:\/\/.*\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, '')
    .replace(/^file:\/\/\/work\/main\//, '');
const label = ({ callFrame: f }) =>
  `${f.functionName || '(anonymous)'} ${f.url ? `${short(f.url)}:${f.lineNumber + 1}` : ''}`.trim();
const pattern = match ? new RegExp(match) : undefined;

// Time per sample: the gap to the next one.
const deltas = profile.timeDeltas;
const self = new Map();
const inclusive = new Map();
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = (deltas[i + 1] ?? 0) / 1000;
  const stack = [];
  for (let id = profile.samples[i]; id !== undefined; id = parent.get(id)) stack.push(nodes.get(id));
  if (pattern && !stack.some((n) => pattern.test(label(n)))) continue;
  total += dt;
  const leaf = label(stack[0]);
  self.set(leaf, (self.get(leaf) ?? 0) + dt);
  for (const name of new Set(stack.map(label))) inclusive.set(name, (inclusive.get(name) ?? 0) + dt);
}

const rows = (map) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, ms]) => [name, ms.toFixed(1), `${((100 * ms) / total).toFixed(1)}%`]);
console.log(`${file}: ${total.toFixed(0)} ms sampled${match ? ` (stacks matching /${match}/)` : ''}\n`);
console.log(`### self time\n\n${table(['function', 'ms', 'share'], rows(self))}\n`);
console.log(`### inclusive time\n\n${table(['function', 'ms', 'share'], rows(inclusive))}`);
