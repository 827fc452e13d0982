import { describeValue } from './source.js';

/**
 * Refuses options that are no object of names to values: a collection (an array, a `Map`) passes
 * `typeof`, but carries no option the checks would see, and would run on the defaults unheard.
 * @param what - whose options, for the message: `'options'`, `'shutdown options'`.
 * @throws {TypeError} naming what it got.
 */
export function checkOptionsObject(options: unknown, what = 'options'): asserts options is object {
  if (
    typeof options !== 'object' ||
    options === null ||
    Array.isArray(options) ||
    options instanceof Map ||
    options instanceof Set
  ) {
    throw new TypeError(`${what} must be an object, got ${describeValue(options)}`);
  }
}

/**
 * Refuses an options object's property that no reader of it knows, where the options are given:
 * a misspelt name (`maxQueueByte`) would otherwise run on the default without a word, and
 * TypeScript catches it only in an object literal.
 * @param what - whose options, for the message: `'stream'`, `'redisEngine'`.
 * @param known - every name a reader of `options` takes.
 * @throws {TypeError} naming the first unknown property, and the known one it is likely a slip of
 *   (one or two edits away, or the same but for case).
 */
export function checkOptionNames(what: string, options: object, known: readonly string[]): void {
  for (const [name, value] of Object.entries(options)) {
    // One set to undefined is one left out, as everywhere in the options (a config's blank).
    if (value === undefined || known.includes(name)) continue;
    const near = nearestName(name, known);
    const hint = near === undefined ? '' : ` (did you mean ${JSON.stringify(near)}?)`;
    throw new TypeError(`Unknown ${what} option ${JSON.stringify(name)}${hint}`);
  }
}

/** The known name closest to `name`, if one is at most two edits away (case aside). */
function nearestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    // Two edits turn any two-letter name into any other: no hint is better than a wrong one.
    if (distance < bestDistance && distance < Math.min(name.length, candidate.length)) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit (`maxRpelay`). */
function editDistance(a: string, b: string): number {
  // d[i * w + j]: the distance from a's first i characters to b's first j.
  const w = b.length + 1;
  const d: number[] = [];
  const at = (i: number, j: number) => d[i * w + j] ?? 0;
  for (let i = 0; i <= a.length; i++) {
    for (let j = 0; j <= b.length; j++) {
      if (i === 0 || j === 0) d[i * w + j] = i + j;
      else {
        const cost = a[i - 1] === b[j - 1] ? 0 : 1;
        let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
        if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
          best = Math.min(best, at(i - 2, j - 2) + 1);
        }
        d[i * w + j] = best;
      }
    }
  }
  return at(a.length, b.length);
}
