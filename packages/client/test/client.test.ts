// fromEventSource against real rxsse routes (Express on 127.0.0.1): decoding, resume, retry policy,
// stall detection and teardown. Time-based behaviour runs on fake timers; the network is real.
import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import type { CloseReason } from '@rxsse/core';
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import { sse } from '@rxsse/express';
import express from 'express';
import { concat, firstValueFrom, from, map, NEVER, of, take, takeWhile, tap, toArray } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { recordUnhandledRejections, recordWarnings } from '../../../test/support/warnings.js';
import {
  type ContractMessage,
  defineEvents,
  type EventSourceOptions,
  type EventsOf,
  fromEventSource,
  json,
  SseEventError,
  SseResponseError,
  SseStallError,
  text,
} from '../src/index.js';
import {
  chunkedResponse,
  countingFetch,
  deafFetch,
  type Listening,
  listen,
  record,
  until,
} from './support.js';

const events = defineEvents({
  tick: json<{ n: number }>(),
  message: text,
  quote: json<string>(),
  list: json<unknown[]>(),
});
type Events = EventsOf<typeof events>;

const open: Listening[] = [];
const subscriptions: { unsubscribe(): void }[] = [];

afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  await Promise.all(open.splice(0).map((server) => server.close()));
});

/** Serves `app` on 127.0.0.1 until the test ends. */
async function serve(app: express.Express): Promise<string> {
  const server = await listen(createServer(app));
  open.push(server);
  return server.url;
}

/**
 * A route that answers with an event stream's headers and holds the response: its URL, and the
 * response once the client's request came, for the test to write to.
 */
async function heldStream(): Promise<{ url: string; response: () => Promise<express.Response> }> {
  let held: express.Response | undefined;
  const app = express();
  app.get('/sse', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' }).flushHeaders();
    held = res;
  });
  const url = `${await serve(app)}/sse`;
  return {
    url,
    response: async () => {
      await until(() => held !== undefined, 'the request');
      return held!;
    },
  };
}

/** `record`, unsubscribed when the test ends. */
function recorded<T>(source: Parameters<typeof record<T>>[0]) {
  const state = record(source);
  subscriptions.push(state.subscription);
  return state;
}

/** Fake timers for the client's delays and stall timer; I/O stays real. */
function fakeTimers(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
}

/** The test contract, with the data of each event it decodes kept in `decoded`. */
function decodesWatched() {
  const decoded: unknown[] = [];
  const watched: typeof events = {
    ...events,
    decode: (type, data) => {
      decoded.push(data);
      return events.decode(type, data);
    },
  };
  return { decoded, watched };
}

/**
 * The first `count` reconnect delays of a client against a route that always answers 502 (or
 * `answer`), on fake timers: each wait runs out before the next failure is awaited.
 */
async function delaysWhileFailing(
  count: number,
  options: EventSourceOptions = {},
  answer: express.RequestHandler = (_req, res) => {
    res.status(502).send('down');
  },
): Promise<number[]> {
  const app = express();
  app.get('/sse', answer);
  const url = await serve(app);
  fakeTimers();
  const delays: number[] = [];
  recorded(
    fromEventSource(`${url}/sse`, { ...options, onReconnect: (_reason, delay) => delays.push(delay) }),
  );
  while (delays.length < count) {
    const seen = delays.length;
    await until(() => delays.length > seen, 'the next failure');
    await vi.advanceTimersByTimeAsync(delays.at(-1)!);
  }
  return delays;
}

/**
 * How many requests a client sends a route that always answers 502 in its first `window` ms, on
 * fake timers (stopping at 50): each wait runs out before the next failure is awaited.
 */
async function requestsWhileFailing(window: number, options: EventSourceOptions): Promise<number> {
  let requests = 0;
  const app = express();
  app.get('/sse', (_req, res) => {
    requests++;
    res.status(502).send('down');
  });
  const url = await serve(app);
  fakeTimers();
  const delays: number[] = [];
  recorded(
    fromEventSource(`${url}/sse`, { ...options, onReconnect: (_reason, delay) => delays.push(delay) }),
  );
  let elapsed = 0;
  while (delays.length < 50) {
    const seen = delays.length;
    await until(() => delays.length > seen, 'the next failure');
    elapsed += delays.at(-1)! || 0;
    if (elapsed >= window) break;
    await vi.advanceTimersByTimeAsync(delays.at(-1)! || 0);
  }
  return requests;
}

const sent: ContractMessage<Events>[] = [
  { type: 'tick', data: { n: 1 }, id: '1' },
  { data: 'two lines\n and a leading space ', id: '2' },
  { type: 'quote', data: '{"looks":"like JSON"}', id: '3' },
  { type: 'list', data: [1, 'two', null], id: '4' },
  { type: 'message', data: '', id: '5' },
  { type: 'tick', data: { n: 6 } },
];

/** A route that sends `sent`, encoded by the contract, and stays open. */
function contractRoute(): express.Express {
  const app = express();
  app.get(
    '/sse',
    sse(() => concat(from(sent).pipe(map(events.encode)), NEVER), { heartbeat: false }),
  );
  return app;
}

describe('decoding', () => {
  it('delivers each type with its data as the contract declares it, and the last event id', async () => {
    const url = await serve(contractRoute());
    const received = await firstValueFrom(fromEventSource(`${url}/sse`, { events }).pipe(take(6), toArray()));
    expect(received).toEqual([
      { type: 'tick', data: { n: 1 }, id: '1' },
      { type: 'message', data: 'two lines\n and a leading space ', id: '2' },
      { type: 'quote', data: '{"looks":"like JSON"}', id: '3' },
      { type: 'list', data: [1, 'two', null], id: '4' },
      { type: 'message', data: '', id: '5' },
      { type: 'tick', data: { n: 6 }, id: '5' },
    ]);
  });

  it('decodes characters whose UTF-8 bytes arrive in separate chunks', async () => {
    const bytes = new TextEncoder().encode('data: café 😀\n\n');
    const e = bytes.indexOf(0xc3) + 1; // between the two bytes of "é"
    const emoji = bytes.indexOf(0xf0) + 2; // in the middle of the four bytes of "😀"
    // A body of exactly these chunks, as a network may cut them.
    const fetch = async () => chunkedResponse([bytes.slice(0, e), bytes.slice(e, emoji), bytes.slice(emoji)]);
    const delivered = await firstValueFrom(fromEventSource('http://127.0.0.1:1/sse', { fetch }));
    expect(delivered).toEqual({ type: 'message', data: 'café 😀', id: '' });
  });

  it('without a contract, delivers the text that arrived (no guessing at JSON)', async () => {
    const url = await serve(contractRoute());
    const received = await firstValueFrom(fromEventSource(`${url}/sse`).pipe(take(4), toArray()));
    expect(received.map((event) => event.data)).toEqual([
      '{"n":1}',
      'two lines\n and a leading space ',
      '"{\\"looks\\":\\"like JSON\\"}"',
      '[1,"two",null]',
    ]);
  });

  it('delivers a history truncation as the typed history-truncated event, then live events', async () => {
    const channel = createChannel(memoryEngine(), 'truncated', { maxReplay: { events: 2 } });
    const ids: string[] = [];
    for (let n = 1; n <= 5; n++)
      ids.push(await channel.publish(events.encode({ type: 'tick', data: { n } })));
    const app = express();
    app.get(
      '/sse',
      sse((_req, context) => channel.subscribe(context), { heartbeat: false }),
    );
    const url = await serve(app);

    const client = recorded(fromEventSource(`${url}/sse`, { events, lastEventId: ids[0] }));
    await until(() => client.values.length === 1, 'the truncation event');
    const live = await channel.publish(events.encode({ type: 'tick', data: { n: 6 } }));
    await until(() => client.values.length === 2, 'the live event');
    expect(client.values).toEqual([
      { type: 'history-truncated', data: { lastEventId: ids[0], reason: 'limit' }, id: ids[0] },
      { type: 'tick', data: { n: 6 }, id: live },
    ]);
    const [signal] = client.values;
    if (signal?.type === 'history-truncated') expect(signal.data.reason).toBe('limit');
  });

  it('delivers a truncation notice whose lastEventId is null, that of a client that had no id', async () => {
    const notice = JSON.stringify({ lastEventId: null, reason: 'gap' });
    const fetch = async () => chunkedResponse([`event: history-truncated\ndata: ${notice}\n\n`]);
    const delivered = await firstValueFrom(fromEventSource('http://127.0.0.1:1/sse', { events, fetch }));
    expect(delivered).toEqual({
      type: 'history-truncated',
      data: { lastEventId: null, reason: 'gap' },
      id: '',
    });
  });
});

