// Shared machinery for the suites: interleaved timing, medians, a sink against dead-code
// elimination and markdown tables. Suites describe what to compare; this file decides how to time it.

import { cpus } from 'node:os';

/**
 * Everything a timed function returns is folded into this value, and run.mjs prints it at the end,
 * so V8 cannot prove a result unused and drop the work that produced it.
 */
let sinkValue = 0;

/** Fold one result into the sink: its length and one byte of it (so the bytes must really exist). */
export function consume(result) {
  const length = result.length;
  sinkValue = (sinkValue + length + (length > 0 ? result[length >> 1] : 0)) | 0;
}

export function sink() {
  return sinkValue;
}

/** The machine a table was measured on, printed above every run. */
export function environment() {
  const cpu = cpus();
  return {
    date: new Date().toISOString().slice(0, 10),
    node: process.version,
    cpu: `${cpu[0]?.model ?? 'unknown'} (${cpu.length} threads)`,
    platform: `${process.platform}-${process.arch}`,
  };
}

const gc = globalThis.gc ?? (() => {});

/**
 * Calls `fn(input)` `events` times, cycling through `inputs`, and returns events per second. Every
 * contender is called from this one call site, the same way (no wrapper closures that V8 could
 * inline for one contender and not another), so the loop's overhead cancels out of the ratios.
 */
function time(fn, inputs, events) {
  // Collect garbage left over from the previous contender, so nobody pays for someone else's.
  gc();
  const n = inputs.length;
  const start = process.hrtime.bigint();
  for (let i = 0, j = 0; i < events; i++) {
    consume(fn(inputs[j]));
    if (++j === n) j = 0;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return events / seconds;
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Times every contender of one case `rounds` times, interleaved: round r runs all contenders once,
 * starting from a different one each round, so that drift (thermal, GC, JIT tiering, a noisy
 * neighbour) hits all of them alike instead of whichever happened to run last.
 *
 * @param {Record<string, (input: any) => ArrayLike<number>>} contenders
 * @param {{ inputs: any[], rounds: number, events: number, warmup?: number }} options
 * @returns {Record<string, { median: number, min: number, max: number, samples: number[] }>} events
 *   per second; `samples[r]` is round r's
 */
export function compare(contenders, { inputs, rounds, events, warmup = Math.min(events, 50_000) }) {
  const names = Object.keys(contenders);
  // Warm-up: let every contender reach optimized code before anything is recorded.
  for (const name of names) time(contenders[name], inputs, warmup);
  const samples = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      samples[name].push(time(contenders[name], inputs, events));
    }
  }
  return Object.fromEntries(
    names.map((name) => [
      name,
      {
        median: median(samples[name]),
        min: Math.min(...samples[name]),
        max: Math.max(...samples[name]),
        samples: samples[name],
      },
    ]),
  );
}

/**
 * How fast `a` is relative to `b`: the median over rounds of a's rate / b's rate in the same round.
 * The two ran back to back, so a slow spell (another process on the machine) mostly cancels out of
 * each round's ratio, which a ratio of the two overall medians would not do.
 */
export function pairedRatio(a, b) {
  return median(a.samples.map((rate, round) => rate / b.samples[round]));
}

/** A markdown table; numbers are right-aligned. */
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

/** 2345678.9 -> '2,345,679' */
export function rate(eventsPerSecond) {
  return Math.round(eventsPerSecond).toLocaleString('en-US');
}

/** A ratio to two decimals with an `x`: 0.873 -> '0.87x'. */
export function ratio(value) {
  return `${value.toFixed(2)}x`;
}
