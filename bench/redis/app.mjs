// One app process of the redis suite (lib/child.mjs): node:http and @rxsse/node, no framework, so
// the numbers are the channel's. `GET /topic/<name>` streams the channel <name> (`?replay`: with a
// queue that holds a whole replay); ENGINE is `memory` or redisEngine's options as JSON. Commands:
// publish at a rate, prefill a topic, count subscribers, report memory.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { resolveStreamOptions } from '@rxsse/core';
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import { openEventStream } from '@rxsse/node';
import { redisEngine } from '@rxsse/redis';
import { serveParent } from '../lib/child.mjs';
import { sleep } from '../lib/harness.mjs';

const { ENGINE } = process.env;
const engine =
  ENGINE === 'memory'
    ? memoryEngine({ maxEvents: 1_000_000, maxBytes: 2 ** 30 })
    : redisEngine({ ...JSON.parse(ENGINE), maxLength: 1_000_000 });
const channel = (topic) => createChannel(engine, topic, { maxReplay: { events: 1_000_000, bytes: 2 ** 30 } });
const live = resolveStreamOptions({ heartbeat: false });
const replay = resolveStreamOptions({ heartbeat: false, maxQueueBytes: 2 ** 30 });
let subscribers = 0;

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const topic = decodeURIComponent(url.pathname.slice('/topic/'.length));
  const produce = async (context) => {
    const source = await channel(topic).subscribe(context);
    subscribers++;
    context.signal.addEventListener('abort', () => subscribers--);
    return source;
  };
  openEventStream(req, res, produce, url.searchParams.has('replay') ? replay : live).catch((error) => {
    res.statusCode = 500;
    res.end(String(error));
  });
});
server.keepAliveTimeout = 0;

// Every event is stamped with the machine's monotonic clock, which every process shares.
const now = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Publishes `rate` events/s for `ms`, spread uniformly over `topics` topics `<prefix><n>` (seeded, so
 * runs repeat), each `<ms>|` and `size` bytes. Resolves once all settled: the events stored per
 * topic, the publishes that failed, and the rate reached.
 */
async function publish({ rate, ms, topics, prefix, size, seed }) {
  let state = seed * 0x9e3779b1 || 1;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const total = (ms * rate) / 1000;
  const pad = 'x'.repeat(size);
  const stored = {};
  const pending = [];
  let failed = 0;
  const start = performance.now();
  for (let sent = 0; sent < total; ) {
    // Catch up on what a late timer missed: the average rate holds under load.
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
    for (; sent < due; sent++) {
      const topic = `${prefix}${Math.floor(random() * topics)}`;
      const store = () => (stored[topic] = (stored[topic] ?? 0) + 1);
      pending.push(engine.append(topic, { data: `${now()}|${pad}` }).then(store, () => failed++));
    }
    await sleep(5);
  }
  const seconds = (performance.now() - start) / 1000;
  await Promise.all(pending);
  return { stored, failed, rate: pending.length / seconds };
}

/** Stores `count` events of `size` random bytes in `topic`, 256 in flight; resolves to the first id. */
async function prefill({ topic, count, size }) {
  const into = channel(topic);
  const store = () => into.publish({ data: randomBytes(size / 2).toString('hex') });
  const first = await store();
  for (let sent = 1; sent < count; sent += 256)
    await Promise.all(Array.from({ length: Math.min(256, count - sent) }, store));
  return first;
}

function memory() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage();
}

server.listen(0, '127.0.0.1', () =>
  serveParent({ publish, prefill, memory, subscribers: () => subscribers }, { port: server.address().port }),
);