describe('reconnecting', () => {
  it("waits exactly the server's retry: after every stream that ends, and resumes with Last-Event-ID", async () => {
    const app = express();
    app.get(
      '/sse',
      sse(
        (_req, { lastEventId }) => {
          const n = Number(lastEventId ?? 0) + 1;
          return of({ data: `event ${n}`, id: String(n) });
        },
        { retry: 5000, heartbeat: false },
      ),
    );
    const url = await serve(app);
    fakeTimers();
    const counting = countingFetch();
    const delays: number[] = [];
    const client = recorded(
      fromEventSource(`${url}/sse`, {
        fetch: counting.fetch,
        onReconnect: (_reason, delay) => delays.push(delay),
      }),
    );
    await until(() => delays.length === 1, 'the end of the first stream');
    expect(delays).toEqual([5000]);
    await vi.advanceTimersByTimeAsync(4999);
    expect(counting.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(counting.requests).toHaveLength(2);
    expect(counting.requests[1]!.get('last-event-id')).toBe('1');
    await until(() => client.values.length === 2, 'the resumed event');
    expect(client.values).toEqual([
      { type: 'message', data: 'event 1', id: '1' },
      { type: 'message', data: 'event 2', id: '2' },
    ]);
    // The second stream delivered bytes too: its end is a first attempt again, not a backoff.
    await until(() => delays.length === 2, 'the end of the second stream');
    expect(delays).toEqual([5000, 5000]);
  });

  it.each([
    { answer: 'a 503', headers: { 'retry-after': '7' }, wait: 7000 },
    // A CDN answering a 503 it cached 3 s ago: 4 s of the 7 are left.
    { answer: 'a cached 503, less its Age', headers: { 'retry-after': '7', age: '3' }, wait: 4000 },
  ])('waits exactly what the Retry-After of $answer leaves, then connects', async ({ headers, wait }) => {
    let requests = 0;
    const app = express();
    app.get('/sse', (_req, res, next) => {
      if (++requests === 1) res.status(503).set(headers).send('busy');
      else next();
    });
    app.get(
      '/sse',
      sse(() => concat(of({ data: 'in' }), NEVER), { heartbeat: false }),
    );
    const url = await serve(app);
    fakeTimers();
    const counting = countingFetch();
    const reconnects: [unknown, number][] = [];
    const client = recorded(
      fromEventSource(`${url}/sse`, {
        fetch: counting.fetch,
        onReconnect: (reason, delay) => reconnects.push([reason, delay]),
      }),
    );
    await until(() => reconnects.length === 1, 'the 503');
    const [reason, delay] = reconnects[0]!;
    expect(reason).toBeInstanceOf(SseResponseError);
    expect(reason).toMatchObject({ status: 503 });
    expect(delay).toBe(wait);
    await vi.advanceTimersByTimeAsync(wait - 1);
    expect(counting.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(counting.requests).toHaveLength(2);
    await until(() => client.values.length === 1, 'the event');
    expect(client.error).toBeUndefined();
  });

  /** The wait the client takes after the first answer, `answer(res)`, of a real server. */
  /** A client of a route that gives `answer`, on fake timers, once it is told to reconnect. */
  async function firstFailure(answer: (res: express.Response) => void) {
    const app = express();
    app.get('/sse', (_req, res) => answer(res));
    const url = await serve(app);
    fakeTimers();
    const { fetch, requests } = countingFetch();
    const delays: number[] = [];
    const { subscription } = recorded(
      fromEventSource(`${url}/sse`, { fetch, onReconnect: (_reason, delay) => delays.push(delay) }),
    );
    await until(() => delays.length === 1, 'the first answer');
    return { wait: delays[0]!, requests, subscription };
  }

  const firstWait = async (answer: (res: express.Response) => void) => (await firstFailure(answer)).wait;

  it.each([
    ['with', true],
    ["counted from the client's clock without", false],
  ])('waits until the HTTP date a Retry-After names, %s a Date', async (_name, sendDate) => {
    const wait = await firstWait((res) => {
      res.sendDate = sendDate;
      res
        .status(503)
        .set('retry-after', new Date(Date.now() + 10_000).toUTCString())
        .send('busy');
    });
    // An HTTP date has whole seconds: the wait is what is left of the 10 s once truncated.
    expect(wait).toBeGreaterThan(8000);
    expect(wait).toBeLessThanOrEqual(10_000);
  });

  it.each([
    ['an hour ahead', 3_600_000],
    ['an hour behind', -3_600_000],
  ])(
    "waits a Retry-After date counted from the response's Date, whatever the client's clock (%s)",
    async (_name, skew) => {
      const wait = await firstWait((res) => {
        // The server's clock is the one both dates come from; the client's is off by `skew`.
        const serverNow = Date.now() - skew;
        res
          .status(503)
          .set('date', new Date(serverNow).toUTCString())
          .set('retry-after', new Date(serverNow + 10_000).toUTCString())
          .send('busy');
      });
      // Both dates are the same instant's whole seconds, 10 s apart.
      expect(wait).toBe(10_000);
    },
  );

  it('waits the longest wait a timer holds for a Retry-After beyond it, rather than firing at once', async () => {
    const { requests } = await firstFailure((res) => {
      res.status(503).set('retry-after', '99999999999').send('busy');
    });
    // Timers overflow past 2^31 - 1 ms and fire at once: a day later the client must still wait.
    await vi.advanceTimersByTimeAsync(86_400_000);
    expect(requests).toHaveLength(1);
  });

  it('releases the connection of a retried answer before it waits', async () => {
    let closed = false;
    const wait = await firstWait((res) => {
      res.on('close', () => {
        closed = true;
      });
      res.status(503).set('retry-after', '3600');
      res.write('a body the client has no use for, never ended');
    });
    expect(wait).toBe(3_600_000);
    await until(() => closed, 'the server to see the connection close');
  });

  it.each([503, 429, 401])(
    'releases the connection of a %i it does not read, from a fetch that does not heed the abort',
    async (status) => {
      let closed = 0;
      const app = express();
      app.get('/sse', (_req, res) => {
        res.on('close', () => closed++);
        res.status(status).set('retry-after', '3600');
        res.write('a body the client has no use for, never ended');
      });
      const url = await serve(app);
      fakeTimers();
      const delays: number[] = [];
      const client = recorded(
        fromEventSource(`${url}/sse`, {
          fetch: deafFetch().fetch,
          onReconnect: (_reason, delay) => delays.push(delay),
        }),
      );
      await until(() => delays.length === 1 || client.error !== undefined, 'the answer');
      await until(() => closed === 1, 'the server to see the connection close', 2_000);
    },
  );

  it('releases the connection of a 503 a fetch that does not heed the abort answers after unsubscribing', async () => {
    let closed = 0;
    const app = express();
    app.get('/sse', (_req, res) => {
      res.on('close', () => closed++);
      res.status(503).write('a body the client has no use for, never ended');
    });
    const url = await serve(app);
    const late = deafFetch({ held: true });
    const client = recorded(fromEventSource(`${url}/sse`, { fetch: late.fetch }));
    client.subscription.unsubscribe();
    late.release();
    await until(() => late.answered === 1, 'the late answer');
    await until(() => closed === 1, 'the server to see the connection close', 2_000);
  });

  it('backs off by default from 1 s, doubling up to 30 s, scaled by Math.random', async () => {
    // The jitter's only source, fixed so the wait of each attempt is known.
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const delays = await delaysWhileFailing(8);
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
  });

  it.each([
    ['a comment', ': ping\n', [500, 1000, 2000, 4000, 8000]],
    ['retry: 0 and a comment', 'retry: 0\n: ping\n', [0, 1000, 2000, 4000, 8000]],
    ['an id-only block', 'id: 1\n\n', [500, 1000, 2000, 4000, 8000]],
  ])(
    'backs off from a server that sends %s and ends, never a single event',
    async (_name, body, expected) => {
      vi.spyOn(Math, 'random').mockReturnValue(0.5);
      // Bytes alone are no sign of a working stream: else such a server is asked at the base delay
      // (with retry: 0, at once) for ever.
      const delays = await delaysWhileFailing(5, {}, (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end(body);
      });
      expect(delays).toEqual(expected);
    },
  );

  it.each<[string, EventSourceOptions]>([
    ['retryDelay: NaN', { retryDelay: Number.NaN }],
    ['retryDelay: 0', { retryDelay: 0 }],
    ['maxRetryDelay: 0', { maxRetryDelay: 0 }],
    ['a negative retryDelay', { retryDelay: -1000 }],
    ['a retryDelay that is not a number', { retryDelay: 'slow' as unknown as number }],
  ])('refuses %s where it is given, rather than ask a failing server again and again', async (_name, bad) => {
    await expect(requestsWhileFailing(1000, bad)).rejects.toThrow(RangeError);
  });

  it('asks a server that keeps failing twice in its first second by default, not again and again', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    expect(await requestsWhileFailing(1000, {})).toBe(2);
  });

  it.each<[string, unknown]>([
    ['a stallTimeout of 0', { stallTimeout: 0 }],
    ['a fetch that is not a function', { fetch: 'fetch' }],
  ])('refuses %s where it is given, rather than reconnect forever', async (_name, bad) => {
    await expect(requestsWhileFailing(1000, bad as EventSourceOptions)).rejects.toThrow(
      /^(stallTimeout|fetch) must be/,
    );
  });

  it('reconnects while the tab is hidden with resumeWhenHidden, not waiting for it to show', async () => {
    // A page whose tab is hidden, and stays hidden: no visibilitychange ever comes.
    vi.stubGlobal('document', Object.assign(new EventTarget(), { visibilityState: 'hidden' }));
    const counting = countingFetch();
    const delays = await delaysWhileFailing(3, {
      fetch: counting.fetch,
      resumeWhenHidden: true,
      retryDelay: 1,
      maxRetryDelay: 1,
    });
    expect(delays).toHaveLength(3);
    expect(counting.requests.length).toBeGreaterThanOrEqual(3);
  });

  it('waits by default for a hidden tab to show before it reconnects, however long the backoff ran', async () => {
    const page = Object.assign(new EventTarget(), { visibilityState: 'hidden' });
    vi.stubGlobal('document', page);
    const { requests } = await firstFailure((res) => {
      res.status(502).send('down');
    });
    // Far past any backoff: a reconnect the wait let through would have asked fetch by now.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(requests).toHaveLength(1);
    page.visibilityState = 'visible';
    page.dispatchEvent(new Event('visibilitychange'));
    await until(() => requests.length === 2, 'the reconnect once the tab shows');
  });

  it('unsubscribing while it waits for a hidden tab to show ends the wait: no visibilitychange listener left', async () => {
    const page = Object.assign(new EventTarget(), { visibilityState: 'hidden' });
    const listening = () => getEventListeners(page, 'visibilitychange').length;
    vi.stubGlobal('document', page);
    const { requests, subscription } = await firstFailure((res) => {
      res.status(502).send('down');
    });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(listening()).toBe(1);
    subscription.unsubscribe();
    expect(listening()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(requests).toHaveLength(1);
  });

  it('asks fetch for an uncached request, with the credentials option', async () => {
    const url = await serve(contractRoute());
    const counting = countingFetch();
    const client = recorded(fromEventSource(`${url}/sse`, { fetch: counting.fetch, credentials: 'include' }));
    await until(() => client.values.length > 0, 'the first event');
    expect(counting.inits[0]).toMatchObject({ cache: 'no-store', credentials: 'include' });
  });

  // Asked in lower case, fetch still sends HEAD, and the answer has no body either.
  it.each(['HEAD', 'head'])(
    'takes an answer to %s, which has no body, for a stream that ended',
    async (method) => {
      const app = express();
      app.get(
        '/sse',
        sse(() => NEVER, { heartbeat: false }),
      );
      const url = await serve(app);
      fakeTimers();
      const reasons: unknown[] = [];
      const recording = recorded(
        fromEventSource(`${url}/sse`, { method, onReconnect: (reason) => reasons.push(reason) }),
      );
      await until(() => reasons.length === 1 || recording.error !== undefined, 'the end of the answer');
      expect(recording.error).toBeUndefined();
      expect(reasons).toEqual([undefined]);
    },
  );

  it('backs off with full jitter under the cap while a server keeps failing', async () => {
    const delays = await delaysWhileFailing(8, { retryDelay: 100, maxRetryDelay: 1000 });
    delays.forEach((delay, attempt) => {
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(Math.min(1000, 100 * 2 ** attempt));
    });
    expect(new Set(delays).size).toBeGreaterThan(1);
  });

  it('calls the header function again before every reconnect (a fresh token each time)', async () => {
    const authorizations: (string | undefined)[] = [];
    const resumedFrom: (string | undefined)[] = [];
    const app = express();
    app.get(
      '/sse',
      sse(
        (req, { lastEventId }) => {
          authorizations.push(req.headers.authorization);
          resumedFrom.push(lastEventId);
          return of({ data: 'x', id: String(authorizations.length) });
        },
        { retry: 1, heartbeat: false },
      ),
    );
    const url = await serve(app);
    let token = 0;
    const received = await firstValueFrom(
      fromEventSource(`${url}/sse`, {
        headers: async () => ({ authorization: `Bearer token-${++token}` }),
      }).pipe(take(3), toArray()),
    );
    expect(received.map((event) => event.id)).toEqual(['1', '2', '3']);
    expect(authorizations).toEqual(['Bearer token-1', 'Bearer token-2', 'Bearer token-3']);
    expect(resumedFrom).toEqual([undefined, '1', '2']);
  });

  it('retries a header function that rejects (a token endpoint out of reach) as a fetch that rejects', async () => {
    const app = express();
    app.get(
      '/sse',
      sse(() => concat(of({ data: 'hello' }), NEVER), { heartbeat: false }),
    );
    const url = await serve(app);
    const offline = new TypeError('fetch failed');
    let headerCalls = 0;
    const reasons: unknown[] = [];
    const client = recorded(
      fromEventSource(`${url}/sse`, {
        headers: async () => {
          if (++headerCalls === 1) throw offline;
          return { authorization: 'Bearer fresh' };
        },
        retryDelay: 1,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => client.values.length === 1 || client.error !== undefined, 'the event');
    expect(client.error).toBeUndefined();
    expect(reasons).toEqual([offline]);
    expect(headerCalls).toBe(2);
  });

  it.each<[string, () => Promise<Response>, string | null]>([
    ['a fetch that rejects', () => Promise.reject(undefined), null],
    [
      'a body that errors',
      async () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(new TextEncoder().encode('id: 1\ndata: one\n\n'));
            },
            pull(controller) {
              controller.error(undefined);
            },
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        ),
      '1',
    ],
  ])(
    'retries %s with no reason (undefined) as a network failure, not ending with it',
    async (_name, failing, resumed) => {
      const resumedFrom: (string | null)[] = [];
      const reasons: unknown[] = [];
      const client = recorded(
        fromEventSource('http://127.0.0.1:1/sse', {
          fetch: async (_url, init) => {
            resumedFrom.push(new Headers(init?.headers).get('last-event-id'));
            return resumedFrom.length === 1 ? failing() : chunkedResponse(['id: 2\ndata: two\n\n']);
          },
          retryDelay: 1,
          onReconnect: (reason) => reasons.push(reason),
        }),
      );
      await until(() => client.values.at(-1)?.id === '2' || client.subscription.closed, 'the event after it');
      expect(client.subscription.closed).toBe(false);
      expect(reasons).toEqual([undefined]);
      expect(resumedFrom).toEqual([null, resumed]);
    },
  );

  it('ends with the error of a header function that throws instead of returning, not endless retries', async () => {
    const counting = countingFetch();
    const thrown = new TypeError('token is not a function');
    let headerCalls = 0;
    const reasons: unknown[] = [];
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: counting.fetch,
        headers: () => {
          headerCalls++;
          throw thrown;
        },
        retryDelay: 1,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => client.error !== undefined || reasons.length > 0, 'the error');
    expect(reasons).toEqual([]);
    expect(client.error).toBe(thrown);
    expect(headerCalls).toBe(1);
    expect(counting.requests).toHaveLength(0);
  });
});

describe('answers that end the stream', () => {
  it('ends with a typed SseResponseError on 401 and never retries', async () => {
    const app = express();
    app.get('/sse', (req, res, next) => {
      if (req.headers.authorization === 'Bearer good') next();
      else res.status(401).set('www-authenticate', 'Bearer').send('no');
    });
    app.get(
      '/sse',
      sse(() => NEVER),
    );
    const url = await serve(app);
    fakeTimers();
    const counting = countingFetch();
    const client = recorded(
      fromEventSource(`${url}/sse`, { fetch: counting.fetch, headers: { authorization: 'Bearer stale' } }),
    );
    await until(() => client.error !== undefined, 'the error');
    expect(client.error).toBeInstanceOf(SseResponseError);
    expect(client.error).toMatchObject({
      status: 401,
      name: 'SseResponseError',
      message: 'Event stream answered 401',
    });
    expect((client.error as SseResponseError).headers.get('www-authenticate')).toBe('Bearer');
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(counting.requests).toHaveLength(1);
    expect(client.values).toEqual([]);
  });

  it.each([400, 403, 404, 405, 410])('ends with SseResponseError on %i', async (status) => {
    const app = express();
    app.get('/sse', (_req, res) => {
      res.status(status).end();
    });
    const url = await serve(app);
    const client = recorded(fromEventSource(`${url}/sse`));
    await until(() => client.error !== undefined, 'the error');
    expect(client.error).toMatchObject({ name: 'SseResponseError', status });
  });

  it('ends with SseResponseError on a 200 that is not text/event-stream', async () => {
    const app = express();
    app.get('/sse', (_req, res) => {
      res.type('html').send('<p>a login page</p>');
    });
    const url = await serve(app);
    const client = recorded(fromEventSource(`${url}/sse`));
    await until(() => client.error !== undefined, 'the error');
    expect(client.error).toMatchObject({
      name: 'SseResponseError',
      status: 200,
      contentType: 'text/html; charset=utf-8',
      message: 'Event stream answered 200 with Content-Type text/html; charset=utf-8',
    });
  });

  it.each<[string, unknown]>([
    ['undefined (a wrapper that forgot its return)', undefined],
    ['a plain object', { ok: true }],
  ])('ends with a TypeError, not endless retries, for a fetch that resolves %s', async (_name, answer) => {
    const reasons: unknown[] = [];
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: (async () => answer) as unknown as typeof fetch,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => client.error !== undefined || reasons.length > 0, 'the error');
    expect(reasons).toEqual([]);
    expect(client.error).toBeInstanceOf(TypeError);
    expect((client.error as Error).message).toMatch(
      /^fetch must resolve to a Response, got (undefined|an object)$/,
    );
  });

  it('ends with the error of a fetch that throws instead of returning a promise, not endless retries', async () => {
    const reasons: unknown[] = [];
    let calls = 0;
    const thrown = new TypeError('token is not a function');
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        // fetch itself never throws, it rejects: a wrapper that throws is broken, every time it is called.
        fetch: (() => {
          calls++;
          throw thrown;
        }) as typeof fetch,
        retryDelay: 1,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => client.error !== undefined || reasons.length > 1, 'the error');
    expect(reasons).toEqual([]);
    expect(client.error).toBe(thrown);
    expect(calls).toBe(1);
  });

  /** A fetch that aborts with a signal of its own, made by `signal()`; `called()` counts its calls. */
  const abortingFetch =
    (signal: () => AbortSignal) =>
    (called: () => void): EventSourceOptions => ({
      fetch: (input, init) => {
        called();
        return fetch(input, { ...init, signal: signal() });
      },
    });
  it.each<[string, (called: () => void) => EventSourceOptions]>([
    [
      'a fetch that aborts with a signal of its own before it answers',
      abortingFetch(() => AbortSignal.abort()),
    ],
    [
      'a fetch that aborts with a signal of its own once the stream runs',
      abortingFetch(() => {
        const own = new AbortController();
        setTimeout(() => own.abort(), 20);
        return own.signal;
      }),
    ],
    [
      'a headers() whose token request aborts with a signal of its own',
      (called) => ({
        headers: async () => {
          called();
          // The app's own controller, which aborts every token request from now on (a logout).
          throw new DOMException('the token request was aborted', 'AbortError');
        },
      }),
    ],
  ])('ends with the AbortError of %s, not endless retries', async (_, options) => {
    const app = express();
    app.get(
      '/sse',
      sse(() => concat(of({ data: 'in' }), NEVER), { heartbeat: false }),
    );
    const url = await serve(app);
    const reasons: unknown[] = [];
    let calls = 0;
    const client = recorded(
      fromEventSource(`${url}/sse`, {
        // A network failure rejects with a TypeError: an abort the client did not ask for is the app's
        // own signal, and would abort every attempt.
        ...options(() => calls++),
        retryDelay: 1,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => client.error !== undefined || reasons.length > 1, 'the error');
    expect(reasons).toEqual([]);
    expect(client.error).toMatchObject({ name: 'AbortError' });
    expect(calls).toBe(1);
  });

  it('ends with a TypeError, not endless retries, for a 200 event stream whose body fetch cannot read (a fetch that does not stream)', async () => {
    const reasons: unknown[] = [];
    const headers = { 'content-type': 'text/event-stream' };
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: async () => new Response(null, { status: 200, headers }),
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => client.error !== undefined || reasons.length > 0, 'the error');
    expect(reasons).toEqual([]);
    expect(client.error).toBeInstanceOf(TypeError);
    expect((client.error as Error).message).toMatch(
      /^fetch resolved an event stream without a readable body/,
    );
  });

  it.each<[string, () => unknown]>([
    // node-fetch 2's Response: its body is a Node stream, which has no getReader.
    [
      'a Node stream as its body (node-fetch 2)',
      () => ({
        status: 200,
        headers: new Headers({ 'content-type': 'text/event-stream' }),
        body: Readable.from(['data: x\n\n']),
      }),
    ],
    ['plain-object headers', () => ({ status: 200, headers: { 'content-type': 'text/event-stream' } })],
    // A wrapper that read the body, or holds a reader of it: no reader can be had, at any attempt.
    [
      'a body already read',
      async () => {
        const response = new Response('data: x\n\n', { headers: { 'content-type': 'text/event-stream' } });
        await response.text();
        return response;
      },
    ],
    [
      'a body read to its end, its reader let go (a logging wrapper)',
      async () => {
        const response = new Response('data: x\n\n', { headers: { 'content-type': 'text/event-stream' } });
        const reader = response.body!.getReader();
        while (!(await reader.read()).done);
        reader.releaseLock();
        return response;
      },
    ],
    [
      'a body another reader holds',
      () => {
        const response = new Response('data: x\n\n', { headers: { 'content-type': 'text/event-stream' } });
        response.body!.getReader();
        return response;
      },
    ],
    // A mock's stream of text: Response hands it on as it is, and no chunk is bytes.
    [
      'a body of strings',
      () =>
        new Response(
          new ReadableStream({
            start: (controller) => controller.enqueue('data: x\n\n'),
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        ),
    ],
    // A mock's reader that never says done: read on, it would keep the event loop busy for good
    // (its timers, the stall timer included, never fire). This one gives up after a while.
    [
      'a reader whose chunks are undefined',
      () => {
        let reads = 0;
        const read = async () => (++reads > 1000 ? { done: true } : { done: false, value: undefined });
        return {
          status: 200,
          headers: new Headers({ 'content-type': 'text/event-stream' }),
          body: { getReader: () => ({ read, cancel: async () => {} }), cancel: async () => {} },
        };
      },
    ],
  ])('ends with a TypeError, not endless retries, for a fetch that resolves %s', async (_name, answer) => {
    const reasons: unknown[] = [];
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: (async () => answer()) as unknown as typeof fetch,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => client.error !== undefined || reasons.length > 0, 'the error');
    expect(reasons).toEqual([]);
    expect(client.error).toBeInstanceOf(TypeError);
    expect((client.error as Error).message).toMatch(
      /^fetch (must resolve to a Response|resolved an event stream (without a readable body|whose body is not bytes))/,
    );
  });

  it('ends with a TypeError, not endless retries, for a URL fetch cannot parse', async () => {
    const counting = countingFetch();
    const client = recorded(fromEventSource('/relative/outside/a/page', { fetch: counting.fetch }));
    await until(() => client.error !== undefined, 'the error');
    expect(client.error).toBeInstanceOf(TypeError);
    expect(counting.requests).toHaveLength(0);
  });

  it.each([
    ['a body on GET', 'http://127.0.0.1:1/sse', { body: 'forgot the method' }],
    ['a URL with credentials', 'http://user:secret@127.0.0.1:1/sse', {}],
    ['a method fetch forbids', 'http://127.0.0.1:1/sse', { method: 'CONNECT' }],
    // fetch answers these with a network error every time, which EventSource fails for good.
    ['a file: URL', 'file:///etc/passwd', {}],
    ['a javascript: URL', 'javascript:alert(1)', {}],
    ['an ftp: URL', 'ftp://127.0.0.1/sse', {}],
    ['a ws: URL', 'ws://127.0.0.1:1/sse', {}],
  ] as const)(
    'ends with a TypeError, not endless retries, for a request fetch refuses: %s',
    async (_name, url, options) => {
      const counting = countingFetch();
      const reasons: unknown[] = [];
      const client = recorded(
        fromEventSource(url, {
          ...options,
          fetch: counting.fetch,
          onReconnect: (reason) => reasons.push(reason),
        }),
      );
      await until(() => client.error !== undefined || reasons.length > 0, 'the error');
      expect(reasons).toEqual([]);
      expect(client.error).toBeInstanceOf(TypeError);
      expect(counting.requests).toHaveLength(0);
    },
  );

  it('ends with a TypeError, not endless retries, for a relative URL on a page opened from a file: (browsers fetch no file: URL)', async () => {
    vi.stubGlobal('location', { href: 'file:///home/me/app/index.html', protocol: 'file:' });
    const counting = countingFetch();
    const reasons: unknown[] = [];
    const client = recorded(
      fromEventSource('sse', { fetch: counting.fetch, onReconnect: (reason) => reasons.push(reason) }),
    );
    await until(() => client.error !== undefined || reasons.length > 0, 'the error');
    expect(reasons).toEqual([]);
    expect(client.error).toBeInstanceOf(TypeError);
    expect(counting.requests).toHaveLength(0);
  });

  it("reads a data: URL, and a URL of the page's own scheme (an app's webview), as fetch does", async () => {
    const counting = countingFetch();
    const data = recorded(
      fromEventSource('data:text/event-stream,data:%20x%0A%0A', { fetch: counting.fetch }).pipe(take(1)),
    );
    vi.stubGlobal('location', { href: 'app://host/', protocol: 'app:' });
    const asked: string[] = [];
    const page = recorded(
      fromEventSource('/sse', {
        fetch: async (input) => {
          asked.push(String(input));
          return new Response('data: y\n\n', { headers: { 'content-type': 'text/event-stream' } });
        },
      }).pipe(take(1)),
    );
    await until(() => data.completed && page.completed, 'both events');
    expect([data.values, page.values, asked]).toEqual([
      [{ type: 'message', data: 'x', id: '' }],
      [{ type: 'message', data: 'y', id: '' }],
      ['app://host/sse'],
    ]);
  });

  it("ends with the id of the last event delivered, not the refused one's, and a new subscription with it resumes exactly there", async () => {
    const channel = createChannel(memoryEngine(), 'refused', { maxReplay: { events: 10 } });
    const ids = [
      await channel.publish(events.encode({ type: 'tick', data: { n: 0 } })),
      await channel.publish(events.encode({ type: 'tick', data: { n: 1 } })),
      await channel.publish(events.encode({ type: 'tick', data: { n: 2 } })),
      await channel.publish({ type: 'tock', data: '3' }), // a type this client's contract lacks
      await channel.publish(events.encode({ type: 'tick', data: { n: 4 } })),
    ];
    const app = express();
    app.get(
      '/sse',
      sse((_req, context) => channel.subscribe(context), { heartbeat: false }),
    );
    const url = await serve(app);

    // A channel replays to a client that resumes only: this one resumes after tick 0.
    const client = recorded(fromEventSource(`${url}/sse`, { events, lastEventId: ids[0] }));
    await until(() => client.error !== undefined, 'the error');
    expect(client.values.map((event) => event.id)).toEqual(ids.slice(1, 3));
    expect(client.error).toBeInstanceOf(SseEventError);
    expect(client.error).toMatchObject({ eventType: 'tock', lastEventId: ids[2] });

    // The cause fixed (a contract that declares tock), it resumes after the last event delivered.
    const fixed = defineEvents({ tick: json<{ n: number }>(), tock: json<number>() });
    const { lastEventId } = client.error as SseEventError;
    const resumed = await firstValueFrom(
      fromEventSource(`${url}/sse`, { events: fixed, lastEventId }).pipe(take(2), toArray()),
    );
    expect(resumed).toEqual([
      { type: 'tock', data: 3, id: ids[3] },
      { type: 'tick', data: { n: 4 }, id: ids[4] },
    ]);
  });

  it('ends an SseResponseError refused on a reconnect with the last event id, where it would resume', async () => {
    const app = express();
    app.get('/sse', (req, res, next) => {
      if (req.headers['last-event-id']) res.status(401).end();
      else next();
    });
    app.get(
      '/sse',
      sse(() => of({ data: 'one', id: 'a' }, { data: 'two', id: 'b' }), { retry: 1, heartbeat: false }),
    );
    const url = await serve(app);
    const client = recorded(fromEventSource(`${url}/sse`));
    await until(() => client.error !== undefined, 'the error');
    expect(client.values.map((event) => event.id)).toEqual(['a', 'b']);
    expect(client.error).toMatchObject({ name: 'SseResponseError', status: 401, lastEventId: 'b' });
  });

  it('completes on 204, after the events before it', async () => {
    const app = express();
    app.get('/sse', (req, res, next) => {
      if (req.headers['last-event-id'] === 'last') res.status(204).end();
      else next();
    });
    app.get(
      '/sse',
      sse(() => of({ data: 'final', id: 'last' }), { retry: 1, heartbeat: false }),
    );
    const url = await serve(app);
    const client = recorded(fromEventSource(`${url}/sse`));
    await until(() => client.completed, 'completion');
    expect(client.values).toEqual([{ type: 'message', data: 'final', id: 'last' }]);
    expect(client.error).toBeUndefined();
  });
});

describe('POST', () => {
  /** An LLM-style route: streams the words of the prompt as tokens, then `done`. */
  const tokens = defineEvents({ token: text, done: json<{ count: number }>() });

  /**
   * POST /complete. With `slow`, a first request (no Last-Event-ID) sends two tokens and then
   * waits, as a slow model would; its response is in `responses` for the test to cut.
   */
  function completionApp(requests: unknown[], slow = false) {
    const responses: express.Response[] = [];
    const app = express();
    app.post(
      '/complete',
      express.json(),
      (req, res, next) => {
        requests.push({ body: req.body, lastEventId: req.headers['last-event-id'] });
        responses.push(res);
        next();
      },
      sse(
        (req, { lastEventId }) => {
          const words = String(req.body.prompt).split(' ');
          const start = lastEventId === undefined ? 0 : Number(lastEventId) + 1;
          const messages = [
            ...words.map((word, i) => ({ type: 'token' as const, data: word, id: String(i) })),
            { type: 'done' as const, data: { count: words.length } },
          ].map(tokens.encode);
          if (slow && start === 0) return concat(from(messages.slice(0, 2)), NEVER);
          return from(messages.slice(start));
        },
        { retry: 1, heartbeat: false },
      ),
    );
    return { app, responses };
  }

  const request = (prompt: string) => ({
    events: tokens,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt }),
  });

  it('sends the body and streams tokens until done', async () => {
    const requests: unknown[] = [];
    const url = await serve(completionApp(requests).app);
    const received = await firstValueFrom(
      fromEventSource(`${url}/complete`, request('the quick brown fox')).pipe(
        takeWhile((event) => event.type !== 'done', true),
        toArray(),
      ),
    );
    expect(received.map((event) => event.data)).toEqual(['the', 'quick', 'brown', 'fox', { count: 4 }]);
    expect(requests).toEqual([{ body: { prompt: 'the quick brown fox' }, lastEventId: undefined }]);
  });

  it('sends the body again when it resumes a cut stream, and loses no token', async () => {
    const requests: unknown[] = [];
    const { app, responses } = completionApp(requests, true);
    const url = await serve(app);
    const received = await firstValueFrom(
      fromEventSource(`${url}/complete`, { ...request('one two three four five'), retryDelay: 1 }).pipe(
        // The connection drops once the second token is in.
        tap((event) => event.id === '1' && responses[0]!.socket?.destroy()),
        takeWhile((event) => event.type !== 'done', true),
        toArray(),
      ),
    );
    expect(received.map((event) => event.data)).toEqual([
      'one',
      'two',
      'three',
      'four',
      'five',
      { count: 5 },
    ]);
    expect(requests).toEqual([
      { body: { prompt: 'one two three four five' }, lastEventId: undefined },
      { body: { prompt: 'one two three four five' }, lastEventId: '1' },
    ]);
  });
});

