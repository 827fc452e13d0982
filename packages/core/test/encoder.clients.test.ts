/**
 * Real clients over HTTP: a node:http server writes encoded hostile messages, cut at random byte
 * positions, and undici 7's EventSource and the eventsource 5 package must report every message
 * exactly as the oracle expects.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventSource as PackageEventSource } from 'eventsource';
import fc from 'fast-check';
import { EventSource as UndiciEventSource } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileString, hostileUnit } from '../../../test/wire/arbitraries.js';
import { type DispatchedEvent, expected } from '../../../test/wire/oracle.js';
import { splitBytes } from '../../../test/wire/parsers.js';
import { encodeEvent, formatComment } from '../src/encode/format.js';
import type { MessageEvent } from '../src/encode/types.js';

const seed = Math.floor(Math.random() * 2 ** 31);
const types = [
  undefined,
  '',
  'message',
  'tick',
  ' padded ',
  'a:b',
  'data',
  'id: 1',
  '\uFEFF',
  '\u2028',
  'ünï',
  '😀',
];
const portableId = fc
  .string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
    maxLength: 10,
  })
  .map((id) => id.trim());
// Some messages have no id: a client keeps the last one for them (eventsource 4 reported "").
const clientMessage: fc.Arbitrary<MessageEvent<unknown>> = fc.record(
  {
    type: fc.constantFrom(...types),
    id: portableId,
    data: fc.oneof(
      { weight: 4, arbitrary: hostileString(60) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2, stringUnit: hostileUnit }) },
    ),
  },
  { requiredKeys: ['type', 'data'] },
);

const messages = fc.sample(clientMessage, { numRuns: 150, seed });
const want = expected(messages);
const body = Buffer.concat([
  Buffer.from(formatComment('hostile\r\nstream\n\n')),
  ...messages.map((message) => encodeEvent(message)),
]);
const cuts = fc.sample(fc.array(fc.nat(), { minLength: 20, maxLength: 60 }), { numRuns: 1, seed })[0]!;
const chunks = splitBytes(body, cuts).filter((chunk) => chunk.length > 0);
const listenedTypes = [...new Set(types.map((type) => type || 'message'))];

const requests = new Map<string, number>();
const server = createServer(async (request, response) => {
  // Answer any reconnection with 204, which stops the client for good.
  const path = request.url ?? '';
  requests.set(path, (requests.get(path) ?? 0) + 1);
  if (requests.get(path)! > 1) {
    response.writeHead(204).end();
    return;
  }
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const chunk of chunks) {
    response.write(Buffer.from(chunk));
    await new Promise((resolve) => setImmediate(resolve));
  }
  response.end();
});
let origin = '';

beforeAll(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const client of clients) client.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

interface Client extends EventTarget {
  readonly readyState: number;
  close(): void;
}

const clients: Client[] = [];

/** Collects events until `count` arrived (then closes the client) or the client gave up. */
function collect(client: Client, count: number): Promise<DispatchedEvent[]> {
  clients.push(client);
  const events: DispatchedEvent[] = [];
  return new Promise((resolve) => {
    const finish = () => {
      client.close();
      resolve(events);
    };
    for (const type of listenedTypes) {
      client.addEventListener(type, (event) => {
        const { data, lastEventId } = event as globalThis.MessageEvent;
        events.push({ type: event.type, data, lastEventId });
        if (events.length === count) finish();
      });
    }
    client.addEventListener('error', () => {
      if (client.readyState === 2) finish();
    });
  });
}

describe(`real clients over HTTP (seed ${seed}, ${messages.length} messages, ${chunks.length} writes)`, () => {
  it('undici 7 EventSource receives every message exactly', async () => {
    const received = await collect(new UndiciEventSource(`${origin}/undici`), want.length);
    expect(received).toEqual(want);
  });

  it('eventsource 5 receives every message exactly', async () => {
    const received = await collect(new PackageEventSource(`${origin}/eventsource`), want.length);
    expect(received).toEqual(want);
  });
});
