import { until } from '@rxsse/core/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AppProcess, assertBuilt } from './support/apps.js';
import { fetchClient, LiveClient } from './support/sse-clients.js';
import { useRedis } from './support/use-redis.js';

const redis = useRedis();
let express: AppProcess;
let fastify: AppProcess;
const clients: { close(): unknown }[] = [];

beforeAll(async () => {
  assertBuilt();
  const env = { REDIS_URL: redis.server.url, TOPIC: 'scale' };
  [express, fastify] = await Promise.all([
    new AppProcess('express', env).start(),
    new AppProcess('fastify', env).start(),
  ]);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});
afterAll(async () => {
  await Promise.all([express?.stop(), fastify?.stop()]);
});

const live = (app: AppProcess) => {
  const client = new LiveClient(`${app.url}/events`);
  clients.push(client);
  return client;
};

/** Publishes through `app`, expecting success. */
async function publish(app: AppProcess, text: string): Promise<string> {
  const result = await app.publish(text);
  expect(result, `publish ${text} via ${app.framework}`).toMatchObject({ status: 200 });
  return result.id!;
}

describe('two app processes on one Redis', () => {
  it('deliver an event published on either to clients of both, once, in order', async () => {
    const all = [live(express), live(express), live(fastify), live(fastify)];
    await until(() => all.every((c) => c.opens === 1), 'every client connected');
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await publish(i % 2 ? fastify : express, `m${i}`));
    await until(() => all.every((c) => c.ids.length >= 40), 'every event at every client');
    for (const client of all) {
      expect(client.ids).toEqual(ids);
      expect(client.seen.map((e) => e.data)).toEqual(ids.map((_, i) => `m${i}`));
    }
  });

  it('replay exactly what a client missed when it comes back to the other app, then go live', async () => {
    const first = await fetchClient(`${express.url}/events`);
    clients.push(first);
    const seen = [await publish(fastify, 'a'), await publish(express, 'b')];
    await until(() => first.ids.length === 2, 'the first two events');
    expect(first.ids).toEqual(seen);
    await first.close();

    const missed: string[] = [];
    for (let i = 0; i < 6; i++) missed.push(await publish(i % 2 ? express : fastify, `missed ${i}`));
    const again = await fetchClient(`${fastify.url}/events`, seen[1]);
    clients.push(again);
    expect(again.response.headers.get('sse-history-truncated')).toBeNull();
    await until(() => again.ids.length === 6, 'the missed events');
    const next = await publish(express, 'live');
    await until(() => again.ids.length === 7, 'the live event');
    expect(again.ids).toEqual([...missed, next]);
    expect(again.seen.map((e) => e.type)).not.toContain('history-truncated');
  });

  it('let an EventSource whose app was killed come back on its own and miss nothing', async () => {
    const client = live(express);
    await until(() => client.opens === 1, 'the connection');
    const ids = [await publish(express, 'before 1'), await publish(fastify, 'before 2')];
    await until(() => client.ids.length === 2, 'events before the kill');
    await express.kill9();
    for (let i = 0; i < 3; i++) ids.push(await publish(fastify, `while down ${i}`));
    await express.start();
    await until(() => client.opens === 2, 'the reconnect');
    ids.push(await publish(express, 'after'));
    await until(() => client.ids.length >= 6, 'every event');
    expect(client.ids).toEqual(ids);
    expect(client.truncations).toEqual([]);
  });

  it('signal truncation for an id older than the trimmed stream, then go live', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await publish(express, `old ${i}`));
    await redis.raw.xTrim('sse:{scale}', 'MAXLEN', 5);

    const client = await fetchClient(`${fastify.url}/events`, ids[3]);
    clients.push(client);
    expect(client.response.headers.get('sse-history-truncated')).toBe('true');
    const next = await publish(express, 'after trim');
    await until(() => client.seen.length === 2, 'signal and live event');
    expect(client.seen[0]).toEqual({
      type: 'history-truncated',
      data: JSON.stringify({ lastEventId: ids[3], reason: 'history' }),
      lastEventId: ids[3],
    });
    expect(client.ids).toEqual([next]);

    const recent = await fetchClient(`${express.url}/events`, ids[16]);
    clients.push(recent);
    expect(recent.response.headers.get('sse-history-truncated')).toBeNull();
    await until(() => recent.ids.length === 4, 'the kept events');
    expect(recent.ids).toEqual([...ids.slice(17), next]);
  });
});
