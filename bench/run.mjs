// Benchmark entry point: `node --expose-gc run.mjs [suite ...] [--rounds=N] [--events=N]`.
// Every file in suites/ is a suite; with no names given, all of them run, in name order.
// A suite exports `description` and `run({ rounds, events })`, which returns (or resolves to)
// `{ markdown, goals: [{ name, pass, actual }] }`. It may export `defaults` ({ rounds, events })
// that replace the global ones for it (flags given on the command line win over both), and
// `summary(options)`, the line printed above its table. Goals are
// reported, never thrown: a miss is information for whoever reads the table, not a failure of the run.

import { readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { environment, sink, table } from './lib/harness.mjs';

const suitesDir = fileURLToPath(new URL('./suites/', import.meta.url));
const available = readdirSync(suitesDir)
  .filter((file) => file.endsWith('.mjs'))
  .map((file) => basename(file, '.mjs'))
  .sort();

const defaults = { rounds: 9, events: 200_000 };
const flags = {};
const wanted = [];
for (const arg of process.argv.slice(2)) {
  const flag = /^--(rounds|events)=(\d+)$/.exec(arg);
  if (flag) flags[flag[1]] = Number(flag[2]);
  else if (arg === '--help' || arg === '-h') {
    console.log(
      `usage: node --expose-gc run.mjs [suite ...] [--rounds=N] [--events=N]\nsuites: ${available.join(', ')}`,
    );
    process.exit(0);
  } else wanted.push(arg);
}
const unknown = wanted.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
if (flags.rounds < 5) console.warn(`note: ${flags.rounds} rounds; medians need at least 5 to mean much`);
if (globalThis.gc === undefined)
  console.warn('note: run with --expose-gc so each timed run starts from a clean heap');

const env = environment();
console.log('# rxsse benchmarks\n');
console.log(`date: ${env.date} · node: ${env.node} · cpu: ${env.cpu} · ${env.platform}\n`);

const goals = [];
for (const name of wanted.length > 0 ? wanted : available) {
  const suite = await import(new URL(`./suites/${name}.mjs`, import.meta.url).href);
  const options = { ...defaults, ...suite.defaults, ...flags };
  const result = await suite.run(options);
  const shape =
    suite.summary?.(options) ??
    `${options.rounds} interleaved rounds of ${options.events.toLocaleString('en-US')} events per contender; medians shown`;
  console.log(`## ${name}\n\n${suite.description}\n\n${shape}\n\n${result.markdown}\n`);
  goals.push(...result.goals);
}

if (goals.length > 0) {
  console.log('## goals\n');
  console.log(
    table(
      ['goal', 'actual', 'result'],
      goals.map((g) => [g.name, g.actual, g.pass ? 'PASS' : 'MISS']),
    ),
  );
  const missed = goals.filter((g) => !g.pass).length;
  console.log(`\n${goals.length - missed}/${goals.length} goals met`);
}
// Printing the sink makes every timed result observable (see lib/harness.mjs).
console.log(`\n<!-- sink ${sink()} -->`);
