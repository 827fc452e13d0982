// A channel's truncation event reaches a typed client through a real route, whatever the route's
// own encoding makes of other data.
import { createServer } from 'node:http';
import type { StreamOptions } from '@rxsse/core';
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import { sse } from '@rxsse/express';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { defineEvents, fromEventSource, text } from '../src/index.js';
import { countingFetch, type Listening, listen, record, until } from './support.js';

const events = defineEvents({ chat: text });
let server: Listening | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A client that resumes from an id the channel does not know, on a route with `options`. */
async function resumeUnknown(options: StreamOptions) {
  const chat = createChannel(memoryEngine(), 'chat');
  await chat.publish({ data: { text: 'before' } });
  const closes: string[] = [];
  const app = express();
  app.get(
    '/chat',
    sse((_req, context) => chat.subscribe(context), {
      heartbeat: false,
      onError: () => {},
      onClose: (reason) => closes.push(reason),
      ...options,
    }),
  );
  server = await listen(createServer(app));
  const counting = countingFetch();
  const client = record(
    fromEventSource(`${server.url}/chat`, {
      events,
      lastEventId: '9-0',
      retryDelay: 1,
      fetch: counting.fetch,
    }),
  );
  // The notice, or a client that failed or reconnected again and again without one.
  await until(
    () => client.values.length > 0 || client.error !== undefined || counting.requests.length >= 5,
    'the truncation notice',
  );
  return { chat, client, closes, requests: counting.requests };
}

describe('a channel truncation event on a route whose serialize is made for its own data', () => {
  it("reaches the client once, with onInvalidMessage: 'close' and a serialize that throws on it", async () => {
    const { chat, client, closes, requests } = await resumeUnknown({
      onInvalidMessage: 'close',
      serialize: (data) => {
        if (typeof data !== 'object' || data === null || !('text' in data)) throw new TypeError('not chat');
        return String(data.text);
      },
    });
    expect(requests).toHaveLength(1);
    const id = await chat.publish({ type: 'chat', data: { text: 'hello' } });
    await until(() => client.values.length === 2, 'the live event');
    expect(client.values).toEqual([
      { type: 'history-truncated', data: { lastEventId: '9-0', reason: 'history' }, id: '9-0' },
      { type: 'chat', data: 'hello', id },
    ]);
    expect(closes).toEqual([]);
    client.subscription.unsubscribe();
  });

  it('reaches the client as the notice it checks, from a serialize that writes its own envelope', async () => {
    const { client } = await resumeUnknown({ serialize: (data) => `v1 ${JSON.stringify(data)}` });
    expect(client.error).toBeUndefined();
    expect(client.values).toEqual([
      { type: 'history-truncated', data: { lastEventId: '9-0', reason: 'history' }, id: '9-0' },
    ]);
    client.subscription.unsubscribe();
  });
});
