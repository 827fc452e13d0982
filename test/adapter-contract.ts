import { request as httpRequest } from 'node:http';
import { runInNewContext } from 'node:vm';
import {
  formatEvent,
  heartbeatCount,
  type MessageEvent,
  type ShutdownOptions,
  StreamGroup,
  type StreamOptions,
} from '@rxsse/core';
import { concat, from, interval, map, NEVER, Observable, range, Subject, take, tap, throwError } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { withBrowser } from './support/browser.js';
import {
  collectEvents,
  eventSourceClients,
  fetchAndParse,
  fetchBytes,
  rawClient,
  readUntil,
  silentClient,
  sleep,
  waitFor,
} from './support/clients.js';
import type { AdapterHarness, RunningServer, TestRoute } from './support/harness.js';
import { counted, recording } from './support/recording.js';
import { expectedOf, HOSTILE_MESSAGES as hostile } from './wire/hostile-messages.js';

/**
 * The behaviour every adapter must have, run against a real server of its framework with real
 * clients. Each adapter's test file calls this with its harness.
 */
export function describeAdapterContract(harness: AdapterHarness): void {
  const traits = harness.traits ?? {};
  /** The body without the opening comment a transport with that trait may start with. */
  const withoutOpening = (text: string) => (traits.openingComment ? text.replace(/^:\n/, '') : text);
  describe(`${harness.name} adapter`, () => {
    let server: RunningServer | undefined;
    /** Takes out the log entry of a stream the server dropped on purpose, where the runtime logs one. */
    const takeDropLog = async () => {
      if (!traits.logsDroppedStreams) return;
      await waitFor(() => server!.logged.length > 0, 5000, 'the drop to be logged');
      expect(server!.logged.splice(0)).toEqual([expect.stringContaining('SseStreamDroppedError')]);
    };
    const start = async (routes: TestRoute[], shutdown?: ShutdownOptions) => {
      server = await harness.start(routes, shutdown);
      return server.url;
    };
    afterEach(async () => {
      expect(server?.logged ?? []).toEqual([]);
      await server?.close();
      server = undefined;
    });

    it('answers 200 with exactly the event-stream headers', async () => {
      const url = await start([{ path: '/sse', events: () => from([{ data: 'x' }]) }]);
      const { response } = await fetchBytes(`${url}/sse`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
      expect(response.headers.get('x-accel-buffering')).toBe('no');
      expect(response.headers.get('connection')).toBe('keep-alive');
    });

    it('adds, replaces and removes headers, and sends retry first', async () => {
      const options: StreamOptions = {
        headers: { 'X-Accel-Buffering': null, 'Access-Control-Allow-Origin': '*' },
        retry: 1500,
      };
      const url = await start([{ path: '/sse', events: () => from([{ data: 'x' }]), options }]);
      const { response, body } = await fetchBytes(`${url}/sse`);
      expect(response.headers.get('x-accel-buffering')).toBeNull();
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(body.toString()).toBe('retry: 1500\n\ndata: x\n\n');
    });

    it('writes events in order, byte for byte', async () => {
      const url = await start([{ path: '/sse', events: () => from(hostile) }]);
      const { body } = await fetchBytes(`${url}/sse`);
      expect(body.toString('utf8')).toBe(hostile.map((m) => formatEvent(m)).join(''));
    });

    for (const [client, EventSourceImpl] of eventSourceClients) {
      it(`delivers every event exactly to ${client}`, async () => {
        const url = await start([{ path: '/sse', events: () => concat(from(hostile), NEVER) }]);
        const received = await collectEvents(
          EventSourceImpl,
          `${url}/sse`,
          ['message', 'tick'],
          hostile.length,
        );
        expect(received).toEqual(expectedOf(hostile));
      });
    }

    it('delivers every event exactly to eventsource-parser over fetch', async () => {
      const url = await start([{ path: '/sse', events: () => from(hostile) }]);
      expect(await fetchAndParse(`${url}/sse`)).toEqual(expectedOf(hostile));
    });

    it('streams POST requests too, and notices their disconnects', async () => {
      const source = counted(interval(10).pipe(map((n) => ({ data: String(n) }))));
      const url = await start([{ path: '/sse', method: 'POST', events: () => source.observable }]);
      const abort = new AbortController();
      const response = await fetch(`${url}/sse`, { method: 'POST', body: 'hello', signal: abort.signal });
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const first = await reader.read();
      // The opening comment may come alone, or in one read with the first event.
      let text = withoutOpening(new TextDecoder().decode(first.value));
      if (text === '') text = new TextDecoder().decode((await reader.read()).value);
      expect(text).toMatch(/^data: \d+\n\n/);
      abort.abort();
      await waitFor(() => source.counts.active === 0, 5000, 'unsubscribe');
    });

    it('unsubscribes from the source as soon as the stream sees the disconnect', async () => {
      const source = counted(interval(5).pipe(map((n) => ({ data: String(n) }))));
      const { options, closes } = recording();
      const url = await start([{ path: '/sse', events: () => source.observable, options }]);
      const client = await rawClient(`${url}/sse`, { read: true });
      await waitFor(() => source.counts.emitted >= 3, 2000, 'first events');
      client.destroy();
      // Waits on the close, not on a fixed 100 ms a busy machine can pass before the socket's close
      // is read; no subscription may outlive it.
      await waitFor(() => closes.length > 0, 5000, 'the stream to see the disconnect');
      expect(source.counts.active).toBe(0);
      const emitted = source.counts.emitted;
      await sleep(50);
      expect(source.counts.emitted).toBe(emitted);
      expect(closes.map((c) => c.reason)).toEqual(['client']);
    });

    it('closes a client that never reads when its queue would pass the cap', async () => {
      const cap = 256 * 1024;
      const { options, closes } = recording({ maxQueueBytes: cap, stallTimeout: false });
      const kib = 'x'.repeat(1024);
      const flood = interval(1).pipe(map(() => ({ data: kib })));
      const burst = () =>
        new Observable<MessageEvent>((subscriber) => {
          const sub = flood.subscribe(() => {
            for (let i = 0; i < 64; i++) subscriber.next({ data: kib });
          });
          return () => sub.unsubscribe();
        });
      const url = await start([{ path: '/sse', events: burst, options }]);
      const client = await rawClient(`${url}/sse`, { read: false });
      await waitFor(() => closes.length === 1, 15_000, 'overflow close');
      expect(closes[0]!.reason).toBe('overflow');
      expect(closes[0]!.stats.peakQueuedBytes).toBeGreaterThan(cap / 2);
      expect(closes[0]!.stats.peakQueuedBytes).toBeLessThanOrEqual(cap);
      // The server dropped the connection: a client that reads again sees it end.
      client.resume();
      await client.done;
      expect(client.closed).toBe(true);
      await takeDropLog();
    });

    // A transport that holds a tick's bytes cannot send a burst as it is produced: the burst meets
    // the overflow policy instead, by design.
    if (traits.holdsBytesWithinTick)
      it('meets the overflow policy with a synchronous burst larger than the queue', async () => {
        const cap = 256 * 1024;
        const { options, closes } = recording({ maxQueueBytes: cap });
        const kib = 'x'.repeat(1016);
        const burst = () => range(0, 1024).pipe(map((n) => ({ data: kib, id: `${n}` })));
        const url = await start([{ path: '/sse', events: burst, options }]);
        await fetchBytes(`${url}/sse`).catch(() => {});
        await waitFor(() => closes.length === 1, 5_000, 'close');
        expect(closes[0]!.reason).toBe('overflow');
        expect(closes[0]!.stats.peakQueuedBytes).toBeLessThanOrEqual(cap);
        await takeDropLog();
      });
    else
      it('sends a synchronous burst while it is produced, so it need not fit the queue', async () => {
        const cap = 256 * 1024;
        const { options, closes } = recording({ maxQueueBytes: cap });
        const kib = 'x'.repeat(1016); // about 1 KiB on the wire
        // 1 MiB in one tick: the client cannot read before it ends, the kernel takes it meanwhile.
        const burst = () => range(0, 1024).pipe(map((n) => ({ data: kib, id: `${n}` })));
        const url = await start([{ path: '/sse', events: burst, options }]);
        const events = await fetchAndParse(`${url}/sse`);
        expect(events).toHaveLength(1024);
        expect(events[1023]!.lastEventId).toBe('1023');
        await waitFor(() => closes.length === 1, 5_000, 'close');
        expect(closes[0]!.reason).toBe('complete');
        expect(closes[0]!.stats.peakQueuedBytes).toBeLessThan(cap);
      });

    it('drop-oldest keeps the newest events and counts the dropped ones', async () => {
      const cap = 64 * 1024;
      const { options, closes } = recording({
        maxQueueBytes: cap,
        onOverflow: 'drop-oldest',
        stallTimeout: false,
      });
      const pad = 'y'.repeat(1000);
      const subject = new Subject<MessageEvent>();
      const url = await start([{ path: '/sse', events: () => subject, options }]);
      const client = await rawClient(`${url}/sse`, { read: false });
      await sleep(50);
      // Far more than kernel buffers and the cap can hold, then one final marker event.
      const total = 20_000;
      for (let n = 0; n < total; n++) {
        subject.next({ data: `${n} ${pad}` });
        if (n % 500 === 0) await sleep(1);
      }
      subject.next({ data: 'last' });
      client.resume();
      await waitFor(() => client.text.includes('data: last'), 10_000, 'the newest event');
      subject.complete();
      await waitFor(() => closes.length === 1, 5000, 'close');
      const numbers = [...client.text.matchAll(/data: (\d+) y/g)].map((m) => Number(m[1]));
      expect(closes[0]!.stats.dropped).toBeGreaterThan(0);
      expect(numbers.length + closes[0]!.stats.dropped).toBe(total);
      expect(numbers.at(-1)).toBe(total - 1);
      // What survived is increasing: drops removed the oldest, never reordered.
      expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    });

    it('closes a stalled client after stallTimeout even when no new event arrives', async () => {
      const { options, closes } = recording({ stallTimeout: 300, maxQueueBytes: 64 * 1024 * 1024 });
      const chunk = { data: 'z'.repeat(64 * 1024) };
      // Fill the socket, then go silent: only the stall timer can end this stream.
      const url = await start([
        {
          path: '/sse',
          events: () => concat(from(Array.from({ length: 400 }, () => chunk)), NEVER),
          options,
        },
      ]);
      const client = await rawClient(`${url}/sse`, { read: false });
      await waitFor(() => closes.length === 1, 10_000, 'stall close');
      expect(closes[0]!.reason).toBe('stall');
      client.resume();
      await client.done;
      await takeDropLog();
    });

    it('sends heartbeats only while idle', async () => {
      // Events 20 ms apart, far inside the heartbeat interval: only a stall of most of it could let
      // a heartbeat in between them. They flow for several intervals, so a heartbeat that beat
      // whatever was written would land among them.
      const heartbeat = 800;
      const events = 100;
      const emittedAt: number[] = [];
      const source = () =>
        interval(20).pipe(
          take(events),
          tap(() => emittedAt.push(performance.now())),
          map((n) => ({ data: String(n) })),
        );
      const url = await start([
        { path: '/sse', events: () => concat(source(), NEVER), options: { heartbeat } },
      ]);
      const last = `data: ${events - 1}\n\n`;
      const beatsAfterLast = (text: string) =>
        text.includes(last) ? text.slice(text.indexOf(last)).split(':\n').length - 1 : 0;
      const text = withoutOpening(await readUntil(`${url}/sse`, (t) => beatsAfterLast(t) >= 2, 15_000));
      // No heartbeat while events flowed; heartbeats once the source went quiet.
      expect(emittedAt.at(-1)! - emittedAt[0]!).toBeGreaterThan(2 * heartbeat);
      expect(text.indexOf(':\n')).toBeGreaterThan(text.indexOf(last));
      expect(beatsAfterLast(text)).toBe(2);
    });

    it('never sends heartbeats with heartbeat: false', async () => {
      const url = await start([
        {
          path: '/sse',
          events: () => concat(from([{ data: 'only' }]), NEVER),
          options: { heartbeat: false },
        },
        { path: '/beats', events: () => NEVER, options: { heartbeat: 200 } },
      ]);
      const abort = new AbortController();
      const response = await fetch(`${url}/sse`, { signal: abort.signal });
      const decoder = new TextDecoder();
      let silent = '';
      const reading = (async () => {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
          silent += decoder.decode(chunk, { stream: true });
      })().catch(() => {});
      // Open, it is on no heartbeat wheel: not even the default interval's, whose first beat would
      // come long after this test ends.
      await waitFor(() => silent.includes('data: only'), 5000, 'the silent stream');
      expect(heartbeatCount()).toBe(0);
      // The silent route is read for as long as the other takes to beat twice, not for a fixed
      // 900 ms: a busy machine that holds the process that long lets no heartbeat through.
      const beating = await readUntil(`${url}/beats`, (text) => text.split(':\n').length > 2, 10_000);
      abort.abort();
      await reading;
      expect(silent).toBe('data: only\n\n');
      expect(beating).toMatch(/^(:\n){2,}$/);
    });

    it('ends the response when the source completes', async () => {
      const { options, closes } = recording();
      const url = await start([
        { path: '/sse', events: () => from([{ data: 'a' }, { data: 'b' }]), options },
      ]);
      const { body } = await fetchBytes(`${url}/sse`);
      expect(body.toString()).toBe('data: a\n\ndata: b\n\n');
      await waitFor(() => closes.length === 1, 2000, 'close');
      expect(closes[0]!.reason).toBe('complete');
      expect(closes[0]!.stats.events).toBe(2);
    });

    it('ends cleanly after a source error, with the configured final event', async () => {
      const failure = new Error('database went away');
      const errors: unknown[] = [];
      const { options, closes } = recording({
        onError: (error) => errors.push(error),
        errorEvent: (error) => ({ type: 'stream-error', data: { message: (error as Error).message } }),
      });
      const url = await start([
        {
          path: '/sse',
          events: () =>
            concat(
              from([{ data: 'a' }]),
              throwError(() => failure),
            ),
          options,
        },
      ]);
      const { body } = await fetchBytes(`${url}/sse`);
      expect(body.toString()).toBe(
        'data: a\n\nevent: stream-error\ndata: {"message":"database went away"}\n\n',
      );
      expect(errors).toEqual([failure]);
      expect(closes.map((c) => [c.reason, c.error])).toEqual([['error', failure]]);
    });

    it('skips a malformed message instead of corrupting the stream, and reports it loudly', async () => {
      const { options, closes } = recording();
      const url = await start([
        {
          path: '/sse',
          events: () =>
            from([
              { data: 'ok', id: '1' },
              { data: 'x', id: 'a\nid: 666' },
              { data: 'next', id: '2' },
            ]),
          options,
        },
      ]);
      const { body } = await fetchBytes(`${url}/sse`);
      expect(body.toString()).toBe('id: 1\ndata: ok\n\nid: 2\ndata: next\n\n');
      await waitFor(() => closes.length === 1, 2000, 'close');
      expect(closes[0]!.reason).toBe('complete');
      expect(closes[0]!.stats.refused).toBe(1);
      // No onError: the framework's own channel hears of it.
      expect(server!.logged.splice(0)).toEqual([expect.stringContaining('SseFormatError')]);
    });

    it('pulls an AsyncIterable only as fast as the socket takes it', async () => {
      let pulled = 0;
      let finalized = false;
      const size = 32 * 1024;
      async function* events() {
        try {
          for (;;) {
            pulled++;
            yield { data: 'p'.repeat(size) };
          }
        } finally {
          finalized = true;
        }
      }
      const { options, closes } = recording({ stallTimeout: false });
      const url = await start([{ path: '/sse', events: () => events(), options }]);
      const client = await rawClient(`${url}/sse`, { read: false });
      await waitFor(() => pulled > 10, 5000, 'first pulls');
      // Settled once six looks over 300 ms, each after the loop took its I/O, find nothing more
      // pulled: not at a fixed 300 ms, which a busy machine can reach with the socket still filling.
      let settled = pulled;
      for (let quiet = 0, waited = 0; quiet < 6; waited += 50) {
        if (waited > 10_000) throw new Error('the pulls never stopped');
        await sleep(50);
        await new Promise((resolve) => setImmediate(resolve));
        if (pulled === settled) quiet++;
        else [settled, quiet] = [pulled, 0];
      }
      await sleep(300);
      // The socket is full: nothing more is pulled, and what was pulled fits in the kernel's buffers.
      expect(pulled).toBe(settled);
      expect(settled * size).toBeLessThan(64 * 1024 * 1024);
      client.destroy();
      await waitFor(() => finalized, 5000, 'the generator to be finalized');
      expect(closes.map((c) => c.reason)).toEqual(['client']);
    });

    it('closing the server ends open streams with a spread retry hint instead of hanging', async () => {
      const { options, closes } = recording();
      const url = await start(
        [{ path: '/sse', events: () => concat(from([{ data: 'hi' }]), NEVER), options }],
        {
          retry: 1000,
          spread: 1000,
        },
      );
      const clients = await Promise.all([1, 2, 3].map(() => rawClient(`${url}/sse`, { read: true })));
      await waitFor(() => clients.every((c) => c.text.includes('data: hi')), 5000, 'first events');
      const running = server!;
      server = undefined;
      await running.close();
      expect(closes.map((c) => c.reason)).toEqual(['shutdown', 'shutdown', 'shutdown']);
      const retries = new Set<number>();
      for (const client of clients) {
        await client.done;
        const retry = Number(/retry: (\d+)\n\n/.exec(client.text)?.[1]);
        expect(retry).toBeGreaterThanOrEqual(1000);
        expect(retry).toBeLessThanOrEqual(2000);
        retries.add(retry);
      }
      // Spread: three hints drawn from 1,001 values are all alike about once in a million runs.
      expect(retries.size).toBeGreaterThan(1);
    });

    it("closing the server ends a stream of a route's own group too, with the shutdown's hint", async () => {
      const own = new StreamGroup();
      const { options, closes } = recording({ group: own });
      const url = await start(
        [{ path: '/sse', events: () => concat(from([{ data: 'hi' }]), NEVER), options }],
        { retry: 1000 },
      );
      const client = await rawClient(`${url}/sse`, { read: true });
      await waitFor(() => client.text.includes('data: hi'), 5000, 'the first event');
      const running = server!;
      server = undefined;
      const closed = running.close();
      try {
        await waitFor(() => client.closed, 5000, 'the stream to end');
        expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
        expect(client.text).toContain('retry: 1000\n\n');
        expect(own.size).toBe(0);
      } finally {
        // Whatever failed above, the server must not outlive the test.
        await own.close();
        await closed;
      }
    });

    it('closing the server drops a connection on which no request ever came', async () => {
      const url = await start([{ path: '/sse', events: () => concat(from([{ data: 'hi' }]), NEVER) }]);
      const unused = await silentClient(url);
      // Accepted after the silent one: once it streams, the server has seen both.
      const client = await rawClient(`${url}/sse`, { read: true });
      await waitFor(() => client.text.includes('data: hi'), 5000, 'the first event');
      const running = server!;
      server = undefined;
      const closed = running.close();
      try {
        await waitFor(() => unused.closed, 5000, 'the unused connection to be dropped');
        expect(unused.text).toBe('');
        await client.done;
      } finally {
        // Whatever failed above, the server must not outlive the test.
        unused.destroy();
        await closed;
      }
    });

    it('closing the server lets a stream that ended by itself finish flushing to a slow client', async () => {
      // ~16 MiB, more than loopback's socket buffers take: most of it waits in the server.
      const count = 16_000;
      const payload = 'x'.repeat(1024);
      const { options, closes } = recording({ maxQueueBytes: 64 * 1024 * 1024 });
      const url = await start([
        {
          path: '/sse',
          events: () => range(0, count).pipe(map((i) => ({ id: String(i), data: payload }))),
          options,
        },
      ]);
      const client = await rawClient(`${url}/sse`, { read: false });
      await waitFor(() => closes.length === 1, 5000, 'the stream to end');
      const running = server!;
      server = undefined;
      const closed = running.close();
      client.resume();
      await client.done;
      await closed;
      expect(closes.map((c) => c.reason)).toEqual(['complete']);
      expect(client.text.split('\ndata: ').length - 1).toBe(count);
      expect(client.text).toContain(`id: ${count - 1}\ndata: ${payload}\n\n`);
    });

    it.each([
      ['', Promise],
      // As a test runner's or a vm's sandbox hands out: no `instanceof Promise` of this realm.
      [' (a promise of another realm)', runInNewContext('Promise') as PromiseConstructor],
    ])(
      'closing the server aborts a handler still setting up%s, and turns its client away',
      async (_, Realm) => {
        const { options, closes } = recording();
        let started = false;
        const url = await start(
          [
            {
              path: '/sse',
              options,
              events: ({ signal }) => {
                started = true;
                return new Realm<never>((_, reject) => {
                  signal.addEventListener('abort', () => reject(signal.reason));
                });
              },
            },
          ],
          { retry: 1000 },
        );
        const client = await rawClient(`${url}/sse`, { read: true });
        await waitFor(() => started, 5000, 'the handler to start');
        const running = server!;
        server = undefined;
        const closed = running.close();
        try {
          await waitFor(() => client.closed, 5000, 'the client to be turned away');
          expect(client.text).toMatch(/^HTTP\/1\.1 200/);
          if (!traits.noHopByHopHeaders) expect(client.text.toLowerCase()).toContain('connection: close');
          expect(client.text).toContain('retry: 1000\n\n');
          // The abort came from the shutdown, not from a client that left.
          expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
        } finally {
          // Whatever failed above, the server must not outlive the test.
          client.destroy();
          await closed;
        }
        expect(running.logged).toEqual([]);
      },
    );

    it.each([
      ['resolves', (settle: (value: unknown) => void) => settle(NEVER)],
      ['fails', (_: unknown, fail: (error: unknown) => void) => fail(new Error('late failure'))],
    ] as const)(
      'closing the server turns away at the deadline a handler that goes on setting up, counted once, and one that %s later is not counted again',
      async (_, late) => {
        const errors: unknown[] = [];
        const { options, closes } = recording({ onError: (error) => void errors.push(error) });
        let settle: ((value: unknown) => void) | undefined;
        let fail!: (error: unknown) => void;
        const url = await start(
          [
            {
              path: '/sse',
              options,
              // Ignores its signal, and settles only when the test lets it.
              events: () =>
                new Promise<never>((resolve, reject) => {
                  settle = resolve as (value: unknown) => void;
                  fail = reject;
                }),
            },
          ],
          { retry: 1000, deadline: 300 },
        );
        const client = await rawClient(`${url}/sse`, { read: true });
        await waitFor(() => settle !== undefined, 5000, 'the handler to start');
        const running = server!;
        server = undefined;
        let done = false;
        const closed = running.close().then(() => {
          done = true;
        });
        try {
          await waitFor(() => done, 5000, 'the close to complete');
          await waitFor(() => client.closed, 5000, 'the connection to close');
          expect(client.text).toMatch(/^HTTP\/1\.1 200/);
          expect(client.text).toMatch(/\r\n\r\n(\w+\r\n)?retry: 1000\n\n(\r\n0\r\n\r\n)?$/);
          // Counted at the deadline, though the handler never settles.
          expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
        } finally {
          late(settle!, fail);
          client.destroy();
          await closed;
        }
        await sleep(100);
        expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
        // What it resolves to later is let go; a failure is the route's bug, reported once.
        expect(errors.map(String)).toEqual(_ === 'fails' ? ['Error: late failure'] : []);
        expect(running.logged).toEqual([]);
      },
    );

    it('ends each stream after maxLifetime so the client reconnects with Last-Event-ID', async () => {
      const seen: (string | undefined)[] = [];
      const { options, closes } = recording({ maxLifetime: 150, retry: 50 });
      const url = await start([
        {
          path: '/sse',
          options,
          events: ({ lastEventId }) => {
            seen.push(lastEventId);
            const n = seen.length;
            return concat(from([{ id: String(n), data: String(n) }]), NEVER);
          },
        },
      ]);
      const received = await collectEvents(eventSourceClients[0]![1], `${url}/sse`, ['message'], 3);
      expect(received.map((r) => r.data)).toEqual(['1', '2', '3']);
      expect(seen.slice(0, 3)).toEqual([undefined, '1', '2']);
      expect(closes.slice(0, 2).map((c) => c.reason)).toEqual(['lifetime', 'lifetime']);
    });

    it('hands Last-Event-ID from the header or the query to the handler', async () => {
      const seen: (string | undefined)[] = [];
      const url = await start([
        {
          path: '/sse',
          events: ({ lastEventId }) => {
            seen.push(lastEventId);
            return from([{ data: 'x' }]);
          },
        },
      ]);
      await fetchBytes(`${url}/sse`);
      await fetchBytes(`${url}/sse`, { headers: { 'Last-Event-ID': '42' } });
      await fetchBytes(`${url}/sse?lastEventId=7`);
      expect(seen).toEqual([undefined, '42', '7']);
    });

    it('leaves no subscriptions, heartbeats or timers after 1,000 connect/disconnect cycles', async () => {
      const source = counted(NEVER as Observable<MessageEvent>);
      const { options, closes } = recording({ heartbeat: 1000 });
      const url = await start([{ path: '/sse', events: () => source.observable, options }]);
      const timersBefore = activeTimers();
      const cycles = 1000;
      const once = () =>
        new Promise<void>((resolve, reject) => {
          const req = httpRequest(`${url}/sse`, { agent: false }, (res) => {
            res.once('data', () => {});
            req.destroy();
            resolve();
          });
          req.on('error', reject);
          req.end();
        });
      for (let i = 0; i < cycles; i += 10) await Promise.all(Array.from({ length: 10 }, once));
      await waitFor(() => closes.length === cycles, 10_000, 'every close');
      expect(source.counts.subscribed).toBe(cycles);
      expect(source.counts.active).toBe(0);
      expect(closes.every((c) => c.reason === 'client')).toBe(true);
      expect(heartbeatCount()).toBe(0);
      expect(activeTimers()).toBeLessThanOrEqual(timersBefore);
    });

    describe('in Chromium', () => {
      it('receives named events with ids and resumes with Last-Event-ID after a server close', async () => {
        const seen: (string | undefined)[] = [];
        const url = await start([
          { path: '/', html: BROWSER_PAGE },
          {
            path: '/sse',
            options: { retry: 200 },
            events: ({ lastEventId }) => {
              seen.push(lastEventId);
              const first = lastEventId === undefined ? 1 : Number(lastEventId) + 1;
              // Three events per connection, then the server ends the response.
              return from([0, 1, 2]).pipe(
                map((i) => ({
                  id: String(first + i),
                  type: i === 1 ? 'tick' : 'message',
                  data: `n\n${first + i}`,
                })),
              );
            },
          },
        ]);
        const received = await withBrowser(async (page) => {
          await page.goto(`${url}/`);
          await page.waitForFunction(
            () => (window as unknown as { received: unknown[] }).received.length >= 6,
          );
          return page.evaluate(() => (window as unknown as { received: unknown[] }).received.slice(0, 6));
        });
        expect(received).toEqual(
          [1, 2, 3, 4, 5, 6].map((n) => ({
            type: n % 3 === 2 ? 'tick' : 'message',
            data: `n\n${n}`,
            lastEventId: String(n),
          })),
        );
        expect(seen.slice(0, 2)).toEqual([undefined, '3']);
      });
    });
  });
}

const BROWSER_PAGE = `<!doctype html><meta charset="utf-8"><title>rxsse</title><script>
window.received = [];
const source = new EventSource('/sse');
for (const type of ['message', 'tick']) {
  source.addEventListener(type, (e) => window.received.push({ type: e.type, data: e.data, lastEventId: e.lastEventId }));
}
</script>`;

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}
