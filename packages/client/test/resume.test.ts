// Resume without loss on a Redis-backed channel (a real redis-server): the server kills the
// connection at random moments while events flow, and Redis loses its data under a connected client.
import { createServer, type ServerResponse } from 'node:http';
import { type ChannelEngine, compareStreamIds, createChannel, parseStreamId } from '@rxsse/core/channel';
import { sse } from '@rxsse/express';
import { redisEngine } from '@rxsse/redis';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../../../test/support/redis-server.js';
import { defineEvents, fromEventSource, json, type SseEvent } from '../src/index.js';
import { type Listening, listen, record, until } from './support.js';

const KILLS = 100;
const events = defineEvents({ n: json<number>() });

const state = {} as { redis: RedisServer; engine: ChannelEngine; server: Listening };
beforeAll(async () => {
  state.redis = await RedisServer.start();
  // The kills below are on purpose: the engine's reports of them are not news. The default
  // commandTimeoutMs (5 s): each of the hundred reconnects replays through the engine, and a busy
  // machine that holds one for a second would make it a failed subscription, one reconnect too many.
  state.engine = redisEngine({ url: state.redis.url, blockMs: 100, onError: () => {} });
});
afterAll(async () => {
  await state.server?.close();
  await state.engine?.close();
  await state.redis?.stop();
});

/**
 * An Express app streaming `topic`. It keeps each connection's response, and counts subscriptions
 * that are live: a first connection has no id to resume from, so it gets only what follows.
 */
async function serveTopic(topic: string) {
  const channel = createChannel(state.engine, topic);
  const connections: ServerResponse[] = [];
  let live = 0;
  const app = express();
  app.get(
    '/events',
    (_req, res, next) => {
      connections.push(res);
      next();
    },
    sse(
      async (_req, context) => {
        const source = await channel.subscribe(context);
        live++;
        return source;
      },
      { retry: 5, heartbeat: false },
    ),
  );
  await state.server?.close();
  state.server = await listen(createServer(app));
  return { channel, connections, url: `${state.server.url}/events`, live: () => live };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ids strictly increase: none twice, none out of order. */
function expectIncreasing(received: SseEvent<string, unknown>[]): void {
  const ids = received.map((event) => parseStreamId(event.id)!);
  for (let i = 1; i < ids.length; i++) expect(compareStreamIds(ids[i - 1]!, ids[i]!)).toBeLessThan(0);
}

describe('resume on a Redis-backed channel', () => {
  it(`receives every event exactly once and in order while the server kills the connection ${KILLS} times`, async () => {
    const { channel, connections, url, live } = await serveTopic('kills');
    const reconnects: unknown[] = [];
    const client = record(fromEventSource(url, { events, onReconnect: (reason) => reconnects.push(reason) }));
    await until(() => live() === 1, 'the first subscription');

    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        await channel.publish(events.encode({ type: 'n', data: published }));
        published++;
        await pause(1);
      }
    })();

    // A client has nothing to resume from until its first event (and its id) arrived: what is
    // published before that and lost with the first connection, no SSE client can ask for again.
    await until(() => client.values.length > 0, 'the first event');
    for (let kill = 1; kill <= KILLS; kill++) {
      // Anywhere: right after the headers, during the replay, or while live events flow.
      await pause(Math.random() * 30);
      const socket = connections.at(-1)!.socket!;
      if (Math.random() < 0.5) socket.destroy();
      else socket.resetAndDestroy();
      await until(() => connections.length === kill + 1, `reconnect ${kill}`);
    }
    publishing = false;
    await publisher;
    await until(() => client.values.length >= published, `all ${published} events`, 20_000);

    const received = client.values;
    console.log(
      `resume: ${KILLS} kills, ${published} events published, ${received.length} received, ` +
        `${published - new Set(received.map((event) => event.data)).size} lost, ` +
        `${received.length - new Set(received.map((event) => event.id)).size} duplicated`,
    );
    expect(received.map((event) => event.data)).toEqual(Array.from({ length: published }, (_, n) => n));
    expectIncreasing(received);
    expect(reconnects).toHaveLength(KILLS);
    expect(client.error).toBeUndefined();
    client.subscription.unsubscribe();
  });

  it('tells a connected client, as the typed gap event, that Redis lost its data', async () => {
    const { channel, url, live } = await serveTopic('gap');
    const client = record(fromEventSource(url, { events }));
    await until(() => live() === 1, 'the subscription');
    const before: string[] = [];
    for (let n = 0; n < 3; n++) before.push(await channel.publish(events.encode({ type: 'n', data: n })));
    await until(() => client.values.length === 3, 'the events before');

    await state.redis.kill9();
    await state.redis.restart({ persistent: false });
    let after: string | undefined;
    while (after === undefined)
      after = await channel.publish(events.encode({ type: 'n', data: 3 })).catch(() => undefined);
    await until(() => client.values.length === 5, 'the gap and the event after it');

    expect(client.values.slice(3)).toEqual([
      { type: 'history-truncated', data: { lastEventId: before[2], reason: 'gap' }, id: before[2] },
      { type: 'n', data: 3, id: after },
    ]);
    client.subscription.unsubscribe();
  });
});
