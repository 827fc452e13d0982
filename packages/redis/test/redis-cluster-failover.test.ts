// kill -9 of a Redis Cluster master while events flow: delivery resumes on the promoted replica,
// nothing arrives twice, every publish settles, and whatever the cluster lost is signalled. And a
// master frozen for good (SIGSTOP): publishes on its slots succeed once its replica is promoted.
import { compareStreamIds, parseStreamId, type StoredMessage } from '@rxsse/core/channel';
import { until } from '@rxsse/core/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisEngineError } from '../src/index.js';
import { PartitionLayout, slotOf } from '../src/partition.js';
import { AppProcess, assertBuilt } from './support/apps.js';
import { LiveClient } from './support/sse-clients.js';
import { connected, useRedisCluster } from './support/use-redis.js';

const PARTITIONS = 6;
const layout = new PartitionLayout('sse:', PARTITIONS);
const slotOfTopic = (topic: string) => slotOf(/\{(.*)\}/.exec(layout.topicKey(topic))![1]!);

describe('three engines in one process', () => {
  const redis = useRedisCluster({
    defaults: { partitions: PARTITIONS, blockMs: 100, commandTimeoutMs: 500 },
  });
  const { engine } = redis;

  it('resumes delivery after the promotion, nothing twice, every loss signalled', async () => {
    const topics = Array.from({ length: 12 }, (_, i) => `user-${i}`);

    // Three subscribing engines, as three app processes would have, every topic on each.
    const logs = new Map<string, (StoredMessage | 'gap')[]>();
    for (let app = 0; app < 3; app++) {
      const subscriber = engine();
      // Connected first: the 500 ms timeout is for the failover, not a busy machine's first connect.
      await connected(subscriber);
      for (const topic of topics) {
        const log: (StoredMessage | 'gap')[] = [];
        logs.set(`${app} ${topic}`, log);
        await subscriber.listen(topic, { event: (m) => log.push(m), gap: () => log.push('gap') });
      }
    }

    // One publishing loop per topic, so a topic whose master is gone holds up no other.
    const publisher = engine();
    await connected(publisher);
    const acknowledged = new Map<string, { id: string; at: number }[]>(topics.map((t) => [t, []]));
    const rejected: unknown[] = [];
    let publishing = true;
    let published = 0;
    const loops = topics.map(async (topic) => {
      while (publishing) {
        published++;
        await publisher.append(topic, { data: `m${published}` }).then(
          (id) => acknowledged.get(topic)!.push({ id, at: Date.now() }),
          (error: unknown) => rejected.push(error),
        );
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
    await until(() => published > 200, 'events before the kill', 10_000);

    const victim = await redis.cluster.masterOf(slotOfTopic(topics[0]!));
    await redis.cluster.kill9(victim);
    await redis.cluster.failedOver(victim);
    const promotedAt = Date.now();
    // Resumed: every subscriber has an event of every topic acknowledged after the promotion.
    const deliveredSince = (app: number, topic: string, since: number) => {
      const ids = new Set(
        acknowledged
          .get(topic)!
          .filter((a) => a.at > since)
          .map((a) => a.id),
      );
      return logs.get(`${app} ${topic}`)!.some((e) => e !== 'gap' && ids.has(e.id));
    };
    await until(
      () => topics.every((topic) => [0, 1, 2].every((app) => deliveredSince(app, topic, promotedAt))),
      'delivery after the promotion',
      10_000,
    );
    const resumedMs = Date.now() - promotedAt;
    publishing = false;
    await Promise.all(loops);
    // Whatever was acknowledged has arrived once each topic's last acknowledged event has: a reader
    // delivers a topic's events in order, and the last were published on the promoted replica.
    const last = (topic: string) => acknowledged.get(topic)!.at(-1)!.id;
    await until(
      () =>
        topics.every((topic) =>
          [0, 1, 2].every((app) =>
            logs.get(`${app} ${topic}`)!.some((e) => e !== 'gap' && e.id === last(topic)),
          ),
        ),
      "every topic's last event everywhere",
    );

    let lost = 0;
    let twice = 0;
    for (const topic of topics) {
      const acked = acknowledged.get(topic)!.map((a) => a.id);
      for (let app = 0; app < 3; app++) {
        const log = logs.get(`${app} ${topic}`)!;
        const ids = log.filter((e) => e !== 'gap').map((e) => e.id);
        twice += ids.length - new Set(ids).size;
        // An acknowledged event that never arrived was lost by the cluster: a gap must say so.
        const missing = acked.filter((id) => !ids.includes(id)).length;
        lost += missing;
        if (missing > 0) expect(log, `${app} ${topic}: ${missing} lost silently`).toContain('gap');
      }
    }
    console.log(
      `failover: delivery resumed ${resumedMs} ms after the promotion; ${published} publishes, ` +
        `${rejected.length} rejected, ${lost} acknowledged deliveries lost (signalled), ${twice} twice`,
    );
    expect(twice).toBe(0);
    for (const error of rejected) expect(error).toBeInstanceOf(RedisEngineError);
  }, 60_000);
});

describe('three app processes with EventSource clients', () => {
  const redis = useRedisCluster();
  const apps: AppProcess[] = [];
  const clients: LiveClient[] = [];
  beforeAll(async () => {
    assertBuilt();
    const env = {
      REDIS_CLUSTER: redis.cluster.rootNodes.map((node) => node.url).join(','),
      TOPIC: 'failover',
      PARTITIONS: String(PARTITIONS),
      COMMAND_TIMEOUT_MS: '500',
    };
    apps.push(
      ...(await Promise.all(
        (['express', 'fastify', 'express'] as const).map((framework) =>
          new AppProcess(framework, env).start(),
        ),
      )),
    );
  }, 30_000);
  afterAll(async () => {
    for (const client of clients) client.close();
    await Promise.all(apps.map((app) => app.stop()));
  });

  it('the clients of every app get every event once, or a truncation event for what was lost', async () => {
    clients.push(...apps.flatMap((app) => [0, 1].map(() => new LiveClient(`${app.url}/events`))));
    await until(() => clients.every((c) => c.opens === 1), 'every client connected');

    const acknowledged: { id: string; at: number }[] = [];
    const failures: string[] = [];
    let publishing = true;
    let published = 0;
    // One publisher per app, each through its own engine.
    const loops = apps.map(async (app) => {
      while (publishing) {
        const result = await app.publish(`m${published++}`);
        if (result.status === 200) acknowledged.push({ id: result.id!, at: Date.now() });
        else failures.push(`${result.status} ${result.error}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
    await until(() => acknowledged.length > 100, 'events before the kill', 10_000);

    const victim = await redis.cluster.masterOf(slotOfTopic('failover'));
    await redis.cluster.kill9(victim);
    await redis.cluster.failedOver(victim);
    const promotedAt = Date.now();
    await until(
      () => {
        const since = new Set(acknowledged.filter((a) => a.at > promotedAt).map((a) => a.id));
        return clients.every((client) => client.ids.some((id) => since.has(id)));
      },
      'delivery after the promotion',
      10_000,
    );
    const resumedMs = Date.now() - promotedAt;
    publishing = false;
    await Promise.all(loops);
    const last = acknowledged
      .map((a) => a.id)
      .sort(byStreamId)
      .at(-1)!;
    await until(() => clients.every((client) => client.ids.includes(last)), 'the last event everywhere');

    for (const failure of failures)
      expect(failure).toMatch(/^503 Redis publish on topic "failover" failed: /);
    let lost = 0;
    for (const client of clients) {
      expect(new Set(client.ids).size, 'an event twice').toBe(client.ids.length);
      const missing = acknowledged.filter((a) => !client.ids.includes(a.id)).length;
      lost += missing;
      if (missing > 0) expect(client.truncations.length, `${missing} lost silently`).toBeGreaterThan(0);
    }
    console.log(
      `failover, 3 apps: delivery resumed ${resumedMs} ms after the promotion; ${published} publishes, ` +
        `${failures.length} rejected, ${lost} acknowledged deliveries lost (signalled)`,
    );
  }, 60_000);
});

describe('a master frozen for good', () => {
  const redis = useRedisCluster({ defaults: { commandTimeoutMs: 500 } });

  it('publishes on its slots succeed once its replica is promoted, whichever node a reread asks first', async () => {
    // Topics keyed `sse:{topic}` (no partitions): one served by the master of slot 0, which is the
    // first of node-redis's known masters.
    const victim = await redis.cluster.masterOf(0);
    const topic = Array.from({ length: 100 }, (_, i) => `room-${i}`).find((t) => slotOf(t) < 100)!;
    expect(await redis.cluster.masterOf(slotOf(topic))).toBe(victim);
    const errors: unknown[] = [];
    const publisher = redis.engine({
      cluster: { rootNodes: redis.cluster.rootNodes, topologyRefreshMs: 200 },
      onError: (error) => errors.push(error),
    });
    await connected(publisher);
    await publisher.append(topic, { data: 'before' });

    // node-redis rereads the slot map starting at a random known node: the first one here, the
    // frozen master, which answers nothing.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0);
    try {
      redis.cluster.freeze(victim);
      await redis.cluster.failedOver(victim);
      const promotedAt = Date.now();
      let failures = 0;
      for (;;) {
        const published = await publisher.append(topic, { data: 'after' }).catch(() => undefined);
        if (published !== undefined) break;
        failures++;
        if (Date.now() - promotedAt > 15_000)
          throw new Error(`${failures} publishes failed since the promotion`);
      }
      // The checks that asked the frozen master were reported.
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      random.mockRestore();
    }
  }, 60_000);
});

function byStreamId(a: string, b: string): number {
  return compareStreamIds(parseStreamId(a)!, parseStreamId(b)!);
}
