// The SSE clients of the redis suite, in a process of their own (lib/child.mjs) so that their
// parsing is nobody else's CPU. Each event's data starts with its publish time on the monotonic clock
// (app.mjs): latency is recorded in 0.1 ms buckets while measuring. Every connection checks
// that its topic's ids only increase (an event twice or out of order would not).

import { serveParent } from '../lib/child.mjs';
import { open, parseEvents } from '../lib/client.mjs';

const BUCKET_MS = 0.1;
const histogram = new Uint32Array(200_000); // up to 20 s
let measuring = false;
let deliveries = 0;
const connections = [];
const now = () => Number(process.hrtime.bigint()) / 1e6;

function after(a, b) {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}

function connect({ port, topic }) {
  const connection = { topic, received: 0, disorder: 0, last: '0-0' };
  const read = parseEvents((event) => {
    const at = now();
    if (!after(event.id, connection.last)) connection.disorder++;
    connection.last = event.id;
    connection.received++;
    if (!measuring) return;
    deliveries++;
    const sent = Number(event.data.slice(0, event.data.indexOf('|')));
    histogram[Math.min(histogram.length - 1, Math.round((at - sent) / BUCKET_MS))]++;
  });
  connection.client = open(port, `/topic/${topic}`, { read });
  connections.push(connection);
  return connection.client.response;
}

const quantile = (q) => {
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i];
    if (seen > 0 && seen >= q * deliveries) return i * BUCKET_MS;
  }
  return Number.NaN;
};

serveParent({
  /** Opens one connection per target, 250 at a time (a burst of SYNs overflows the backlog). */
  async connect({ targets }) {
    for (let i = 0; i < targets.length; i += 250) await Promise.all(targets.slice(i, i + 250).map(connect));
  },
  measure({ on }) {
    if (on) {
      histogram.fill(0);
      deliveries = 0;
    }
    measuring = on;
  },
  /** `stored`: the events each publisher stored per topic. Every connection must have its topic's, once. */
  report({ stored }) {
    const totals = { missing: 0, extra: 0, disorder: 0 };
    for (const c of connections) {
      const expected = stored.reduce((n, topics) => n + (topics[c.topic] ?? 0), 0);
      totals.missing += Math.max(0, expected - c.received);
      totals.extra += Math.max(0, c.received - expected);
      totals.disorder += c.disorder;
    }
    const max = histogram.findLastIndex((n) => n > 0) * BUCKET_MS;
    return { ...totals, deliveries, p50: quantile(0.5), p99: quantile(0.99), max };
  },
  close() {
    for (const c of connections.splice(0)) c.client.close();
  },
});
