// encodeEvent against the hand-written template a user would otherwise reach for. The naive
// contenders do no validation at all (no CR/LF/NUL checks, no lone-surrogate repair, no line
// splitting), so they are the ceiling: the goals say how much of it the spec-exact encoder may cost.

import { encodeEvent } from '@rxsse/core';
import { compare, consume, pairedRatio, rate, ratio, table } from '../lib/harness.mjs';

export const description = [
  'Events/s turning one message into the bytes of one event block: `encodeEvent` vs a template string',
  '+ `TextEncoder` (no validation). ratio: median over rounds of encodeEvent/naive in the same round;',
  'spread: (max - min) / median of the noisier contender.',
].join('\n');

const utf8 = new TextEncoder();

// Inputs are built before timing, so neither contender pays for them, and the timing loop cycles
// through 1024 distinct messages, so no contender can be specialized for one constant value.
const POOL = 1024;
const pool = (make) => Array.from({ length: POOL }, (_, i) => make(i));
const T0 = Date.UTC(2025, 0, 1);

const cases = [
  {
    name: 'single-line string',
    goal: 0.8,
    messages: pool((i) => ({ data: `tick ${i} at ${T0 + i * 1000}: all systems nominal` })),
    naive: (m) => utf8.encode(`data: ${m.data}\n\n`),
  },
  {
    name: 'object (JSON)',
    goal: 0.9,
    messages: pool((i) => ({ data: { hello: 'world', n: i, ts: T0 + i * 1000 } })),
    naive: (m) => utf8.encode(`data: ${JSON.stringify(m.data)}\n\n`),
  },
  {
    // Informational: the naive version joins lines with `data: ` the usual way.
    name: 'multi-line string (3 lines)',
    messages: pool((i) => ({ data: `line one of ${i}\nline two at ${T0 + i}\nline three, the end` })),
    naive: (m) => utf8.encode(`data: ${m.data.replaceAll('\n', '\ndata: ')}\n\n`),
  },
  {
    name: 'object + id + type',
    messages: pool((i) => ({
      type: 'tick',
      id: String(1000 + i),
      data: { hello: 'world', n: i, ts: T0 + i * 1000 },
    })),
    naive: (m) => utf8.encode(`event: ${m.type}\nid: ${m.id}\ndata: ${JSON.stringify(m.data)}\n\n`),
  },
  {
    // Informational: a bigger payload (~1 KB of JSON) shows the per-byte costs rather than per-call.
    name: 'object ~1 KB (JSON)',
    messages: pool((i) => ({
      data: {
        id: i,
        ts: T0 + i * 1000,
        user: { name: `user-${i}`, email: `user${i}@example.com`, roles: ['reader', 'writer'] },
        items: Array.from({ length: 8 }, (_, k) => ({ sku: `SKU-${i}-${k}`, qty: k + 1, price: 9.99 * k })),
        note: 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.',
      },
    })),
    naive: (m) => utf8.encode(`data: ${JSON.stringify(m.data)}\n\n`),
  },
];

/** Both contenders must put the same bytes on the wire, or the comparison means nothing. */
function checkSameOutput({ name, messages, naive }) {
  for (const m of messages) {
    const ours = Buffer.from(encodeEvent(m));
    const theirs = Buffer.from(naive(m));
    if (!ours.equals(theirs)) {
      throw new Error(
        `encode/${name}: outputs differ:\n${JSON.stringify(String(ours))}\n${JSON.stringify(String(theirs))}`,
      );
    }
  }
}

/** (max - min) / median over the rounds: how far to trust a ratio. A busy machine shows here first. */
const spread = ({ median, min, max }) => (max - min) / median;

export function run({ rounds, events }) {
  const rows = [];
  const goals = [];
  // A server sends all of these shapes through the one encodeEvent, so its call sites are
  // polymorphic in real use. Show it every shape before timing anything: otherwise the first case
  // measures a monomorphic encoder and later ones pay for deoptimizing it, and results would
  // depend on the order of the cases. (Each naive contender is its own function, monomorphic,
  // as the hand-written template at one call site would be.)
  for (const c of cases) checkSameOutput(c);
  for (let i = 0; i < 20; i++) for (const c of cases) for (const m of c.messages) consume(encodeEvent(m));
  for (const c of cases) {
    const { messages, naive } = c;
    // encodeEvent is passed as is (its optional second argument stays undefined).
    const result = compare({ encodeEvent, naive }, { inputs: messages, rounds, events });
    const r = pairedRatio(result.encodeEvent, result.naive);
    const bytes = Math.round(messages.reduce((sum, m) => sum + encodeEvent(m).length, 0) / POOL);
    let verdict = 'info';
    if (c.goal !== undefined) {
      const pass = r >= c.goal;
      verdict = `${pass ? 'PASS' : 'MISS'} (>= ${c.goal}x)`;
      goals.push({ name: `encode: ${c.name} >= ${c.goal}x naive`, pass, actual: ratio(r) });
    }
    rows.push([
      c.name,
      bytes,
      rate(result.encodeEvent.median),
      rate(result.naive.median),
      ratio(r),
      `${Math.round(100 * Math.max(spread(result.encodeEvent), spread(result.naive)))}%`,
      verdict,
    ]);
  }
  const markdown = table(
    ['case', 'bytes/event', 'encodeEvent ev/s', 'naive ev/s', 'ratio', 'spread', 'goal'],
    rows,
  );
  return { markdown, goals };
}
