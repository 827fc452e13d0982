import { encodeEvent } from '@rxsse/core';
import * as h from '../lib/harness.mjs';

// The naive contender does no validation at all: it is the ceiling, the goals say how much of it the
// spec-exact encoder may cost.
export const description = `Events/s turning one message into the bytes of one event block: \`encodeEvent\` vs a
template string + \`TextEncoder\` (no CR/LF/NUL checks, no lone-surrogate repair, no line splitting). ratio:
median over rounds of encodeEvent/naive in the same round; spread: (max - min) / median of the noisier one.`;

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

export async function run({ rounds, events }) {
  // Both contenders must put the same bytes on the wire, or the comparison means nothing.
  for (const { name, messages, naive } of cases) {
    const differs = messages.find((m) => !Buffer.from(encodeEvent(m)).equals(Buffer.from(naive(m))));
    if (differs) throw new Error(`encode/${name}: outputs differ for ${JSON.stringify(differs)}`);
  }
  // A server sends all of these shapes through the one encodeEvent: show it every shape before
  // timing, or the first case measures a monomorphic encoder and the results depend on the order.
  // (Each naive contender is its own function, monomorphic, as a hand-written template would be.)
  for (let i = 0; i < 20; i++) for (const c of cases) for (const m of c.messages) h.consume(encodeEvent(m));
  const rows = [];
  const goals = [];
  for (const c of cases) {
    const contenders = { encodeEvent, naive: c.naive };
    for (const fn of Object.values(contenders)) h.time(fn, c.messages, Math.min(events, 50_000));
    const { encodeEvent: ours, naive } = await h.interleave(Object.keys(contenders), rounds, (name) =>
      h.time(contenders[name], c.messages, events),
    );
    const r = h.pairedRatio(ours, naive);
    const bytes = Math.round(c.messages.reduce((sum, m) => sum + encodeEvent(m).length, 0) / POOL);
    const goal = c.goal && h.atLeast(`encode: ${c.name} >= ${c.goal}x naive`, r, c.goal);
    if (goal) goals.push(goal);
    const noise = `${Math.round(100 * Math.max(h.spread(ours), h.spread(naive)))}%`;
    const verdict = goal ? `${goal.pass ? 'PASS' : 'MISS'} (>= ${c.goal}x)` : 'info';
    rows.push([c.name, bytes, h.rate(h.median(ours)), h.rate(h.median(naive)), h.ratio(r), noise, verdict]);
  }
  const headers = ['case', 'bytes/event', 'encodeEvent ev/s', 'naive ev/s', 'ratio', 'spread', 'goal'];
  return { markdown: h.table(headers, rows), goals };
}
