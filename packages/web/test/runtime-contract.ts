import { formatEvent } from '@rxsse/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  collectEvents,
  eventSourceClients,
  fetchAndParse,
  fetchBytes,
  type RawClient,
  rawClient,
  readUntil,
  sleep,
  waitFor,
} from '../../../test/support/clients.js';
import { expectedOf, HOSTILE_MESSAGES } from '../../../test/wire/hostile-messages.js';
import { type Closed, type Held, QUEUE_CAP, type Seen } from './runtime/routes.js';
import { type Runtime, type RuntimeServer, startRuntime } from './runtime/runtime.js';

const expected = expectedOf(HOSTILE_MESSAGES);

/**
 * The adapter contract's checks, on a runtime that is not Node: the same route code
 * (`runtime/routes.ts`) served by the runtime's own server in its own process, driven by real
 * clients from here; closes and memory are read from the server's ledger over HTTP.
 */
export function describeRuntimeContract(runtime: Runtime): void {
  // The two servers the closeStreamsAndStop tests stop start with the file, beside the other tests,
  // instead of each when its test begins.
  let toStop: Promise<RuntimeServer>[] = [];
  beforeAll(() => {
    toStop = [startRuntime(runtime), startRuntime(runtime)];
    for (const server of toStop) server.catch(() => {}); // awaited by its test, which fails with it
  });
  afterAll(() =>
    Promise.all(
      toStop.map((server) =>
        server.then(
          (started) => started.stop(),
          () => {},
        ),
      ),
    ),
  );

  describe(`@rxsse/web on ${runtime.name}`, () => {
    let server: RuntimeServer;
    const get = async <T>(path: string): Promise<T> =>
      (await fetch(`${server.url}${path}`)).json() as Promise<T>;
    const closesOf = async (path: string) => (await get<Closed[]>('/closes')).filter((c) => c.path === path);
    /** The closes of `path`, once there are `count` of them. */
    const waitForCloses = async (path: string, timeout: number, count = 1) => {
      const deadline = Date.now() + timeout;
      for (;;) {
        const closes = await closesOf(path);
        if (closes.length >= count) return closes;
        if (Date.now() > deadline) throw new Error(`${closes.length} closes of ${path} within ${timeout} ms`);
        await sleep(20);
      }
    };

    beforeAll(async () => {
      server = await startRuntime(runtime);
    });
    afterAll(async () => {
      await server?.stop();
      // Only the drops the tests caused on purpose reached the runtime's log.
      const errors = server.stderr.match(/\b[A-Z]\w*(Error|Exception)\b/g) ?? [];
      expect(errors.filter((name) => name !== 'SseStreamDroppedError')).toEqual([]);
    });

    it('answers 200 with the event-stream headers and no hop-by-hop header, byte for byte', async () => {
      const { response, body } = await fetchBytes(`${server.url}/hostile`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
      expect(response.headers.get('x-accel-buffering')).toBe('no');
      expect(response.headers.get('keep-alive')).toBe(runtime.keepAlive ?? null);
      expect(body.toString('utf8')).toBe(HOSTILE_MESSAGES.map((m) => formatEvent(m)).join(''));
      expect((await waitForCloses('/hostile', 10_000)).map((c) => c.reason)).toEqual(['complete']);
    });

    it('answers HEAD with the headers of its GET, without a Content-Length that says the stream is empty', async () => {
      // RFC 9110 8.6: a HEAD response may carry a Content-Length only if it is the length of the
      // GET's content, and an event stream has none.
      const response = await fetch(`${server.url}/ticks`, { method: 'HEAD' });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
      expect(response.headers.get('content-length')).toBeNull();
      expect(await response.text()).toBe('');
      // Counted as its GET would be: a stream that opened and completed, with no event.
      expect((await waitForCloses('/ticks', 10_000)).map((c) => c.reason)).toEqual(['complete']);
      expect(await get<number>('/active')).toBe(0);
    });

    it("answers HEAD over a WebSink of a transport's own as sse() does, and ends its stream", async () => {
      const response = await fetch(`${server.url}/own-sink`, { method: 'HEAD' });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(response.headers.get('content-length')).toBeNull();
      expect(await response.text()).toBe('');
      // The runtime is done with the answer: the stream behind it ends, its source released.
      expect((await waitForCloses('/own-sink', 10_000)).map((c) => c.reason)).toEqual(['client']);
      expect(await get<number>('/active')).toBe(0);
    });

    for (const [client, EventSourceImpl] of eventSourceClients) {
      it(`delivers every event exactly to ${client}`, async () => {
        const received = await collectEvents(
          EventSourceImpl,
          `${server.url}/hostile-open`,
          ['message', 'tick'],
          8,
        );
        expect(received).toEqual(expected);
      });
    }

    it('delivers every event exactly to eventsource-parser over fetch', async () => {
      expect(await fetchAndParse(`${server.url}/hostile`)).toEqual(expected);
    });

    it('unsubscribes from the source at once when the client disconnects', async () => {
      const earlier = (await closesOf('/ticks')).length;
      const client = await rawClient(`${server.url}/ticks`, { read: true });
      await waitFor(() => client.text.includes('data: 3'), 5000, 'first events');
      client.destroy();
      const closes = (await waitForCloses('/ticks', 10_000, earlier + 1)).slice(earlier);
      expect(closes.map((c) => c.reason)).toEqual(['client']);
      expect(await get<number>('/active')).toBe(0);
    });

    it('counts a client that half-closes, half-closes and stops reading, or resets, as one stream closed once', async () => {
      // Bun and Deno take a FIN for the client's leaving and close the connection, though its client
      // still reads; Deno, given the FIN with the request, may close it before any of the response.
      // Either way, one stream closed by its client.
      const ends: [string, 'with the request' | 'streaming', (client: RawClient) => void][] = [
        ['half-close with the request', 'with the request', (client) => client.socket.end()],
        ['half-close', 'streaming', (client) => client.socket.end()],
        [
          'half-close, then no reading',
          'streaming',
          (client) => {
            client.socket.pause();
            client.socket.end();
          },
        ],
        ['reset', 'streaming', (client) => client.socket.resetAndDestroy()],
      ];
      for (const [name, when, end] of ends) {
        const before = (await closesOf('/half-close')).length;
        const client = await rawClient(`${server.url}/half-close`, { read: true });
        if (when === 'streaming')
          await waitFor(() => client.text.includes('data: hi'), 5000, `${name}: the stream`);
        end(client);
        await waitForCloses('/half-close', 5000, before + 1);
        // The server lets go of the connection too: a client that reads again sees it end.
        client.socket.resume();
        await waitFor(() => client.closed, 5000, `${name}: the connection to close`);
        await sleep(20);
        const held = await get<Held>('/held');
        expect([name, (await closesOf('/half-close')).length, held, await get<number>('/active')]).toEqual([
          name,
          before + 1,
          { group: 0, open: 0, server: 0, all: 0 },
          0,
        ]);
      }
      const seen = (await get<Seen[]>('/seen')).filter((s) => s.path === '/half-close').map((s) => s.seen);
      expect(seen).toEqual(ends.flatMap(() => ['opened', 'closed:client']));
      expect((await closesOf('/half-close')).map((c) => c.reason)).toEqual(ends.map(() => 'client'));
    });

    it('counts a client that leaves while it reads large events as a client close, and logs nothing', async () => {
      // A runtime that writes a piece to the socket as it is enqueued finds the socket closed there,
      // and cancels the body before the next piece of the same chunk.
      const clients = 3;
      for (let i = 0; i < clients; i++) {
        const client = await rawClient(`${server.url}/large-ticks`, { read: true });
        await waitFor(() => client.text.length > 4 * 1024 * 1024, 10_000, 'a few large events');
        client.destroy();
      }
      const closes = await waitForCloses('/large-ticks', 10_000, clients);
      expect(closes.map((c) => c.reason)).toEqual(Array(clients).fill('client'));
      expect(server.stderr).not.toMatch(/TypeError/);
    });

    it('answers at once a request whose client left while its handler sets up, though the handler never settles', async () => {
      const ledger = () => get<{ started: number; aborted: number; answered: number }>('/unsettled/ledger');
      const client = await rawClient(`${server.url}/unsettled`, { read: true });
      while ((await ledger()).started !== 1) await sleep(20);
      client.destroy();
      expect((await waitForCloses('/unsettled', 5000)).map((c) => c.reason)).toEqual(['client']);
      // The runtime holds a request until its fetch handler settles (Deno's graceful shutdown waits
      // for it for good), and nobody would ever release this one.
      while ((await ledger()).answered !== 1) await sleep(20);
      expect(await ledger()).toEqual({ started: 1, aborted: 1, answered: 1 });
    });

    it('closes a client that never reads when its queue would pass the cap', async () => {
      const client = await rawClient(`${server.url}/flood`, { read: false });
      const closes = await waitForCloses('/flood', 15_000);
      expect(closes.map((c) => c.reason)).toEqual(['overflow']);
      expect(closes[0]!.peakQueuedBytes).toBeLessThanOrEqual(256 * 1024);
      client.resume();
      await client.done;
      expect(client.closed).toBe(true);
    });

    it('closes a stalled client after stallTimeout even when no new event arrives', async () => {
      const client = await rawClient(`${server.url}/stall`, { read: false });
      const closes = await waitForCloses('/stall', 10_000);
      expect(closes.map((c) => c.reason)).toEqual(['stall']);
      client.resume();
      await client.done;
    });

    it('holds at most the queue cap + 1 MiB for a client that never reads', async () => {
      // A first client warms the route up, so what is measured is the queue, not compiled code.
      const warm = await rawClient(`${server.url}/drop`, { read: false });
      await sleep(500);
      warm.destroy();
      await waitForCloses('/drop', 10_000);
      // The least of a few samples: a collection may leave some garbage behind, never less than
      // what is held, and a queue that grew without bound would show in every sample.
      const sample = async (count: number) => {
        let least = Number.POSITIVE_INFINITY;
        for (let i = 0; i < count; i++) {
          least = Math.min(least, await get<number>('/memory'));
          await sleep(250);
        }
        return least;
      };
      const before = await sample(2);
      const client = await rawClient(`${server.url}/drop`, { read: false });
      // 16 KiB a millisecond: some 30 MB offered while the client reads nothing.
      await sleep(1500);
      const during = await sample(3);
      client.destroy();
      expect(during - before).toBeLessThan(QUEUE_CAP + 1024 * 1024);
      expect((await waitForCloses('/drop', 10_000, 2)).map((c) => c.reason)).toEqual(['client', 'client']);
    });

    it('sends heartbeats only while idle', async () => {
      // 40 events 30 ms apart, then idle: read until two heartbeats follow the last event, however
      // long a loaded machine takes to send them.
      const idleBeats = (text: string) => text.split('data: 39\n\n')[1]?.split(':\n').length ?? 0;
      const read = await readUntil(`${server.url}/busy-then-idle`, (text) => idleBeats(text) > 2, 15_000);
      const text = read.replace(/^:\n/, '');
      const lastData = text.lastIndexOf('data: ');
      const firstBeat = text.indexOf(':\n');
      expect(lastData).toBeGreaterThan(0);
      expect(firstBeat).toBeGreaterThan(lastData);
      expect(text.slice(lastData).split(':\n').length - 1).toBeGreaterThanOrEqual(2);
    });

    it('hands Last-Event-ID from the header or the query to the handler', async () => {
      const read = async (path: string, init?: RequestInit) =>
        (await fetchBytes(`${server.url}${path}`, init)).body.toString();
      expect(await read('/last-id')).toBe('data: (none)\n\n');
      expect(await read('/last-id', { headers: { 'Last-Event-ID': '42' } })).toBe('data: 42\n\n');
      expect(await read('/last-id?lastEventId=7')).toBe('data: 7\n\n');
    });

    it('replays a channel to a client that reconnects with Last-Event-ID', async () => {
      const publish = (data: string) =>
        fetch(`${server.url}/publish`, { method: 'POST', body: JSON.stringify({ data }) });
      const EventSourceImpl = eventSourceClients[0]![1];
      const source = new EventSourceImpl(`${server.url}/chat`);
      try {
        const received: string[] = [];
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`received ${received}`)), 10_000);
          source.addEventListener('open', () => void publish('one').then(() => publish('two')), {
            once: true,
          });
          source.addEventListener('message', (event) => {
            received.push((event as MessageEvent).data);
            if (received.length === 2) {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        // One event per connection: the second came by replay after the id of the first.
        expect(received).toEqual(['one', 'two']);
      } finally {
        source.close();
      }
    });
  });

  describe(`closeStreamsAndStop on ${runtime.name}`, () => {
    it("ends the streams, a route's own group included, with the retry hint, turns away a handler that resolves later, and stops", async () => {
      const server = await toStop[0]!;
      const { url } = server;
      const ticks = fetchBytes(`${url}/ticks`);
      const own = fetchBytes(`${url}/quiet-own-group`);
      own.catch(() => {}); // awaited below, as `late`
      const late = fetchBytes(`${url}/late`);
      late.catch(() => {}); // awaited below; fails only with the server, after a failed check
      const count = async (path: string) => (await fetch(`${url}${path}`)).json();
      while ((await count('/active')) !== 1 || (await count('/waiting')) !== 1) await sleep(20);
      await fetch(`${url}/shutdown`);
      expect((await ticks).body.toString()).toMatch(/^:\n(data: \d+\n\n)*retry: 1000\n\n$/);
      expect((await own).body.toString()).toMatch(/^(:\n)?data: hello\n\nretry: 1000\n\n$/);
      // A stream begun now would hold the server: its handler resolved after the streams ended.
      await server.printed(/stopped/, 15_000);
      const { response, body } = await late;
      expect(response.status).toBe(200);
      expect(body.toString()).toBe('retry: 1000\n\n');
    });

    it('stops soon after the deadline while a client whose stream it dropped reads nothing, or its handler still sets up, and turns a GET and a HEAD away alike meanwhile', async () => {
      const server = await toStop[1]!;
      const client = await rawClient(`${server.url}/stuck`, { read: false });
      const pending = fetchBytes(`${server.url}/pending`);
      pending.catch(() => {}); // awaited below; fails only with the server, after a failed check
      while ((await get<number>(server, '/active')) !== 1 || (await get<number>(server, '/waiting')) !== 1) {
        await sleep(20);
      }
      await fetch(`${server.url}/shutdown`);
      // While the deadline holds the shutdown, a GET is turned away, and a HEAD gets its status and
      // headers (each its own ETag), less those of the connection and the body the runtime sends
      // with them, or not.
      const runtimeHeaders = ['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date'];
      const answers = [];
      for (const method of ['GET', 'HEAD']) {
        const { response, body } = await fetchBytes(`${server.url}/metered-ticks`, { method });
        const headers: [string, string | boolean][] = [];
        response.headers.forEach((value, name) => {
          if (!runtimeHeaders.includes(name)) {
            headers.push([name, name === 'etag' ? /^"[\w-]+"$/.test(value) : value]);
          }
        });
        answers.push({ status: response.status, headers, body: body.toString() });
      }
      const [turnedAway, head] = answers;
      expect([turnedAway!.status, turnedAway!.body, head!.status, head!.body]).toEqual([
        200,
        'retry: 1000\n\n',
        200,
        '',
      ]);
      expect(head!.headers).toEqual(turnedAway!.headers);
      expect(turnedAway!.headers).toEqual(
        expect.arrayContaining([
          ['cache-control', 'no-cache, no-transform'],
          ['content-type', 'text/event-stream'],
          ['etag', true],
          ['x-accel-buffering', 'no'],
        ]),
      );
      const seen = (await get<Seen[]>(server, '/seen')).map((s) => s.seen);
      expect(seen).toEqual(['opened', 'closed:shutdown', 'opened', 'closed:shutdown']);
      // The deadline (2 s) drops the stream, yet the runtime holds its connection until the client
      // reads: a graceful stop alone waits for Bun's idleTimeout (10 s), for good on Deno.
      await server.printed(/stopped/, 9_000);
      client.resume();
      await client.done;
      // A handler that ignores its signal is answered at the deadline, not waited for.
      const { response, body } = await pending;
      expect(response.status).toBe(200);
      expect(body.toString()).toBe('retry: 1000\n\n');
    }, 20_000);
  });
}

const get = async <T>(server: RuntimeServer, path: string): Promise<T> =>
  (await fetch(`${server.url}${path}`)).json() as Promise<T>;
