// kill -9 of the Redis server under two app processes with connected clients, with and without
// persistence: clients end with every event exactly once, or are told what they lost.
import { parseStreamId } from '@rxsse/core/channel';
import { until } from '@rxsse/core/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisServer } from '../../../test/support/redis-server.js';
import { AppProcess, assertBuilt } from './support/apps.js';
import { fetchClient, LiveClient } from './support/sse-clients.js';
import { useRedis } from './support/use-redis.js';

/**
 * A Redis, an Express and a Fastify app on it, and the clients a test opened. Redis starts with the
 * append-only file on; a test that kills it chooses how it comes back.
 */
function cluster(partitions: number | undefined) {
  const redis = useRedis({ persistent: true });
  const state = {
    get redis() {
      return redis.server;
    },
  } as { redis: RedisServer; apps: [AppProcess, AppProcess] };
  const clients: { close(): unknown }[] = [];
  beforeAll(async () => {
    assertBuilt();
    const env = {
      REDIS_URL: redis.server.url,
      TOPIC: 'chaos',
      ...(partitions ? { PARTITIONS: String(partitions) } : {}),
    };
    state.apps = await Promise.all([
      new AppProcess('express', env).start(),
      new AppProcess('fastify', env).start(),
    ]);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await Promise.all(state.apps?.map((app) => app.stop()) ?? []);
  });
  return {
    state,
    /** Two EventSource clients on each app, all connected. */
    async connectClients(): Promise<LiveClient[]> {
      const all = state.apps.flatMap((app) => [0, 1].map(() => new LiveClient(`${app.url}/events`)));
      clients.push(...all);
      await until(() => all.every((c) => c.opens === 1), 'every client connected');
      return all;
    },
    track<T extends { close(): unknown }>(client: T): T {
      clients.push(client);
      return client;
    },
  };
}

/** Publishes `text` through `app` until Redis takes it; returns its id and the errors seen meanwhile. */
async function publishUntilStored(app: AppProcess, text: string, errors: string[]): Promise<string> {
  for (;;) {
    const result = await app.publish(text);
    if (result.status === 200) return result.id!;
    expect(result.status).toBe(503);
    errors.push(result.error!);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The ids of `client`'s events are strictly increasing: none twice, none out of order. */
function expectStrictlyIncreasing(ids: string[]): void {
  for (let i = 1; i < ids.length; i++) {
    const [a, b] = [parseStreamId(ids[i - 1]!)!, parseStreamId(ids[i]!)!];
    expect(a.ms < b.ms || (a.ms === b.ms && a.seq < b.seq), `${ids[i - 1]} then ${ids[i]}`).toBe(true);
  }
}

// Both live paths: one read over every topic, and by partition.
for (const partitions of [undefined, 4]) {
  const mode = partitions ? `, ${partitions} partitions` : '';
  // One Redis and its apps for both kinds of kill: the one with persistence restarts Redis with
  // its data, the one without restarts it empty, as a Redis without persistence comes back.
  const { state, connectClients, track } = cluster(partitions);

  describe(`kill -9 of Redis with the append-only file on (appendfsync always)${mode}`, () => {
    it('every client ends with every event exactly once, and publishing while down fails clearly', async () => {
      const clients = await connectClients();
      const acked: string[] = [];
      const errors: string[] = [];
      let killed = false;
      // Publishing never pauses: the kill lands while publishes are in flight.
      const publisher = (async () => {
        for (let i = 0; i < 60; i++)
          acked.push(await publishUntilStored(state.apps[i % 2]!, `e${i}`, errors));
      })();
      await until(() => acked.length >= 20, 'the first events');
      await state.redis.kill9();
      killed = true;
      // A client resuming while Redis is down: its replay cannot be read, yet it is answered 200 and
      // the stream ends, so it keeps reconnecting (after an error status, EventSource gives up).
      const resumeFrom = acked[9]!;
      const returning = track(new LiveClient(`${state.apps[0].url}/events?lastEventId=${resumeFrom}`));
      await until(() => errors.length >= 2 && returning.opens >= 2, 'publishes failing, resumes retrying');
      expect(returning.seen).toEqual([]);
      await state.redis.restart({ persistent: true });
      await publisher;

      expect(killed).toBe(true);
      for (const error of errors) expect(error).toMatch(/^Redis publish on topic "chaos" failed: /);
      await until(() => clients.every((c) => acked.every((id) => c.ids.includes(id))), 'every stored event');
      const reference = clients[0]!.ids;
      expectStrictlyIncreasing(reference);
      // A publish cut off by the kill may have been stored without its reply: then every client has it.
      const texts = new Set(clients[0]!.seen.map((e) => e.data));
      for (let i = 0; i < 60; i++) expect(texts.has(`e${i}`)).toBe(true);
      for (const client of clients) {
        expect(client.ids).toEqual(reference);
        expect(client.truncations).toEqual([]);
      }
      // Once Redis is back, the resuming client gets exactly what it missed.
      const missed = reference.slice(reference.indexOf(resumeFrom) + 1);
      await until(() => returning.ids.length >= missed.length, 'the resuming client caught up');
      expect(returning.ids).toEqual(missed);
      expect(returning.truncations).toEqual([]);
    });
  });

  describe(`kill -9 of Redis without persistence${mode}`, () => {
    it('tells connected and returning clients what was lost instead of leaving a silent gap', async () => {
      const [express, fastify] = state.apps;
      const clients = await connectClients();
      const before: string[] = [];
      for (let i = 0; i < 10; i++) before.push((await (i % 2 ? fastify : express).publish(`b${i}`)).id!);
      await until(() => clients.every((c) => c.ids.length === 10), 'the events before the kill');

      await state.redis.kill9();
      const down = await express.publish('while down');
      expect(down).toMatchObject({
        status: 503,
        error: expect.stringMatching(/^Redis publish on topic "chaos" failed: /),
      });
      await state.redis.restart({ persistent: false });

      const errors: string[] = [];
      const after: string[] = [];
      for (let i = 0; i < 5; i++)
        after.push(await publishUntilStored(i % 2 ? fastify : express, `a${i}`, errors));
      await until(() => clients.every((c) => after.every((id) => c.ids.includes(id))), 'the events after');
      for (const client of clients) {
        expect(client.seen.map((e) => (e.type === 'message' ? e.lastEventId : e.type))).toEqual([
          ...before,
          'history-truncated',
          ...after,
        ]);
        expect(JSON.parse(client.truncations[0]!.data)).toEqual({
          lastEventId: before.at(-1),
          reason: 'gap',
        });
      }

      // A client that was away comes back with an id Redis no longer has.
      const returning = track(await fetchClient(`${fastify.url}/events`, before[4]));
      expect(returning.response.headers.get('sse-history-truncated')).toBe('true');
      const next = await publishUntilStored(express, 'next', errors);
      await until(() => returning.seen.length === 2, 'signal and live event');
      expect(returning.seen[0]).toMatchObject({ type: 'history-truncated' });
      expect(JSON.parse(returning.seen[0]!.data)).toEqual({ lastEventId: before[4], reason: 'history' });
      expect(returning.ids).toEqual([next]);
    });
  });
}
