import {
  allStreams,
  type EventSourceLike,
  type MessageEvent,
  openStreams,
  SOURCE_HEADERS,
  StreamGroup,
  type StreamMetrics,
  type StreamOptions,
} from '@rxsse/core';
import { type ChannelEngine, createChannel, memoryEngine } from '@rxsse/core/channel';
import {
  concat,
  defer,
  from,
  fromEvent,
  interval,
  map,
  NEVER,
  Observable,
  range,
  Subject,
  type Subscriber,
  takeUntil,
  tap,
  throwError,
} from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { chaosTest } from './chaos.js';
import { churnTest } from './leaks.js';
import {
  eventSourceClients,
  fetchBytes,
  httpRequest,
  type RawClient,
  rawClient,
  rawRequests,
  sleep,
  waitFor,
} from './support/clients.js';
import type { AdapterHarness, RunningServer, TestRoute } from './support/harness.js';
import { counted, countingListeners, metered, neverYielding, recording } from './support/recording.js';

const throwing = (name: string) => () => {
  throw new Error(`${name} threw`);
};

/**
 * What an attacker or a careless handler does to a server, and how every adapter must take it:
 * a clean close with one reason, a loud report through the framework's own channel, never a
 * crash, a leak or a hang. Run against a real server of each framework.
 */
