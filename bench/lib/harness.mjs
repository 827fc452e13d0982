// What every suite shares: interleaved rounds, medians, a sink against dead-code elimination,
// markdown tables, the machine's description, and the small waits.

import { cpus } from 'node:os';

/** Every timed result is folded in here (its length and one byte) and printed, so V8 keeps the work. */
let sinkValue = 0;

export function consume(result) {
  const length = result.length;
  sinkValue = (sinkValue + length + (length > 0 ? result[length >> 1] : 0)) | 0;
}

export const sink = () => sinkValue;

/** date · node · cpu · platform */
export function environment() {
  const cpu = cpus();
  const model = `${cpu[0]?.model ?? 'unknown'} (${cpu.length} threads)`;
  const date = new Date().toISOString().slice(0, 10);
  return `${date} · node ${process.version} · ${model} · ${process.platform}-${process.arch}`;
}

/**
 * A suite's environment knobs: `knobs('STREAM', { stallTrials: 3 })` reads STREAM_STALL_TRIALS. The
 * default's type says how to read a variable: a number, a comma-separated list, or a string.
 */
export function knobs(prefix, defaults) {
  const read = ([key, fallback]) => {
    const value = process.env[`${prefix}_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`];
    if (value === undefined) return [key, fallback];
    if (typeof fallback === 'number') return [key, Number(value)];
    return [key, Array.isArray(fallback) ? value.split(',').map((s) => s.trim()) : value];
  };
  return Object.fromEntries(Object.entries(defaults).map(read));
}

/** Progress goes to stderr, so that stdout is the markdown alone. */
export const progress = (suite) => (line) => process.stderr.write(`  ${suite}: ${line}\n`);

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise that rejects after `ms`, on an unref'd timer that keeps nothing alive. */
export const timeout = (ms, message) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error(message)), ms).unref());

export async function until(check, ms, what, every = 100) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** The median of the finite values (a failed round is NaN); NaN if there are none. */
export function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** (max - min) / median: how far to trust a figure. A busy machine shows here first. */
export function spread(values) {
  const ok = values.filter(Number.isFinite);
  return ok.length > 1 ? (Math.max(...ok) - Math.min(...ok)) / median(ok) : 0;
}

/**
 * The median of a/b within each round: the two ran back to back, so a slow spell mostly cancels out
 * of each round's ratio.
 */
export const pairedRatio = (a, b) => median(a.map((value, round) => value / b[round]));

/**
 * Calls `fn(input)` `events` times, cycling through `inputs`: events per second. Every contender is
 * called from this one call site, after a GC, so neither the loop nor garbage favours any of them.
 */
export function time(fn, inputs, events) {
  globalThis.gc?.();
  const start = process.hrtime.bigint();
  for (let i = 0, j = 0; i < events; i++, j = j + 1 === inputs.length ? 0 : j + 1) consume(fn(inputs[j]));
  return events / (Number(process.hrtime.bigint() - start) / 1e9);
}

/**
 * Runs `measure(name, round)` for every contender, `rounds` times, each round starting from another
 * contender, so drift (JIT, GC, a noisy neighbour) hits all alike. Results by name.
 */
export async function interleave(names, rounds, measure) {
  const samples = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      samples[name].push(await measure(name, round));
    }
  }
  return samples;
}

/** A markdown table; numeric columns are right-aligned. */
export function table(headers, rows) {
  const cells = [headers, ...rows].map((row) => row.map(String));
  const widths = headers.map((_, c) => Math.max(3, ...cells.map((row) => row[c].length)));
  const numeric = headers.map((_, c) =>
    rows.every((row) => typeof row[c] === 'number' || /^[\d.,]+/.test(row[c])),
  );
  const line = (row) =>
    `| ${row.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join(' | ')} |`;
  const rule = `| ${widths.map((w, c) => (numeric[c] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

/** 2345678.9 -> '2,345,679'; not a number -> '–'. */
export const rate = (value) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');

/** 0.873 -> '0.87x'; not a number -> '–'. */
export const ratio = (value) => (Number.isFinite(value) ? `${value.toFixed(2)}x` : '–');

export const atLeast = (name, value, target) => ({ name, pass: value >= target, actual: ratio(value) });
