// What a subscription leaves once its client has gone: nothing, on a real redis-server.
import { heartbeatCount } from '@rxsse/core';
import { createChannel } from '@rxsse/core/channel';
import { until } from '@rxsse/core/testing';
import { expect, it } from 'vitest';
import { collected, countingEngine, Ledger } from '../../../test/leaks.js';
import { httpRequest, rawRequests } from '../../../test/support/clients.js';
import { startStreamServer } from './support/stream-server.js';
import { useRedis } from './support/use-redis.js';

const redis = useRedis();

for (const [label, options] of [
  ['a stream per topic', {}],
  ['partitions', { partitions: 4 }],
] as const) {
  it(`frees every stream and live listener of subscribers that come, replay, read live and leave (${label})`, async () => {
    const { engine, listening } = countingEngine(redis.engine(options));
    const chat = createChannel(engine, `leaks-${label}`);
    const first = await chat.publish({ data: 'first' });
    const ledger = new Ledger();
    const server = await startStreamServer((context) => chat.subscribe(context), ledger.options('/chat'));
    try {
      for (let round = 0; round < 4; round++) {
        // Half resume after the first event, so their streams replay before going live.
        const clients = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            rawRequests(server.url, [
              `GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n${i % 2 ? `Last-Event-ID: ${first}\r\n` : ''}\r\n`,
            ]),
          ),
        );
        await until(() => listening() === 20, 'every subscriber listening');
        const id = await chat.publish({ data: `live ${round}` });
        await until(() => clients.every((client) => client.text.includes(`id: ${id}`)), 'the live event');
        for (const client of clients) client.destroy();
        await until(() => ledger.closes('/chat') === 20 * (round + 1), 'every close');
      }
    } finally {
      await server.close();
    }
    expect(new Set(ledger.closed.get('/chat'))).toEqual(new Set(['client']));
    expect(ledger.opened.get('/chat')).toBe(80);
    expect(listening()).toBe(0);
    expect(heartbeatCount()).toBe(0);
    expect(await collected(ledger.stats)).toBe(0);
  });
}

it('frees the streams and listeners of clients that left while Redis was frozen under their subscribe', async () => {
  const { engine, listening } = countingEngine(redis.engine());
  const chat = createChannel(engine, 'leaks-frozen');
  const ledger = new Ledger();
  let handled = 0;
  const server = await startStreamServer((context) => {
    handled++;
    return chat.subscribe(context);
  }, ledger.options('/chat'));
  try {
    redis.server.pause();
    const clients = await Promise.all(
      Array.from({ length: 10 }, () => rawRequests(server.url, [httpRequest('GET', '/chat')])),
    );
    await until(() => handled === 10, 'every handler waiting on Redis');
    for (const client of clients) client.destroy();
    await Promise.all(clients.map((client) => client.done));
  } finally {
    redis.server.resume();
  }
  try {
    await until(() => ledger.closes('/chat') === 10, 'every close');
  } finally {
    await server.close();
  }
  expect(new Set(ledger.closed.get('/chat'))).toEqual(new Set(['client']));
  expect(listening()).toBe(0);
  expect(await collected(ledger.stats)).toBe(0);
});