export function describeHostileContract(harness: AdapterHarness): void {
  describe(`${harness.name} adapter under attack`, () => {
    let server: RunningServer | undefined;
    const start = async (routes: TestRoute[], shutdown?: Parameters<AdapterHarness['start']>[1]) => {
      server = await harness.start(routes, shutdown);
      return server.url;
    };
    afterEach(async () => {
      const running = server;
      server = undefined;
      await running?.close();
      expect(running?.logged ?? []).toEqual([]);
    });

    it('closes every pipelined stream when their connection drops, and releases each source', async () => {
      const source = counted(NEVER);
      const { options, closes } = recording();
      const url = await start([{ path: '/sse', events: () => source.observable, options }]);
      const client = await rawRequests(
        url,
        [1, 2, 3].map(() => httpRequest('GET', '/sse')),
      );
      await waitFor(() => source.counts.subscribed === 3, 5000, 'three subscriptions');
      client.destroy();
      if (harness.traits?.missesQueuedDisconnects) {
        // At most the stream that had the connection hears of it (not even that one when the
        // drop comes before the server listens to its response): the shutdown ends the others.
        await sleep(100);
        const running = server!;
        server = undefined;
        await running.close();
        expect(closes).toHaveLength(3);
        expect(closes.filter((c) => c.reason === 'client').length).toBeLessThanOrEqual(1);
        expect(closes.every((c) => c.reason === 'client' || c.reason === 'shutdown')).toBe(true);
      } else {
        await waitFor(() => closes.length === 3, 5000, 'three closes');
        expect(closes.map((c) => c.reason)).toEqual(['client', 'client', 'client']);
      }
      expect(source.counts.active).toBe(0);
      expect(openStreams.size).toBe(0);
    });

    it('answers HEAD as its GET: the handler runs, its source goes unsubscribed, its own headers go out, and the next request is served', async () => {
      let calls = 0;
      const source = counted(from([{ data: 'x' }]));
      const topic = Object.assign(source.observable, { [SOURCE_HEADERS]: { 'x-topic': 'news' } });
      const url = await start([
        {
          path: '/sse',
          events: () => {
            calls++;
            return topic;
          },
        },
      ]);
      const client = await rawRequests(url, [httpRequest('HEAD', '/sse'), httpRequest('GET', '/sse')]);
      await waitFor(() => client.text.includes('data: x\n\n'), 5000, 'the GET response');
      // Then one at a time, as a keep-alive client sends them: the HEAD keeps the connection too.
      client.socket.write(httpRequest('HEAD', '/sse'));
      await waitFor(() => client.text.split('HTTP/1.1 ').length === 4 || client.closed, 5000, 'the HEAD');
      client.socket.write(httpRequest('GET', '/sse'));
      await waitFor(() => client.text.split('data: x').length === 3 || client.closed, 5000, 'the GET');
      client.destroy();
      const responses = client.text.split(/(?=HTTP\/1\.1 )/);
      expect(responses).toHaveLength(4);
      for (const [i, response] of responses.entries()) {
        expect(response, String(i)).toMatch(/^HTTP\/1\.1 200/);
        expect(response.toLowerCase(), String(i)).toContain('x-topic: news');
      }
      expect(responses[0]!.toLowerCase()).toContain('content-type: text/event-stream');
      expect(responses[0]).not.toContain('data:');
      expect(responses[2]).not.toContain('data:');
      expect(calls).toBe(4);
      expect(source.counts.subscribed).toBe(2);
    });

    it("answers HEAD with its GET's refusal, returns an iterator its handler made, and aborts its signal", async () => {
      const { options, closes, seen } = metered();
      const made = neverYielding();
      let signal: AbortSignal | undefined;
      const url = await start([
        { path: '/throws', events: throwing('the handler'), options },
        {
          path: '/iterator',
          events: (context) => {
            signal = context.signal;
            return made.iterator;
          },
          options,
        },
      ]);
      const refused = await fetchBytes(`${url}/throws`, { method: 'HEAD' });
      expect(refused.response.status).toBe(500);
      expect(refused.response.headers.get('content-type')).not.toBe('text/event-stream');
      expect(server!.logged.splice(0)).toHaveLength(1);
      const { response } = await fetchBytes(`${url}/iterator`, { method: 'HEAD' });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      await waitFor(made.returned, 5000, "the iterator's return()");
      // What the handler tied to its signal (a channel's subscription) is let go too.
      await waitFor(() => signal?.aborted === true, 5000, "the handler's signal to abort");
      await waitFor(() => closes.length > 0, 5000, 'the close');
      expect(seen).toEqual(['failed', 'opened', 'closed:complete']);
    });

    it('answers HEAD for a source whose getters throw where it is let go of, and logs the throw once', async () => {
      const { options, closes, seen } = metered();
      const source = Object.defineProperty(from([{ data: 'x' }]), 'next', {
        get() {
          throw new Error('the next getter threw');
        },
      });
      const url = await start([{ path: '/sse', events: () => source, options }]);
      const { response } = await fetchBytes(`${url}/sse`, { method: 'HEAD' });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      await waitFor(() => closes.length > 0, 5000, 'the close');
      expect(seen).toEqual(['opened', 'closed:complete']);
      await waitFor(() => server!.logged.length > 0, 5000, 'the log');
      expect(server!.logged.splice(0)).toEqual([expect.stringContaining('the next getter threw')]);
    });

    it('counts a HEAD as a stream that opened and completed, in its metrics and onClose', async () => {
      const { options, closes, seen } = metered();
      const url = await start([{ path: '/sse', events: () => from([{ data: 'x' }]), options }]);
      const client = await rawRequests(url, [httpRequest('HEAD', '/sse')]);
      await waitFor(() => closes.length > 0, 5000, 'the close');
      client.destroy();
      expect(seen).toEqual(['opened', 'closed:complete']);
      expect(closes.map((c) => c.reason)).toEqual(['complete']);
    });

    it('counts a client that half-closes, half-closes and stops reading, or resets, as one stream closed once', async () => {
      const own = new StreamGroup();
      const { options, closes, seen } = metered({ group: own });
      // What the source emitted, and what the stream handed its transport: the rest it holds.
      const counts = { emitted: 0, written: 0 };
      options.metrics = {
        ...options.metrics!,
        wrote: (events) => {
          counts.written += events;
        },
      };
      const chunk = { data: 'z'.repeat(16 * 1024) };
      // Writes on after the client's FIN, more than a client that stops reading takes.
      const events = () =>
        concat(
          from([{ data: 'hi' }]),
          interval(5).pipe(
            map(() => chunk),
            tap(() => counts.emitted++),
          ),
        );
      const url = await start([{ path: '/sse', events, options }]);
      // A server that misses the half-close leaves that stream to its own rule: its queue overflows.
      const stopped = harness.traits?.missesHalfCloses ? 'overflow' : 'client';
      const ends: [string, (client: RawClient) => unknown][] = [
        ['half-close', (client) => client.socket.end()],
        [
          'half-close, then no reading',
          async (client) => {
            client.socket.pause();
            // The FIN comes once the server holds what the client left unread: the kernel's buffers
            // are full, and the stream queues what its transport does not take.
            await waitFor(() => counts.emitted - counts.written >= 8, 10_000, 'the server to hold events');
            client.socket.end();
          },
        ],
        ['reset', (client) => client.socket.resetAndDestroy()],
      ];
      for (const [name, end] of ends) {
        const before = closes.length;
        counts.emitted = counts.written = 0;
        const client = await rawClient(`${url}/sse`, { read: true });
        await waitFor(() => client.text.includes('data: hi'), 5000, `${name}: the stream`);
        await end(client);
        await waitFor(() => closes.length > before, 5000, `${name}: the close`);
        // The server lets go of the connection too: a client that reads again sees it end.
        client.socket.resume();
        await waitFor(() => client.closed, 5000, `${name}: the connection to close`);
        await sleep(20);
        expect([name, closes.length, own.size, openStreams.size, allStreams.size]).toEqual([
          name,
          before + 1,
          0,
          0,
          0,
        ]);
      }
      expect(seen).toEqual([
        'opened',
        'closed:client',
        'opened',
        `closed:${stopped}`,
        'opened',
        'closed:client',
      ]);
      expect(closes.map((c) => c.reason)).toEqual(['client', stopped, 'client']);
      if (stopped === 'overflow' && harness.traits?.logsDroppedStreams) {
        expect(server!.logged.splice(0)).toEqual([expect.stringContaining('SseStreamDroppedError')]);
      }
    });

    it("counts a client that leaves as its close, though its source ends on the handler's signal: what waits is dropped", async () => {
      const { options, closes } = recording({ heartbeat: false, maxQueueBytes: 64 * 1024 * 1024 });
      const chunk = { data: 'z'.repeat(64 * 1024) };
      // More than loopback's buffers take, at once, from a source that ends as its signal asks.
      let emitted = 0;
      const burst = range(0, 200).pipe(
        map(() => chunk),
        tap(() => emitted++),
      );
      const events = ({ signal }: { signal: AbortSignal }) =>
        concat(burst, NEVER).pipe(takeUntil(fromEvent(signal, 'abort')));
      const url = await start([{ path: '/sse', events, options }]);
      const client = await rawClient(`${url}/sse`, { read: false });
      await waitFor(() => emitted === 200, 5000, 'the burst');
      client.destroy();
      await waitFor(() => closes.length === 1, 5000, 'the close');
      expect(closes.map((c) => c.reason)).toEqual(['client']);
      const { events: sent, dropped } = closes[0]!.stats;
      expect(dropped).toBeGreaterThan(0);
      expect(sent + dropped).toBe(200);
    });

    it('counts a handler that throws or rejects as failed, and no stream', async () => {
      const { options, closes, seen } = metered();
      const rejecting = async () => {
        throw new Error('the handler rejected');
      };
      const url = await start([
        { path: '/throws', events: throwing('the handler'), options },
        { path: '/rejects', events: rejecting, options },
      ]);
      for (const path of ['throws', 'rejects']) {
        const { response } = await fetchBytes(`${url}/${path}`);
        expect(response.status, path).toBe(500);
      }
      expect(seen).toEqual(['failed', 'failed']);
      expect(closes).toEqual([]);
      expect(server!.logged.splice(0)).toHaveLength(2);
    });

    it('counts a client gone before its stream opened as opened and closed by the client', async () => {
      const { options, closes, seen } = metered();
      let entered = false;
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const url = await start([
        {
          path: '/sse',
          // A bridge that tells of a disconnect only through the body never aborts the signal.
          events: async ({ signal }) => {
            entered = true;
            await Promise.race([
              released,
              new Promise((resolve) => signal.addEventListener('abort', resolve)),
            ]);
            return NEVER;
          },
          options,
        },
      ]);
      const client = await rawClient(`${url}/sse`, { read: true });
      await waitFor(() => entered, 5000, 'the handler');
      client.destroy();
      await client.done;
      release();
      await waitFor(() => closes.length > 0, 5000, 'the close');
      expect(seen).toEqual(['opened', 'closed:client']);
      expect(closes.map((c) => c.reason)).toEqual(['client']);
    });

    it('counts a client gone while its handler never settles at once, opened and closed by the client, and lets a late source go', async () => {
      const { options, closes, seen } = metered();
      const made = neverYielding();
      let entered = false;
      let settle!: () => void;
      const url = await start([
        {
          path: '/sse',
          // Heeds no signal: a hung upstream call, a forgotten promise.
          events: () => {
            entered = true;
            return new Promise<AsyncIterable<never>>((resolve) => (settle = () => resolve(made.iterator)));
          },
          options,
        },
      ]);
      const client = await rawClient(`${url}/sse`, { read: true });
      await waitFor(() => entered, 5000, 'the handler');
      client.destroy();
      await client.done;
      if (harness.traits?.hearsDisconnectsOnlyThroughBody) settle();
      await waitFor(() => closes.length > 0, 5000, 'the close');
      expect(seen).toEqual(['opened', 'closed:client']);
      settle();
      await waitFor(made.returned, 5000, "the late iterator's return()");
      expect(closes.map((c) => c.reason)).toEqual(['client']);
    });

    it("lets go of a channel subscription made without the request's signal that no stream takes: a HEAD's, a late one's", async () => {
      const { engine, counts } = countingListeners();
      const chat = createChannel(engine, 'room');
      let entered = false;
      let settle!: () => void;
      const { options, closes } = metered();
      const url = await start([
        { path: '/chat', events: () => chat.subscribe(), options },
        {
          path: '/late',
          events: async () => {
            entered = true;
            await new Promise<void>((resolve) => {
              settle = resolve;
            });
            return chat.subscribe();
          },
          options,
        },
      ]);
      const { response } = await fetchBytes(`${url}/chat`, { method: 'HEAD' });
      expect(response.status).toBe(200);
      await waitFor(() => closes.length === 1, 5000, "the HEAD's close");
      await waitFor(() => counts.live === 0, 5000, "the HEAD's listener to go");
      const client = await rawClient(`${url}/late`, { read: true });
      await waitFor(() => entered, 5000, 'the handler');
      client.destroy();
      await client.done;
      if (!harness.traits?.hearsDisconnectsOnlyThroughBody) {
        await waitFor(() => closes.length === 2, 5000, 'the close');
      }
      settle();
      await waitFor(() => closes.length === 2, 5000, 'the close');
      // The late subscription registered, then went.
      await new Promise((resolve) => setImmediate(resolve));
      await waitFor(() => counts.live === 0, 5000, 'the late listener to go');
      expect(closes.map((c) => c.reason)).toEqual(['complete', 'client']);
    });

    it('answers a handler that returns no source with the framework error status, before any byte', async () => {
      let opened = 0;
      let failed = 0;
      const metrics: StreamMetrics = {
        opened: () => opened++,
        wrote: () => {},
        heartbeat: () => {},
        dropped: () => {},
        closed: () => {},
        failed: () => failed++,
      };
      const { options, closes } = recording({ metrics });
      const garbage: [string, unknown][] = [
        ['number', 42],
        ['object', {}],
        ['null', null],
        ['undefined', undefined],
        ['array', [{ data: 'x' }]],
        ['promise', Promise.resolve(42)],
      ];
      const url = await start(
        garbage.map(([name, value]) => ({ path: `/${name}`, events: () => value as never, options })),
      );
      for (const [name] of garbage) {
        const { response } = await fetchBytes(`${url}/${name}`);
        expect(response.status, name).toBe(500);
        expect(response.headers.get('content-type'), name).not.toBe('text/event-stream');
      }
      expect(opened).toBe(0);
      expect(failed).toBe(garbage.length);
      expect(closes).toEqual([]);
      const logged = server!.logged.splice(0);
      expect(logged).toHaveLength(garbage.length);
      expect(logged[0]).toMatch(/TypeError.*returned number 42/);
    });

    it('stops a synchronous source at the overflow close', async () => {
      let produced = 0;
      const { options, closes } = recording({ maxQueueBytes: 64 * 1024, stallTimeout: false });
      const source = () =>
        range(0, 2_000_000).pipe(
          tap(() => produced++),
          map((n) => ({ data: `event number ${n}` })),
        );
      const url = await start([{ path: '/sse', events: source, options }]);
      const client = await rawClient(`${url}/sse`, { read: false });
      await waitFor(() => closes.length === 1, 10_000, 'the overflow close');
      expect(closes[0]!.reason).toBe('overflow');
      expect(produced).toBeLessThan(1_000_000);
      client.destroy();
      if (harness.traits?.logsDroppedStreams) {
        await waitFor(() => server!.logged.length > 0, 5000, 'the drop to be logged');
        expect(server!.logged.splice(0)).toEqual([expect.stringContaining('SseStreamDroppedError')]);
      }
    });

    it("closes once when an iterator's return() throws, and reports the throw", async () => {
      const { options, closes } = recording();
      const source = () => {
        let pulls = 0;
        const iterator: AsyncIterableIterator<MessageEvent> = {
          next: () =>
            ++pulls === 1
              ? Promise.resolve({ done: false, value: { data: 'first' } })
              : new Promise(() => {}),
          return: () => {
            throw new Error('return() threw');
          },
          [Symbol.asyncIterator]() {
            return this;
          },
        };
        return iterator;
      };
      const url = await start([{ path: '/sse', events: source, options }]);
      const client = await rawClient(`${url}/sse`, { read: true });
      await waitFor(() => client.text.includes('data: first'), 5000, 'the first event');
      client.destroy();
      await waitFor(() => closes.length === 1 && server!.logged.length === 1, 5000, 'the close');
      await sleep(50);
      expect(closes.map((c) => c.reason)).toEqual(['client']);
      expect(server!.logged.splice(0)).toEqual([expect.stringContaining('return() threw')]);
    });

    it('ends the response cleanly when every user callback throws, and reports each throw', async () => {
      const metrics: StreamMetrics = {
        opened: throwing('opened'),
        wrote: throwing('wrote'),
        heartbeat: throwing('heartbeat'),
        dropped: throwing('dropped'),
        closed: throwing('closed'),
      };
      const options: StreamOptions = {
        metrics,
        errorEvent: throwing('errorEvent'),
        onClose: throwing('onClose'),
      };
      const url = await start([
        {
          path: '/sse',
          events: () =>
            concat(
              from([{ data: 'a' }]),
              throwError(() => new Error('source failed')),
            ),
          options,
        },
      ]);
      const { response, body } = await fetchBytes(`${url}/sse`);
      expect(response.status).toBe(200);
      expect(body.toString()).toBe('data: a\n\n');
      await waitFor(() => server!.logged.length >= 6, 5000, 'the reports');
      const logged = server!.logged.splice(0).join('\n');
      for (const name of ['opened', 'wrote', 'closed', 'errorEvent', 'onClose', 'source failed']) {
        expect(logged).toContain(name);
      }
    });

    it('ends a stream whose async subscribe function rejects, and runs the teardown one resolves with', async () => {
      const { options, closes } = recording();
      let tornDown = 0;
      // `new Observable(async (subscriber) => ...)`: rxjs takes the promise for a teardown, and a
      // rejection no one hears ends a Node process.
      const asyncSubscribe = (settle: () => Promise<unknown>) => () =>
        new Observable<MessageEvent>((async (subscriber: Subscriber<MessageEvent>) => {
          subscriber.next({ data: 'first' });
          return settle();
        }) as never);
      const url = await start([
        {
          path: '/rejects',
          events: asyncSubscribe(() => Promise.reject(new Error('subscribe rejected'))),
          options,
        },
        {
          path: '/resolves',
          events: asyncSubscribe(async () => () => tornDown++),
          options,
        },
      ]);
      expect((await fetchBytes(`${url}/rejects`)).body.toString()).toBe('data: first\n\n');
      expect(closes.map((c) => [c.reason, String(c.error)])).toEqual([
        ['error', 'Error: subscribe rejected'],
      ]);
      await waitFor(() => server!.logged.length === 1, 5000, 'the report');
      expect(server!.logged.splice(0)).toEqual([expect.stringContaining('subscribe rejected')]);
      const client = await rawClient(`${url}/resolves`, { read: true });
      await waitFor(() => client.text.includes('data: first'), 5000, 'the first event');
      client.destroy();
      // The teardown runs before onClose reports the close.
      await waitFor(() => closes.length === 2, 5000, 'the close');
      expect([closes[1]!.reason, tornDown]).toEqual(['client', 1]);
    });

    it('answers a source that fails before its first message with the framework error status, before any byte', async () => {
      const routeErrors: unknown[] = [];
      const { options, closes, seen } = metered({
        retry: 1000,
        onError: (error) => routeErrors.push(error),
        errorEvent: () => ({ type: 'failed', data: 'x' }),
      });
      const counts = { tornDown: 0 };
      const failing: [string, () => EventSourceLike<MessageEvent>][] = [
        ['throw-error', () => throwError(() => new Error('throw-error failed'))],
        [
          'defer',
          () =>
            defer((): Observable<MessageEvent> => {
              throw new Error('defer failed');
            }),
        ],
        [
          'subscriber-error',
          () =>
            new Observable<MessageEvent>((subscriber) => {
              subscriber.error(new Error('subscriber-error failed'));
              return () => counts.tornDown++;
            }),
        ],
        [
          'iterator',
          () => ({
            [Symbol.asyncIterator]: () => {
              throw new Error('iterator failed');
            },
          }),
        ],
      ];
      const url = await start(failing.map(([name, events]) => ({ path: `/${name}`, events, options })));
      for (const [name] of failing) {
        const { response, body } = await fetchBytes(`${url}/${name}`);
        expect(response.status, name).toBe(500);
        expect(response.headers.get('content-type'), name).not.toBe('text/event-stream');
        expect(body.toString(), name).not.toContain('retry:');
      }
      // As for a handler that throws: the framework answers and reports, counted as failed alone.
      expect([seen, closes, routeErrors, counts.tornDown]).toEqual([failing.map(() => 'failed'), [], [], 1]);
      const logged = server!.logged.splice(0);
      expect(logged).toHaveLength(failing.length);
      for (const [i, [name]] of failing.entries()) expect(logged[i]).toContain(`${name} failed`);
    });

    it('answers 200 and ends the stream of a channel whose engine cannot listen, for the client to come back', async () => {
      const engine: ChannelEngine = {
        ...memoryEngine(),
        listen: () => Promise.reject(new Error('no connection')),
      };
      const chat = createChannel(engine, 'room');
      const routeErrors: unknown[] = [];
      const { options, closes, seen } = metered({ onError: (error) => routeErrors.push(error) });
      const url = await start([{ path: '/chat', events: () => chat.subscribe(), options }]);
      const { response } = await fetchBytes(`${url}/chat`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      await waitFor(() => closes.length === 1, 5000, 'the close');
      expect([seen, closes.map((c) => c.reason)]).toEqual([['opened', 'closed:error'], ['error']]);
      expect(routeErrors).toEqual([expect.objectContaining({ name: 'ChannelUnavailableError' })]);
    });

    it('reports a source error loudly when no onError is given', async () => {
      const url = await start([
        {
          path: '/sse',
          // Fails later, not at once: the stream has answered 200 by then.
          events: () => defer(async (): Promise<never> => Promise.reject(new Error('database went away'))),
        },
      ]);
      const { response, body } = await fetchBytes(`${url}/sse`);
      expect(response.status).toBe(200);
      // A fetch body may open with a comment, when the runtime reads before the failure.
      expect(body.toString()).toMatch(/^(:\n)?$/);
      await waitFor(() => server!.logged.length === 1, 5000, 'the report');
      expect(server!.logged.splice(0)).toEqual([expect.stringContaining('database went away')]);
    });

    it("never sends one client the text encoded for another client's state of a shared object", async () => {
      const subjects = new Map<string, Subject<MessageEvent>>();
      const url = await start([
        {
          path: '/sse',
          events: ({ lastEventId }) => {
            const subject = new Subject<MessageEvent>();
            subjects.set(lastEventId!, subject);
            return subject;
          },
        },
      ]);
      const [a, b] = await Promise.all(
        ['A', 'B'].map((who) => rawClient(`${url}/sse?lastEventId=${who}`, { read: true })),
      );
      await waitFor(() => subjects.size === 2, 5000, 'both clients');
      const shared: MessageEvent = { data: '' };
      shared.data = 'for A';
      subjects.get('A')!.next(shared);
      shared.data = 'for B';
      subjects.get('B')!.next(shared);
      await sleep(10);
      shared.data = 'again for A';
      subjects.get('A')!.next(shared);
      await waitFor(() => a!.text.includes('again for A') && b!.text.includes('data: for B'), 5000, 'events');
      expect(a!.text).not.toContain('for B');
      expect(b!.text).not.toContain('for A');
      for (const subject of subjects.values()) subject.complete();
    });

    it('removes a header the framework set when the route says null', async () => {
      const url = await start([
        { path: '/sse', events: () => from([{ data: 'x' }]), options: { headers: { 'X-Powered-By': null } } },
      ]);
      const { response } = await fetchBytes(`${url}/sse`);
      expect(response.headers.get('x-powered-by')).toBeNull();
    });

    for (const [client, EventSourceImpl] of eventSourceClients) {
      it(`finishes server.close() while ${client} clients keep reconnecting`, async () => {
        let handled = 0;
        const { options, closes } = recording({ retry: 20 });
        const url = await start(
          [
            {
              path: '/sse',
              events: () => {
                handled++;
                return concat(from([{ data: 'hi' }]), NEVER);
              },
              options,
            },
          ],
          { deadline: 1500, retry: 20 },
        );
        const sources = Array.from({ length: 3 }, () => new EventSourceImpl(`${url}/sse`));
        try {
          await waitFor(() => handled === 3, 5000, 'three streams');
          const running = server!;
          server = undefined;
          let closed = false;
          const closing = running.close().then(() => {
            closed = true;
          });
          // Without the shutdown turning them away, never (the guard only keeps a failure from hanging).
          await waitFor(() => closed, 1500 + 5000, 'server.close()');
          await closing;
          expect(running.logged).toEqual([]);
          // Clients that came back during the shutdown were turned away, not given a stream.
          expect(handled).toBe(3);
          expect(closes.every((c) => c.reason === 'shutdown')).toBe(true);
        } finally {
          for (const source of sources) source.close();
        }
      });
    }

    it("finishes server.close() at the shutdown's deadline while a client sends part of a request head, then nothing", async () => {
      const deadline = 200;
      const url = await start([{ path: '/sse', events: () => NEVER }], { deadline });
      // Node checks its headersTimeout no more once the server closes: this head would hold close() for good.
      const client = await rawRequests(url, ['GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n']);
      await sleep(50);
      const running = server!;
      server = undefined;
      const closed = running.close();
      // Dropped at the deadline; without it, never (the guard only keeps a failure from hanging).
      await waitFor(() => client.closed, deadline + 5000, 'the connection to be dropped');
      await closed;
      expect(running.logged).toEqual([]);
    });

    it('turns a request away with a reconnect hint and Connection: close while shutting down, a HEAD alike', async () => {
      let handled = 0;
      const { options, closes, seen } = metered();
      const chunk = { data: 'z'.repeat(64 * 1024) };
      const url = await start(
        [
          {
            path: '/sse',
            events: () => {
              handled++;
              return concat(from([{ data: 'hi' }]), NEVER);
            },
            options,
          },
          // A client that reads nothing keeps the shutdown waiting until its deadline.
          {
            path: '/big',
            events: () => concat(from(Array.from({ length: 400 }, () => chunk)), NEVER),
            options: { stallTimeout: false, maxQueueBytes: 64 * 1024 * 1024 },
          },
        ],
        { retry: 5000, deadline: 1500 },
      );
      const stuck = await rawClient(`${url}/big`, { read: false });
      const clients = [
        await rawClient(`${url}/sse`, { read: true }),
        await rawClient(`${url}/sse`, { read: true }),
      ];
      await waitFor(() => clients.every((c) => c.text.includes('data: hi')), 5000, 'the streams');
      const running = server!;
      server = undefined;
      const closed = running.close();
      const ended = 'retry: 5000\n\n\r\n0\r\n\r\n';
      await waitFor(() => clients.every((c) => c.text.endsWith(ended)), 5000, 'the ends');
      // The clients come back on their kept-alive connections while the shutdown goes on.
      const answers = await Promise.all(
        (['GET', 'HEAD'] as const).map(async (method, i) => {
          const client = clients[i]!;
          const before = client.text.length;
          client.socket.write(httpRequest(method, '/sse'));
          await client.done;
          return client.text.slice(before);
        }),
      );
      for (const answer of answers) {
        expect(answer).toMatch(/^HTTP\/1\.1 200/);
        expect(answer.toLowerCase()).toContain('connection: close');
        expect(answer.toLowerCase()).toContain('content-type: text/event-stream');
      }
      expect(answers[0]).toContain('retry: 5000');
      // The HEAD gets the GET's status and headers, and no body.
      expect(answers[1]).toMatch(/\r\n\r\n$/);
      expect(handled).toBe(2);
      stuck.destroy();
      await closed;
      expect(running.logged).toEqual([]);
      expect(seen).toEqual([
        ...['opened', 'opened', 'closed:shutdown', 'closed:shutdown'],
        ...['opened', 'closed:shutdown', 'opened', 'closed:shutdown'],
      ]);
      expect(closes.map((c) => c.reason)).toEqual(['shutdown', 'shutdown', 'shutdown', 'shutdown']);
    });

    it('closes the connection of a request whose handler resolves after the streams ended', async () => {
      let entered = false;
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const url = await start(
        [
          {
            path: '/late',
            events: async () => {
              entered = true;
              await released;
              return NEVER;
            },
          },
        ],
        { retry: 5000 },
      );
      const client = await rawClient(`${url}/late`, { read: true });
      await waitFor(() => entered, 5000, 'the handler');
      const running = server!;
      server = undefined;
      const closed = running.close();
      // The shutdown has no stream to end: it is over before the handler resolves.
      await sleep(50);
      release();
      await waitFor(() => client.text.includes('retry: 5000'), 5000, 'the answer');
      // Before the server's keep-alive timeout (5 s): the connection is not left idle, holding close().
      await waitFor(() => client.closed, 4000, 'the connection to close');
      await closed;
      expect(running.logged).toEqual([]);
    });

    chaosTest(harness);
    churnTest(harness);
  });
}
