// Runs the named suites (folders with an index.mjs; all, in name order, by default): see README.md.
// A suite exports `description`, `run(options)` → `{ markdown, goals }`, optionally `defaults` and
// `summary(options)`. Goals are reported, never thrown: a miss is information, not a failure.

import { existsSync, readdirSync } from 'node:fs';
import { environment, sink, table } from './lib/harness.mjs';

const here = (path) => new URL(path, import.meta.url);
const available = readdirSync(here('./'))
  .filter((name) => existsSync(here(`./${name}/index.mjs`)))
  .sort();

const flags = {};
const wanted = [];
for (const arg of process.argv.slice(2)) {
  const flag = /^--(rounds|events)=(\d+)$/.exec(arg);
  if (flag) flags[flag[1]] = Number(flag[2]);
  else wanted.push(arg);
}
const unknown = wanted.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  const usage = 'usage: node --expose-gc run.mjs [suite ...] [--rounds=N] [--events=N]';
  console.error(`${usage}\nsuites: ${available.join(', ')}`);
  process.exit(unknown.every((arg) => arg === '--help' || arg === '-h') ? 0 : 2);
}
if (flags.rounds < 5) console.warn(`note: ${flags.rounds} rounds; medians need at least 5 to mean much`);
if (!globalThis.gc) console.warn('note: run with --expose-gc so each timed run starts from a clean heap');

console.log(`# rxsse benchmarks\n\n${environment()}\n`);
const goals = [];
for (const name of wanted.length > 0 ? wanted : available) {
  const suite = await import(here(`./${name}/index.mjs`).href);
  const options = { rounds: 9, events: 200_000, ...suite.defaults, ...flags };
  const result = await suite.run(options);
  const shape =
    suite.summary?.(options) ??
    `${options.rounds} interleaved rounds of ${options.events.toLocaleString('en-US')} events per contender; medians shown`;
  console.log(`## ${name}\n\n${suite.description}\n\n${shape}\n\n${result.markdown}\n`);
  goals.push(...result.goals);
}

if (goals.length > 0) {
  const rows = goals.map((g) => [g.name, g.actual, g.pass ? 'PASS' : 'MISS']);
  const met = goals.filter((g) => g.pass).length;
  console.log(`## goals\n\n${table(['goal', 'actual', 'result'], rows)}\n\n${met}/${goals.length} goals met`);
}
console.log(`\n<!-- sink ${sink()} -->`);