describe('stall detection and teardown', () => {
  it('aborts a connection that sends no byte for stallTimeout and reconnects', async () => {
    const closes: CloseReason[] = [];
    const app = express();
    app.get(
      '/sse',
      sse(() => concat(of({ data: 'then silence', id: '1' }), NEVER), {
        retry: 1,
        heartbeat: false,
        onClose: (reason) => closes.push(reason),
      }),
    );
    const url = await serve(app);
    fakeTimers();
    const counting = countingFetch();
    const reasons: unknown[] = [];
    const client = recorded(
      fromEventSource(`${url}/sse`, {
        fetch: counting.fetch,
        stallTimeout: 10_000,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => client.values.length === 1, 'the first event');
    await vi.advanceTimersByTimeAsync(9_999);
    expect(counting.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(SseStallError);
    expect(reasons[0]).toMatchObject({
      name: 'SseStallError',
      timeout: 10_000,
      message: 'No byte from the event stream for 10000 ms',
    });
    // The route's retry: 1 makes the reconnect due 1 ms later: its timer is the only one pending.
    await vi.runOnlyPendingTimersAsync();
    await until(() => counting.requests.length === 2, 'the reconnect');
    expect(counting.requests[1]!.get('last-event-id')).toBe('1');
    await until(() => closes.length === 1, 'the server to see the first connection close');
    expect(closes).toEqual(['client']);
  });

  it('takes a server that never answers for dead after the default 45 s', async () => {
    let requests = 0;
    const app = express();
    app.get('/sse', () => {
      requests++;
    });
    const url = await serve(app);
    fakeTimers();
    const reasons: unknown[] = [];
    recorded(fromEventSource(`${url}/sse`, { onReconnect: (reason) => reasons.push(reason) }));
    await until(() => requests === 1, 'the request');
    await vi.advanceTimersByTimeAsync(44_999);
    expect(reasons).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatchObject({ name: 'SseStallError', timeout: 45_000 });
  });

  it('counts stallTimeout from the response headers of a server slow to answer, not from the request', async () => {
    let response: express.Response | undefined;
    const app = express();
    app.get('/sse', (_req, res) => {
      response = res;
    });
    const url = await serve(app);
    fakeTimers();
    let answered = 0;
    const reasons: unknown[] = [];
    recorded(
      fromEventSource(`${url}/sse`, {
        fetch: async (input, init) => {
          const answer = await fetch(input, init);
          answered++;
          return answer;
        },
        stallTimeout: 10_000,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => response !== undefined, 'the request');
    await vi.advanceTimersByTimeAsync(8_000);
    response!.writeHead(200, { 'content-type': 'text/event-stream' }).flushHeaders();
    await until(() => answered === 1, 'the headers');
    await vi.advanceTimersByTimeAsync(9_999);
    expect(reasons).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(SseStallError);
  });

  it('keeps a connection that sends a byte within every stallTimeout, however long it lasts', async () => {
    const held = await heldStream();
    fakeTimers();
    const counting = countingFetch();
    const reasons: unknown[] = [];
    const client = recorded(
      fromEventSource(held.url, {
        fetch: counting.fetch,
        stallTimeout: 10_000,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    const response = await held.response();
    for (let n = 1; n <= 5; n++) {
      response.write(`data: ${n}\n\n`);
      await until(() => client.values.length === n, `event ${n}`);
      await vi.advanceTimersByTimeAsync(6_000);
    }
    expect(reasons).toEqual([]);
    expect(counting.requests).toHaveLength(1);
  });

  it("counts stallTimeout from when the subscriber is done with a chunk's events, not from when the chunk came", async () => {
    const held = await heldStream();
    fakeTimers();
    const reasons: unknown[] = [];
    const received: unknown[] = [];
    const subscription = fromEventSource(held.url, {
      stallTimeout: 10_000,
      onReconnect: (reason) => reasons.push(reason),
    }).subscribe((event) => {
      received.push(event.data);
      // A subscriber busy for 9 s: the bytes the server sends meanwhile wait to be read.
      if (received.length === 1) vi.advanceTimersByTime(9_000);
    });
    subscriptions.push(subscription);
    const response = await held.response();
    response.write('data: 1\n\n');
    await until(() => received.length === 1, 'event 1');
    await vi.advanceTimersByTimeAsync(9_000);
    response.write('data: 2\n\n');
    await until(() => received.length === 2, 'event 2');
    expect(reasons).toEqual([]);
  });

  // 2^31 and past: timers overflow there and fire at once, which would drop every connection.
  it.each<number | false>([false, 2 ** 31, Number.POSITIVE_INFINITY])(
    'with a stallTimeout of %s, keeps a silent connection open however long it stays silent',
    async (stallTimeout) => {
      const app = express();
      app.get(
        '/sse',
        sse(() => concat(of({ data: 'then silence' }), NEVER), { heartbeat: false }),
      );
      const url = await serve(app);
      fakeTimers();
      const counting = countingFetch();
      const reasons: unknown[] = [];
      const client = recorded(
        fromEventSource(`${url}/sse`, {
          fetch: counting.fetch,
          stallTimeout,
          onReconnect: (reason) => reasons.push(reason),
        }),
      );
      await until(() => client.values.length === 1, 'the event');
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(reasons).toEqual([]);
      expect(counting.requests).toHaveLength(1);
    },
  );

  it('unsubscribing aborts the request: the server sees a client close, and nothing fires after', async () => {
    const closes: CloseReason[] = [];
    const app = express();
    app.get(
      '/sse',
      sse(() => concat(of({ data: 'first' }), NEVER), {
        heartbeat: false,
        onClose: (reason) => closes.push(reason),
      }),
    );
    const url = await serve(app);
    const reasons: unknown[] = [];
    const client = recorded(fromEventSource(`${url}/sse`, { onReconnect: (reason) => reasons.push(reason) }));
    await until(() => client.values.length === 1, 'the first event');
    client.subscription.unsubscribe();
    await until(() => closes.length === 1, 'the server to see the close');
    expect(closes).toEqual(['client']);
    expect(client.error).toBeUndefined();
    expect(client.completed).toBe(false);
    expect(reasons).toEqual([]);
  });

  it('decodes no event of the chunk left once a callback unsubscribed', async () => {
    const app = express();
    // Three events in one write, so they arrive in one chunk: take(1) unsubscribes at the first.
    app.get('/sse', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write([1, 2, 3].map((n) => `event: tick\ndata: {"n":${n}}\n\n`).join(''));
    });
    const url = await serve(app);
    const { decoded, watched } = decodesWatched();
    const delivered = await firstValueFrom(fromEventSource(`${url}/sse`, { events: watched }).pipe(take(1)));
    expect(delivered).toEqual({ type: 'tick', data: { n: 1 }, id: '' });
    expect(decoded).toEqual(['{"n":1}']);
  });

  it('decodes no event of a chunk read just before an unsubscribe that came from elsewhere', async () => {
    const { decoded, watched } = decodesWatched();
    let reads = 0;
    const read = () => {
      const chunk = Promise.resolve(
        reads++
          ? { done: true, value: undefined }
          : { done: false, value: new TextEncoder().encode('event: tick\ndata: {"n":1}\n\n') },
      );
      // The app unsubscribes (a takeUntil of its own, say) after the chunk came, before it is parsed.
      void chunk.then(() => queueMicrotask(() => client.subscription.unsubscribe()));
      return chunk;
    };
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        events: watched,
        fetch: (async () => ({
          status: 200,
          headers: new Headers({ 'content-type': 'text/event-stream' }),
          body: { getReader: () => ({ read, cancel: async () => {} }), cancel: async () => {} },
        })) as unknown as typeof fetch,
      }),
    );
    await until(() => client.subscription.closed, 'the unsubscribe');
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads).toBe(1);
    expect(client.values).toEqual([]);
    expect(decoded).toEqual([]);
  });

  it('tells onReconnect nothing when unsubscribed at the last event of a body that ends, even one abort does not cut', async () => {
    const reasons: unknown[] = [];
    // A Response of a string, as a fetch mock or a service worker's cache gives: abort cannot end it.
    const body = 'data: last\n\n';
    const events = await firstValueFrom(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: async () => new Response(body, { headers: { 'content-type': 'text/event-stream' } }),
        onReconnect: (reason) => reasons.push(reason),
      }).pipe(take(1), toArray()),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual([{ type: 'message', data: 'last', id: '' }]);
    expect(reasons).toEqual([]);
  });

  it('cancels, on unsubscribe, a body that abort does not cut', async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => controller.enqueue(new TextEncoder().encode('data: first\n\n')),
      cancel: () => {
        cancelled = true;
      },
    });
    await firstValueFrom(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: async () => new Response(body, { headers: { 'content-type': 'text/event-stream' } }),
      }),
    );
    await until(() => cancelled, 'the body to be cancelled', 1_000);
  });

  // A mock's body or reader, as a fetch option of the app's own resolves it: its cancel may be missing,
  // return no promise, or throw, none of which is to escape as an uncaught error (a Node process's end).
  const cancels: [string, Record<string, unknown>][] = [
    ['no cancel', {}],
    ['a cancel that returns no promise', { cancel: () => undefined }],
    [
      'a cancel that throws',
      {
        cancel: () => {
          throw new Error('cancel');
        },
      },
    ],
  ];

  it.each(cancels)('lets go of a reader with %s on unsubscribe, throwing nothing', async (_name, cancel) => {
    const uncaught: unknown[] = [];
    const hear = (error: unknown) => uncaught.push(error);
    process.prependListener('uncaughtException', hear);
    try {
      let reading = false;
      const reader = {
        read: () => {
          reading = true;
          return new Promise(() => {});
        },
        ...cancel,
      };
      const client = recorded(
        fromEventSource('http://127.0.0.1:1/sse', {
          fetch: (async () => ({
            status: 200,
            headers: new Headers({ 'content-type': 'text/event-stream' }),
            body: { getReader: () => reader },
          })) as unknown as typeof fetch,
        }),
      );
      await until(() => reading, 'the read');
      client.subscription.unsubscribe();
      await new Promise((resolve) => setImmediate(resolve));
      expect(uncaught).toEqual([]);
      expect(client.error).toBeUndefined();
    } finally {
      process.removeListener('uncaughtException', hear);
    }
  });

  it.each(cancels)('retries a 503 whose body has %s', async (_name, cancel) => {
    const reasons: unknown[] = [];
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: (async () => ({
          status: 503,
          headers: new Headers(),
          body: cancel,
        })) as unknown as typeof fetch,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => reasons.length > 0 || client.error !== undefined, 'the retry');
    expect(client.error).toBeUndefined();
    expect(reasons[0]).toBeInstanceOf(SseResponseError);
  });

  it('cancels the body of a fetch that answers after unsubscribing, one that does not heed the abort', async () => {
    let closed = false;
    const app = express();
    app.get('/sse', (_req, res, next) => {
      res.on('close', () => {
        closed = true;
      });
      next();
    });
    app.get(
      '/sse',
      sse(() => NEVER, { heartbeat: false }),
    );
    const url = `${await serve(app)}/sse`;
    const late = deafFetch({ held: true });
    const client = recorded(fromEventSource(url, { fetch: late.fetch }));
    client.subscription.unsubscribe();
    late.release();
    await until(() => late.answered === 1, 'the late answer');
    await until(() => closed, 'the server to see the connection close', 2_000);
  });

  it('reconnects from a stall while a fetch that does not heed the abort has yet to answer', async () => {
    const app = express();
    app.get(
      '/sse',
      sse(() => NEVER, { heartbeat: false }),
    );
    const url = `${await serve(app)}/sse`;
    fakeTimers();
    const late = deafFetch({ held: true });
    const reasons: unknown[] = [];
    recorded(
      fromEventSource(url, {
        fetch: late.fetch,
        stallTimeout: 1_000,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await vi.advanceTimersByTimeAsync(1_000);
    late.release();
    await until(() => late.answered === 1, 'the late answer');
    await until(() => reasons.length === 1, 'the reconnect', 2_000);
    expect(reasons[0]).toBeInstanceOf(SseStallError);
  });

  it('reconnects from a stall while a fetch that does not heed the abort never answers, and cancels its late answer', async () => {
    const held: express.Response[] = [];
    let closed = false;
    const app = express();
    // A server that takes the request and never answers: only the stall timer can end the wait.
    app.get('/sse', (_req, res) => {
      held.push(res);
      res.on('close', () => {
        closed = true;
      });
    });
    const url = `${await serve(app)}/sse`;
    fakeTimers();
    const reasons: unknown[] = [];
    recorded(
      fromEventSource(url, {
        fetch: deafFetch().fetch,
        stallTimeout: 1_000,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => held.length === 1, 'the request');
    await vi.advanceTimersByTimeAsync(1_000);
    await until(() => reasons.length === 1, 'the reconnect', 2_000);
    expect(reasons[0]).toBeInstanceOf(SseStallError);
    // The answer that comes after all is let go, not left holding its connection.
    held[0]!.writeHead(200, { 'content-type': 'text/event-stream' }).write(': late\n\n');
    await until(() => closed, 'the server to see the late answer cancelled', 2_000);
  });

  it('reconnects from a stall while a reader of its own never settles its read, cancelled or not', async () => {
    fakeTimers();
    const reasons: unknown[] = [];
    let reads = 0;
    recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: (async () => ({
          status: 200,
          headers: new Headers({ 'content-type': 'text/event-stream' }),
          body: {
            getReader: () => ({
              read: () => {
                reads++;
                return new Promise(() => {});
              },
              cancel: async () => {},
            }),
          },
        })) as unknown as typeof fetch,
        stallTimeout: 1_000,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await until(() => reads === 1, 'the read');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reasons).toEqual([expect.any(SseStallError)]);
  });

  it('takes a headers() that does not settle within stallTimeout for a stall, and asks it again', async () => {
    const app = express();
    app.get(
      '/sse',
      sse(() => concat(of({ data: 'hello' }), NEVER), { heartbeat: false }),
    );
    const url = `${await serve(app)}/sse`;
    fakeTimers();
    let headerCalls = 0;
    const reasons: unknown[] = [];
    const client = recorded(
      fromEventSource(url, {
        // A token endpoint that never answers the first time, then does.
        headers: () =>
          ++headerCalls === 1 ? new Promise<HeadersInit>(() => {}) : { authorization: 'Bearer t' },
        stallTimeout: 1_000,
        retryDelay: 1,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await vi.advanceTimersByTimeAsync(999);
    expect(reasons).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(SseStallError);
    await vi.runOnlyPendingTimersAsync();
    await until(() => client.values.length === 1, 'the event, once headers() answered');
    expect(headerCalls).toBe(2);
  });

  it('gives the request its whole stallTimeout, however long headers() took', async () => {
    const held: express.Response[] = [];
    const app = express();
    app.get('/sse', (_req, res) => {
      held.push(res);
    });
    const url = `${await serve(app)}/sse`;
    fakeTimers();
    const reasons: unknown[] = [];
    recorded(
      fromEventSource(url, {
        headers: () => new Promise<HeadersInit>((resolve) => setTimeout(() => resolve({}), 900)),
        stallTimeout: 1_000,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await vi.advanceTimersByTimeAsync(900);
    await until(() => held.length === 1, 'the request');
    await vi.advanceTimersByTimeAsync(999);
    expect(reasons).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(reasons).toHaveLength(1);
  });

  it('unsubscribing as it takes an event leaves no timer behind, with a reader that never settles a read, cancelled or not', async () => {
    fakeTimers();
    const before = vi.getTimerCount();
    let reads = 0;
    const read = () =>
      reads++ === 0
        ? Promise.resolve({ done: false, value: new TextEncoder().encode('data: a\n\n') })
        : new Promise(() => {});
    const answer = {
      status: 200,
      headers: new Headers({ 'content-type': 'text/event-stream' }),
      body: { getReader: () => ({ read, cancel: async () => {} }), cancel: async () => {} },
    };
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: (async () => answer) as unknown as typeof fetch,
      }).pipe(take(1)),
    );
    await until(() => client.values.length === 1, 'the event');
    await new Promise((resolve) => setImmediate(resolve));
    expect(vi.getTimerCount()).toBe(before);
    expect(reads).toBe(1);
  });

  it('unsubscribing while headers() has not settled leaves no timer behind', async () => {
    fakeTimers();
    const before = vi.getTimerCount();
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', { headers: () => new Promise<HeadersInit>(() => {}) }),
    );
    await Promise.resolve();
    expect(vi.getTimerCount()).toBe(before + 1);
    client.subscription.unsubscribe();
    await new Promise((resolve) => setImmediate(resolve));
    expect(vi.getTimerCount()).toBe(before);
  });

  it('unsubscribing as the response arrives, before it is read, cancels its body: no timer, no reconnect told of', async () => {
    fakeTimers();
    const before = vi.getTimerCount();
    let cancelled = 0;
    // Open and silent, and not fetch's own: the abort does not end it, only a cancel does.
    const body = new ReadableStream<Uint8Array>({ cancel: () => void cancelled++ });
    const reasons: unknown[] = [];
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: () => {
          const answer = Promise.resolve(
            new Response(body, { headers: { 'content-type': 'text/event-stream' } }),
          );
          // Once the client has the response, before it goes on to read it.
          void answer.then(() => queueMicrotask(() => client.subscription.unsubscribe()));
          return answer;
        },
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.subscription.closed).toBe(true);
    expect(cancelled).toBe(1);
    expect(vi.getTimerCount()).toBe(before);
    expect(reasons).toEqual([]);
  });

  it('reconnects from a stalled body that abort does not cut', async () => {
    fakeTimers();
    const reasons: unknown[] = [];
    recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: async () =>
          new Response(new ReadableStream(), { headers: { 'content-type': 'text/event-stream' } }),
        stallTimeout: 1_000,
        onReconnect: (reason) => reasons.push(reason),
      }),
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(SseStallError);
  });

  /**
   * A route that answers 503 with an hour's `Retry-After`, on fake timers: its URL, and the timers
   * pending before a client starts.
   */
  async function busyRoute() {
    const app = express();
    app.get('/sse', (_req, res) => {
      // No connection kept alive: undici's timers for idle sockets would blur the count.
      res.status(503).set({ 'retry-after': '3600', connection: 'close' }).send('busy');
    });
    const url = `${await serve(app)}/sse`;
    fakeTimers();
    // undici's clock, if fetch starts it under fake timers, is running before the client does.
    await fetch(url).then((response) => response.text());
    return { url, before: vi.getTimerCount() };
  }

  it('unsubscribing during a backoff wait ends it: no timer left, no header call, no request', async () => {
    const { url, before } = await busyRoute();
    const counting = countingFetch();
    let headerCalls = 0;
    const delays: number[] = [];
    const client = recorded(
      fromEventSource(url, {
        fetch: counting.fetch,
        headers: () => {
          headerCalls++;
          return {};
        },
        onReconnect: (_reason, delay) => delays.push(delay),
      }),
    );
    await until(() => delays.length === 1, 'the 503');
    client.subscription.unsubscribe();
    await new Promise((resolve) => setImmediate(resolve));
    // A timer left pending would hold a Node process open for the whole wait.
    expect(vi.getTimerCount()).toBe(before);
    expect(headerCalls).toBe(1);
    expect(counting.requests).toHaveLength(1);
  });

  it('unsubscribing from onReconnect starts no wait: no timer left, no request', async () => {
    const { url, before } = await busyRoute();
    const counting = countingFetch();
    const delays: number[] = [];
    const client = recorded(
      fromEventSource(url, {
        fetch: counting.fetch,
        onReconnect: (_reason, delay) => {
          delays.push(delay);
          client.subscription.unsubscribe();
        },
      }),
    );
    await until(() => delays.length === 1, 'the 503');
    await new Promise((resolve) => setImmediate(resolve));
    // The signal is aborted before the wait begins: its abort event is long gone.
    expect(vi.getTimerCount()).toBe(before);
    expect(counting.requests).toHaveLength(1);
  });

  it('an async onReconnect that rejects ends the Observable as a throwing one does: never unhandled, no timer left', async () => {
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    try {
      const { url, before } = await busyRoute();
      const counting = countingFetch();
      const client = recorded(
        fromEventSource(url, {
          fetch: counting.fetch,
          onReconnect: async () => {
            throw new Error('onReconnect rejected');
          },
        }),
      );
      await until(() => client.error !== undefined || unhandled.length > 0, 'the rejection');
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
      expect(String(client.error)).toBe('Error: onReconnect rejected');
      expect(vi.getTimerCount()).toBe(before);
      expect(counting.requests).toHaveLength(1);
    } finally {
      stop();
    }
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['a string', 'Bearer x'],
  ])(
    'ends with a TypeError naming the header function when it returns %s, before any request',
    async (_name, value) => {
      const counting = countingFetch();
      const client = recorded(
        fromEventSource('http://127.0.0.1:1/sse', {
          fetch: counting.fetch,
          headers: async () => value as HeadersInit,
        }),
      );
      await until(() => client.error !== undefined, 'the error');
      expect(client.error).toBeInstanceOf(TypeError);
      expect((client.error as Error).message).toMatch(
        /^headers\(\) must return an object, an array of pairs or a Headers, got (null|"Bearer x")$/,
      );
      expect(counting.requests).toHaveLength(0);
    },
  );

  it('opens no request when unsubscribed while the header function is still working', async () => {
    const app = express();
    app.get('/sse', (_req, res) => {
      res.status(204).end();
    });
    const url = await serve(app);
    const counting = countingFetch();
    let release!: () => void;
    const token = new Promise<void>((resolve) => {
      release = resolve;
    });
    const client = recorded(
      fromEventSource(`${url}/sse`, {
        fetch: counting.fetch,
        headers: async () => {
          await token;
          return { authorization: 'Bearer late' };
        },
      }),
    );
    client.subscription.unsubscribe();
    release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(counting.requests).toHaveLength(0);
  });

  it('opens no request when unsubscribed as the header function settles, even with a fetch that does not heed the abort', async () => {
    const deaf = deafFetch();
    let calls = 0;
    let release!: (headers: HeadersInit) => void;
    const token = new Promise<HeadersInit>((resolve) => {
      release = resolve;
    });
    const client = recorded(
      fromEventSource('http://127.0.0.1:1/sse', {
        fetch: (input, init) => {
          calls++;
          return deaf.fetch(input, init);
        },
        headers: () => token,
      }),
    );
    // An app that signs out as the token comes: its unsubscribe runs once the client has the headers,
    // before it sends the request, which a fetch that drops the abort signal would send regardless.
    void token.then(() => client.subscription.unsubscribe());
    release({ authorization: 'Bearer late' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toBe(0);
    expect(client.error).toBeUndefined();
  });

  it('leaves no abort listener behind from one connection to the next', async () => {
    const { warnings, stop } = recordWarnings();
    try {
      // Node warns once an AbortSignal holds more than 10 listeners.
      await delaysWhileFailing(15, { retryDelay: 1, maxRetryDelay: 1 });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      stop();
    }
    expect(warnings.map((warning) => warning.name)).not.toContain('MaxListenersExceededWarning');
  });
});
