// One app process of the redis suites (started with lib/child.mjs): node:http and @rxsse/node, no
// framework, so the numbers are the channel's. `GET /topic/<name>` streams the channel <name>
// (`?replay`: with a queue that holds a whole replay). The engine: ENGINE=memory, or Redis at
// REDIS_URL or on the cluster REDIS_CLUSTER (comma-separated urls), with PARTITIONS if set.
// Commands: publish at a rate, prefill a topic, count subscribers, report heap and RSS.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { resolveStreamOptions } from '@rxsse/core';
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import { openEventStream } from '@rxsse/node';
import { redisEngine } from '@rxsse/redis';
import { serveParent } from './child.mjs';

const { ENGINE, REDIS_URL, REDIS_CLUSTER, PARTITIONS } = process.env;
const where = REDIS_CLUSTER
  ? { cluster: { rootNodes: REDIS_CLUSTER.split(',').map((url) => ({ url })) } }
  : { url: REDIS_URL };
const partitions = PARTITIONS ? { partitions: Number(PARTITIONS) } : {};
const engine =
  ENGINE === 'memory'
    ? memoryEngine({ maxEvents: 1_000_000, maxBytes: 2 ** 30 })
    : redisEngine({ ...where, ...partitions, maxLength: 1_000_000 });

const channels = new Map();
const channel = (topic) => {
  if (!channels.has(topic))
    channels.set(topic, createChannel(engine, topic, { maxReplay: { events: 1_000_000, bytes: 2 ** 30 } }));
  return channels.get(topic);
};
const live = resolveStreamOptions({ heartbeat: false });
const replay = resolveStreamOptions({ heartbeat: false, maxQueueBytes: 2 ** 30 });
let subscribers = 0;

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
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
 * runs repeat), each `<ms>|` and `size` bytes. Resolves once all settled: stored events per topic.
 */
async function publish({ rate, ms, topics, prefix, size = 0, seed = 1 }) {
  let state = seed * 0x9e3779b1 || 1;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const pad = 'x'.repeat(size);
  const stored = {};
  const pending = [];
  let failed = 0;
  const start = performance.now();
  for (let sent = 0; sent < (ms * rate) / 1000; ) {
    // Catch up on what a late timer missed: the average rate holds under load.
    const due = Math.min((ms * rate) / 1000, Math.floor(((performance.now() - start) * rate) / 1000));
    for (; sent < due; sent++) {
      const topic = `${prefix}${Math.floor(random() * topics)}`;
      const append = engine.append(topic, { data: `${now()}|${pad}` });
      pending.push(
        append.then(
          () => (stored[topic] = (stored[topic] ?? 0) + 1),
          () => failed++,
        ),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const seconds = (performance.now() - start) / 1000;
  await Promise.all(pending);
  return { stored, failed, published: pending.length, seconds };
}

/** Stores `count` events of `size` random bytes in `topic`, 256 in flight; resolves to the first id. */
async function prefill({ topic, count, size }) {
  const payload = () => randomBytes(size / 2).toString('hex');
  const first = await channel(topic).publish({ data: payload() });
  for (let sent = 1; sent < count; sent += 256)
    await Promise.all(
      Array.from({ length: Math.min(256, count - sent) }, () => channel(topic).publish({ data: payload() })),
    );
  return first;
}

function memory() {
  globalThis.gc?.();
  globalThis.gc?.();
  return { heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss };
}

server.listen(0, '127.0.0.1', () =>
  serveParent({ publish, prefill, memory, subscribers: () => subscribers }, { port: server.address().port }),
);
