// One app process of the redis-topics suite (forked by redis-topics-run.mjs): one Redis engine, a
// channel per topic, and one subscription per simulated client, as an SSE route would hold it. It
// records publish-to-receive latency (the publisher stamps each event with the shared clock) in
// 0.1 ms buckets, and checks every client gets each event of its topic once, in order.

import { createChannel } from '@rxsse/core';
import { redisEngine } from '@rxsse/redis';

const { REDIS_URL, PARTITIONS } = process.env;
const BUCKET_MS = 0.1;
const histogram = new Uint32Array(200_000); // up to 20 s
let measuring = false;
let deliveries = 0;
const clock = () => performance.timeOrigin + performance.now();

const engine = redisEngine({
  url: REDIS_URL,
  ...(PARTITIONS === '0' ? {} : { partitions: Number(PARTITIONS) }),
});

/** Per client: its topic's index, events received, and out-of-order or repeated ones. */
const clients = [];

process.on('message', async (message) => {
  if (message.type === 'subscribe') {
    const channels = new Map();
    await Promise.all(
      message.topics.map(async (topic) => {
        if (!channels.has(topic)) channels.set(topic, createChannel(engine, `user-${topic}`));
        const channel = channels.get(topic);
        const client = { topic, received: 0, repeated: 0, last: -1 };
        clients.push(client);
        const source = await channel.subscribe({});
        source.subscribe({
          next: (event) => {
            const { t, s } = event.data;
            if (s <= client.last) client.repeated++;
            client.last = s;
            client.received++;
            if (!measuring) return;
            deliveries++;
            histogram[Math.min(histogram.length - 1, Math.round((clock() - t) / BUCKET_MS))]++;
          },
        });
      }),
    );
    process.send({ type: 'subscribed' });
  } else if (message.type === 'measure') {
    measuring = message.on;
    process.send({ type: 'measuring' });
  } else if (message.type === 'report') {
    // Published counts per topic index: every client must have received exactly its topic's.
    const published = message.published;
    let missing = 0;
    let extra = 0;
    let repeated = 0;
    for (const client of clients) {
      const expected = published[client.topic] ?? 0;
      if (client.received < expected) missing += expected - client.received;
      else extra += client.received - expected;
      repeated += client.repeated;
    }
    await engine.close();
    const report = { type: 'report', histogram: Array.from(histogram), deliveries, missing, extra, repeated };
    // Exits once the report is written, not before.
    process.send(report, () => process.exit(0));
  }
});
process.send({ type: 'ready' });
