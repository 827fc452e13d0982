// The fetch handler and its sink at their edges: a request aborted before the stream began, a body
// cancelled or read to its end, HEAD, the opening comment, the default heartbeat, Last-Event-ID.
import { EventEmitter, getEventListeners, on, once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { type MessageEvent, openStreams, SOURCE_HEADERS, StreamGroup, streamEvents } from '@rxsse/core';
import { createChannel } from '@rxsse/core/channel';
import { closeStreamsOnServerClose } from '@rxsse/node';
import { Hono } from 'hono';
import { compress } from 'hono/compress';
import { etag } from 'hono/etag';
import { timeout } from 'hono/timeout';
import { concat, defer, from, fromEvent, NEVER, Observable, of, Subject, takeUntil, throwError } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { httpRequest, rawClient, rawRequests, waitFor } from '../../../test/support/clients.js';
import { captureConsoleErrors } from '../../../test/support/logged.js';
import { counted, countingListeners, metered, recording } from '../../../test/support/recording.js';
import { closeStreamsAndStop, readLastEventId, SseStreamDroppedError, sse, WebSink } from '../src/index.js';
import { honoHarness } from './harness.js';
import { serveFetch } from './node-bridge.js';

const request = (init?: RequestInit, path = '/sse') => new Request(`http://127.0.0.1${path}`, init);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('sse(): a client gone before the stream began', () => {
  it('closes with reason client, and releases the source, for a request already aborted', async () => {
    const source = counted(NEVER);
    const { options, closes } = recording({ heartbeat: false });
    const abort = new AbortController();
    abort.abort();
    // The runtime still awaits an answer, though nobody reads it: a bodiless one, not an error.
    const response = await sse(() => source.observable, options)(request({ signal: abort.signal }));
    expect(response.status).toBe(204);
    expect(response.body).toBeNull();
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(source.counts.active).toBe(0);
  });

  it('aborts a signal first read after the request aborted', async () => {
    const abort = new AbortController();
    const sink = new WebSink(request({ signal: abort.signal }));
    abort.abort();
    expect(sink.signal.aborted).toBe(true);
  });

  it("aborts the handler's signal with the request's own reason, before it is first read and after", async () => {
    const reason = 'aborted'; // @hono/node-server's reason, a string
    const before = new AbortController();
    before.abort(reason);
    expect(new WebSink(request({ signal: before.signal })).signal.reason).toBe(reason);
    const after = new AbortController();
    let signal: AbortSignal | undefined;
    await sse((_request, context) => {
      signal = context.signal;
      return NEVER;
    })(request({ signal: after.signal }));
    after.abort(reason);
    expect(signal!.reason).toBe(reason);
  });

  it('closes with reason client a stream whose async handler resolved after the request aborted', async () => {
    const source = counted(NEVER);
    const { options, closes } = recording({ heartbeat: false });
    const abort = new AbortController();
    const response = await sse(async () => {
      abort.abort(); // the client leaves while, say, an auth lookup runs
      await Promise.resolve();
      return source.observable;
    }, options)(request({ signal: abort.signal }));
    expect(response.body).toBeNull();
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(source.counts.active).toBe(0);
  });

  it('returns() an iterator the handler made, when the request aborted before the stream began', async () => {
    // `events.on` listens from the moment it is called, and stops only at its iterator's return().
    const emitter = new EventEmitter();
    const { options, closes } = recording({ heartbeat: false });
    const abort = new AbortController();
    const response = await sse(async () => {
      const iterator = on(emitter, 'tick');
      abort.abort();
      await Promise.resolve();
      return iterator as unknown as AsyncIterable<MessageEvent>;
    }, options)(request({ signal: abort.signal }));
    expect(response.body).toBeNull();
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(emitter.listenerCount('tick')).toBe(0);
  });
  it('answers at once when the client leaves while the handler sets up, and ends what it resolves to later', async () => {
    const emitter = new EventEmitter();
    const { options, closes } = recording({ heartbeat: false });
    const abort = new AbortController();
    let resolve!: (iterator: AsyncIterable<MessageEvent>) => void;
    const answer = sse(
      () =>
        new Promise<AsyncIterable<MessageEvent>>((settle) => {
          resolve = settle;
        }),
      options,
    )(request({ signal: abort.signal }));
    abort.abort();
    expect((await answer).status).toBe(204);
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    resolve(on(emitter, 'tick') as unknown as AsyncIterable<MessageEvent>);
    await vi.waitFor(() => expect(emitter.listenerCount('tick')).toBe(0));
    expect(closes).toHaveLength(1);
  });

  it('closes with reason client, not as turned away, a request whose client left before its group shut down', async () => {
    const group = new StreamGroup();
    group.closeUntil(new Promise(() => {})); // a shutdown that runs while the request comes in
    const source = counted(NEVER);
    const { options, closes } = recording({ heartbeat: false, group });
    const abort = new AbortController();
    abort.abort();
    await sse(() => source.observable, options)(request({ signal: abort.signal }));
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(source.counts.subscribed).toBe(0);
  });
});

describe('sse(): a handler that throws or rejects with no error', () => {
  it.each([
    [
      'throws undefined',
      () => {
        throw undefined;
      },
    ],
    ['rejects with null', () => Promise.reject(null)],
    ['rejects with 0', () => Promise.reject(0)],
  ])(
    'rejects with an Error naming the value when it %s, for the framework to answer',
    async (_label, handler) => {
      const failure = await sse(handler as never)(request()).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(Error);
      expect((failure as Error).message).toMatch(
        /^the event handler failed with (undefined|null|number 0), no error$/,
      );
    },
  );
});

describe('sse() on Hono: a handler that throws a string or a symbol', () => {
  it.each([
    ['a string', 'database went away', /the event handler failed with string database went away/],
    ['a symbol', Symbol('unreachable'), /the event handler failed with symbol Symbol\(unreachable\)/],
  ])(
    'rejects with an Error naming %s, which Hono logs, instead of a 500 no log tells of',
    async (_label, thrown, logged) => {
      const server = await honoHarness.start([
        {
          path: '/sse',
          events: () => {
            throw thrown;
          },
        },
      ]);
      try {
        const response = await fetch(`${server.url}/sse`);
        expect(response.status).toBe(500);
        await response.text();
        expect(server.logged.join('\n')).toMatch(logged);
      } finally {
        await server.close();
      }
    },
  );
});

describe('sse() on Hono: a handler that returns a Response whose body was read or is locked', () => {
  it.each([
    ['read', async (response: Response) => void (await response.text()), 'read or cancelled'],
    ['locked', async (response: Response) => void response.body!.getReader(), 'locked by a reader'],
    // A cancelled body is a disturbed one: `bodyUsed` says so, as for one read.
    ['cancelled', async (response: Response) => void (await response.body!.cancel()), 'read or cancelled'],
  ])(
    'rejects with a TypeError that names it (body %s), which Hono logs and answers 500, instead of a 200 whose body fails',
    async (_label, spoil, named) => {
      const logged: string[] = [];
      const restore = captureConsoleErrors(logged);
      try {
        const handler = sse(async () => {
          const response = new Response('cached page');
          await spoil(response);
          return response;
        });
        const app = new Hono();
        app.get('/sse', (c) => handler(c.req.raw));
        const response = await app.request('/sse');
        expect(response.status).toBe(500);
        expect(logged.join('\n')).toContain(
          `TypeError: the event handler returned a Response whose body was ${named}: return one whose body no one read`,
        );
      } finally {
        restore();
      }
    },
  );
});

describe('sse(): a handler that fails after it used its signal', () => {
  const listening = () => {
    const { engine, counts } = countingListeners();
    return { chat: createChannel(engine, 'room'), counter: counts };
  };

  it('aborts the signal when the handler throws, so a channel subscription it made is released', async () => {
    const { chat, counter } = listening();
    const req = request();
    const handler = sse(async (_request, context) => {
      await chat.subscribe(context);
      throw new Error('not authorized'); // say, a check that ran after the subscription
    });
    await expect(handler(req)).rejects.toThrow('not authorized');
    expect(counter.live).toBe(0);
    expect(getEventListeners(req.signal, 'abort')).toHaveLength(0);
  });

  it('aborts the signal when the handler returns no source', async () => {
    const { chat, counter } = listening();
    const handler = sse(async (_request, context) => ({ source: await chat.subscribe(context) }) as never);
    await expect(handler(request())).rejects.toThrow(TypeError);
    expect(counter.live).toBe(0);
  });
});

describe("sse(): a handler that fails with its signal's abort after the client left", () => {
  it.each([
    ['the reason of its signal', (signal: AbortSignal) => signal.reason],
    [
      'an AbortError of an API it gave its signal',
      () => new DOMException('This operation was aborted', 'AbortError'),
    ],
  ])('closes with reason client, and reports nothing, when it fails with %s', async (_label, failure) => {
    const { options, closes } = recording({ heartbeat: false });
    let requested = false;
    const server = await honoHarness.start([
      {
        path: '/sse',
        // Say, a fetch upstream given the signal, as the README suggests.
        events: ({ signal }) => {
          requested = true;
          return new Promise((_resolve, reject) =>
            signal.addEventListener('abort', () => reject(failure(signal))),
          );
        },
        options,
      },
    ]);
    const client = await rawClient(`${server.url}/sse`, { read: true });
    try {
      await waitFor(() => requested, 5000, 'the handler');
      client.destroy();
      await waitFor(() => closes.length === 1 || server.logged.length > 0, 5000, 'the close');
      expect(server.logged).toEqual([]);
      expect(closes.map((c) => c.reason)).toEqual(['client']);
    } finally {
      client.destroy();
      await server.close();
    }
  });

  it('still reports what the handler throws after its client left, when it is not the abort', async () => {
    const { options, closes } = recording({ heartbeat: false });
    const onError = vi.fn();
    const abort = new AbortController();
    const handler = sse(
      async (_request, { signal }) => {
        abort.abort(); // the client leaves while, say, a query runs
        await Promise.resolve();
        expect(signal.aborted).toBe(true);
        throw new Error('database went away');
      },
      { ...options, onError },
    );
    // The client that left has its answer already: the failure goes to the route's own report.
    expect((await handler(request({ signal: abort.signal }))).status).toBe(204);
    await vi.waitFor(() => expect(onError).toHaveBeenCalledOnce());
    expect(onError.mock.calls[0]![0]).toMatchObject({ message: 'database went away' });
    expect(closes.map((c) => c.reason)).toEqual(['client']);
  });
});

/**
 * Serves `handler` at /sse on @hono/node-server, whose abort reason is a string, and reads it with a
 * raw client; `logged` collects what the console's error channel printed meanwhile.
 */
async function readOnHono(handler: (request: Request) => Promise<Response>) {
  const app = new Hono();
  app.get('/sse', (c) => handler(c.req.raw));
  const logged: string[] = [];
  const restore = captureConsoleErrors(logged);
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  cleanups.push(async () => {
    restore();
    await new Promise((resolve) => server.close(resolve));
  });
  if (!server.listening) await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`;
  return { client: await rawClient(url, { read: true }), logged };
}

describe("sse() on Hono: a handler that fails with request.signal's abort after the client left", () => {
  /** A server that takes requests and never answers: an upstream that outlasts the client. */
  async function silentUpstream(): Promise<string> {
    const held: ServerResponse[] = [];
    const upstream = createServer((_req, res) => void held.push(res)).listen(0, '127.0.0.1');
    if (!upstream.listening) await once(upstream, 'listening');
    cleanups.push(async () => {
      for (const res of held) res.destroy();
      await new Promise((resolve) => upstream.close(resolve));
    });
    return `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`;
  }

  it.each([
    [
      'the reason of request.signal',
      async (request: Request) => {
        await new Promise((_resolve, reject) =>
          request.signal.addEventListener('abort', () => reject(request.signal.reason)),
        );
      },
    ],
    [
      'a fetch upstream given request.signal',
      async (request: Request, upstream: string) => {
        await fetch(upstream, { signal: request.signal });
      },
    ],
  ])('closes with reason client, and logs nothing, when it fails with %s', async (_label, wait) => {
    const upstream = await silentUpstream();
    const { options, closes } = recording({ heartbeat: false });
    let requested = false;
    // Say, an upstream fetched before the stream begins, given the Request's own signal: on
    // @hono/node-server its abort reason is a string, which fetch rejects with as it is.
    const handler = sse(async (request) => {
      requested = true;
      await wait(request, upstream);
      return NEVER;
    }, options);
    const { client, logged } = await readOnHono(handler);
    await waitFor(() => requested, 5000, 'the handler');
    client.destroy();
    await waitFor(() => closes.length === 1 || logged.length > 0, 5000, 'the close');
    expect(logged).toEqual([]);
    expect(closes.map((c) => c.reason)).toEqual(['client']);
  });
});

describe("sse() on Hono: a handler that fails with request.signal's abort once a shutdown aborted its signal", () => {
  it('is no error of the route when its client leaves before the deadline: nothing logged', async () => {
    const group = new StreamGroup();
    const { options, closes } = recording({ heartbeat: false, group });
    let requested = false;
    // It waits on the Request's own signal, whose abort reason on @hono/node-server is a string,
    // and not on the one the shutdown aborts.
    const handler = sse(async (request) => {
      requested = true;
      await new Promise((_resolve, reject) =>
        request.signal.addEventListener('abort', () => reject(request.signal.reason)),
      );
      return NEVER;
    }, options);
    const { client, logged } = await readOnHono(handler);
    cleanups.push(async () => client.destroy());
    await waitFor(() => requested, 5000, 'the handler');
    // A deadline no test waits for: the handler is still pending when its client leaves.
    void group.close({ deadline: 2 ** 31 - 1 });
    client.destroy();
    await waitFor(() => closes.length === 1 || logged.length > 0, 5000, 'the close');
    expect(logged).toEqual([]);
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
  });
});

describe('sse(): a handler that resolves while the server shuts down', () => {
  it('turns the request away instead of starting a stream the close would miss', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered = false;
    const { options, closes } = recording();
    const server = await honoHarness.start(
      [
        {
          path: '/sse',
          events: async () => {
            entered = true;
            await gate; // say, an auth lookup still running when the shutdown begins
            return concat(from([{ data: 'late' }]), NEVER);
          },
          options: { ...options, retry: 100 },
        },
      ],
      { deadline: 1000 },
    );
    const client = await rawClient(`${server.url}/sse`, { read: true });
    let closed: Promise<void> | undefined;
    try {
      await waitFor(() => entered, 5000, 'the handler');
      closed = server.close();
      release();
      // A stream begun now would escape the close, which ended the streams it knew of already.
      await waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the response');
      expect(client.text).toMatch(/^HTTP\/1\.1 200/);
      expect(client.text).toContain('retry: 100');
      expect(client.text).not.toContain('data: late');
      expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
      expect(openStreams.size).toBe(0);
      client.destroy();
      await closed;
      expect(server.logged).toEqual([]);
    } finally {
      client.destroy();
      await closed;
    }
  });
});

describe("sse(): a handler still setting up when its route's own group closes", () => {
  it('aborts its signal and turns its client away, a shutdown, without waiting for the deadline', async () => {
    const group = new StreamGroup();
    const { options, closes } = recording({ group });
    let signal: AbortSignal | undefined;
    const server = await honoHarness.start(
      [
        {
          path: '/sse',
          options,
          events: (context) => {
            signal = context.signal;
            return new Promise<never>((_, reject) => {
              context.signal.addEventListener('abort', () => reject(context.signal.reason));
            });
          },
        },
      ],
      {},
    );
    const client = await rawClient(`${server.url}/sse`, { read: true });
    try {
      await waitFor(() => signal !== undefined, 5000, 'the handler');
      // No stream yet: the group's gauges do not count it.
      expect(group.size).toBe(0);
      // A deadline no test waits for: the close is done once the client has its answer.
      await group.close({ retry: 1000, deadline: 2 ** 31 - 1 });
      expect(signal!.aborted).toBe(true);
      await waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the response');
      expect(client.text).toMatch(/^HTTP\/1\.1 200/);
      expect(client.text).toContain('retry: 1000\n\n');
      // The abort came from the close, not from a client that left.
      expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
      expect(server.logged).toEqual([]);
    } finally {
      client.destroy();
      await server.close();
    }
  });
});

describe("sse(): a request that comes while its route's own group closes", () => {
  it('is turned away at once, its handler never run', async () => {
    const group = new StreamGroup();
    // A stream whose body no one reads yet holds the group's close open until it has flushed.
    const held = await sse(() => NEVER, { group, heartbeat: false })(request());
    const closing = group.close({ retry: 500, deadline: 2 ** 31 - 1 });
    expect(group.closing).toBe(true);
    let ran = false;
    const turnedAway = await sse(
      () => {
        ran = true;
        return NEVER;
      },
      { group },
    )(request());
    expect(await turnedAway.text()).toBe('retry: 500\n\n');
    expect(ran).toBe(false);
    expect(await held.text()).toBe('retry: 500\n\n');
    await closing;
  });
});

describe("sse(): a handler that resolves to no source while its route's own group closes", () => {
  /** A route of `group` whose handler waits for `release()`, ignoring its signal, then returns 42. */
  async function noSourceOnRelease(group: StreamGroup) {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered = false;
    const { options, closes } = recording({ group });
    const events = async () => {
      entered = true;
      await gate; // ignores its signal
      return 42 as never;
    };
    const server = await honoHarness.start([{ path: '/sse', options, events }], {});
    const client = await rawClient(`${server.url}/sse`, { read: true });
    cleanups.push(async () => {
      client.destroy();
      await server.close();
    });
    await waitFor(() => entered, 5000, 'the handler');
    const ended = () => waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the response');
    return { client, server, closes, release, ended };
  }

  it('turns its client away, as a shutdown, and reports the TypeError', async () => {
    const group = new StreamGroup();
    const { client, server, closes, release, ended } = await noSourceOnRelease(group);
    const closing = group.close({ retry: 1000, deadline: 2 ** 31 - 1 });
    release();
    await closing;
    await ended();
    expect(client.text).toMatch(/^HTTP\/1\.1 200/);
    expect(client.text).toContain('retry: 1000\n\n');
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    // The close decides the answer; the handler's bug is still heard of, as when nothing closes.
    expect(server.logged).toHaveLength(1);
    expect(server.logged[0]).toMatch(/TypeError.*returned number 42/);
  });

  it('reports the TypeError when it resolves after the group answered at the deadline', async () => {
    const group = new StreamGroup();
    const { client, server, release, ended } = await noSourceOnRelease(group);
    await group.close({ retry: 1000, deadline: 200 });
    await ended();
    expect(client.text).toContain('retry: 1000\n\n');
    release();
    await waitFor(() => server.logged.length > 0, 5000, 'the report');
    expect(server.logged).toHaveLength(1);
    expect(server.logged[0]).toMatch(/TypeError.*returned number 42/);
  });
});

describe("sse(): a body's reader that takes a chunk's buffer over", () => {
  const text = (chunk: Uint8Array | undefined) => new TextDecoder().decode(chunk);
  /** What a reader may do with a chunk: transfer its buffer (to a worker, say), which detaches it here. */
  const takeOver = (chunk: Uint8Array | undefined) =>
    structuredClone(chunk!, { transfer: [chunk!.buffer as ArrayBuffer] });

  it("takes its own connection's bytes only: another of the same Subject, and the same event later, get theirs", async () => {
    const subject = new Subject<MessageEvent>();
    const handler = sse(() => subject, { heartbeat: false });
    const [a, b] = await Promise.all([handler(request()), handler(request())]);
    const readers = [a, b].map((response) => response.body!.getReader());
    const read = () => Promise.all(readers.map(async (reader) => (await reader.read()).value));
    const [commentA, commentB] = await read();
    expect(text(takeOver(commentA))).toBe(':\n');
    expect(text(commentB)).toBe(':\n');
    subject.next({ data: 'one' });
    const [eventA, eventB] = await read();
    expect(text(takeOver(eventA))).toBe('data: one\n\n');
    expect(text(eventB)).toBe('data: one\n\n');
    subject.next({ data: 'one' });
    expect((await read()).map(text)).toEqual(['data: one\n\n', 'data: one\n\n']);
    // A connection opened later gets its opening comment too.
    const later = (await handler(request())).body!.getReader();
    expect(text((await later.read()).value)).toBe(':\n');
    for (const reader of [...readers, later]) await reader.cancel();
  });

  it('takes the bytes another connection of the same Subject was handed: every connection gets the next event whole', async () => {
    const subject = new Subject<MessageEvent>();
    const handler = sse(() => subject, { heartbeat: false });
    const [a, b] = await Promise.all([handler(request()), handler(request())]);
    const readers = [a, b].map((response) => response.body!.getReader());
    const read = () => Promise.all(readers.map(async (reader) => (await reader.read()).value));
    await read(); // the opening comments
    subject.next({ data: 'one' });
    const [eventA, eventB] = await read();
    expect(text(eventA)).toBe('data: one\n\n');
    // The second connection was handed the bytes the first one's text was encoded to once.
    expect(text(takeOver(eventB))).toBe('data: one\n\n');
    subject.next({ data: 'one' });
    expect((await read()).map(text)).toEqual(['data: one\n\n', 'data: one\n\n']);
    for (const reader of readers) await reader.cancel();
  });

  it('takes one piece of a large event only: the pieces after it keep their bytes', async () => {
    const data = 'x'.repeat(300_000);
    const response = await sse(() => concat(of({ data }), NEVER), { heartbeat: false })(request());
    const reader = response.body!.getReader();
    const event = `data: ${data}\n\n`;
    let received = '';
    while (received.length < event.length) received += text(takeOver((await reader.read()).value));
    expect(received).toBe(event);
    await reader.cancel();
  });
});

describe('WebSink: backpressure and ending', () => {
  it('says full until the runtime first reads the body, and drains then', async () => {
    const sink = new WebSink(request());
    let drains = 0;
    sink.onDrain(() => drains++);
    sink.open({});
    expect(sink.write(new Uint8Array([58, 10]))).toBe(false);
    await new Promise((resolve) => setImmediate(resolve)); // the pulls of the stream itself
    expect(drains).toBe(0);
    expect(sink.pending()).toBe(2);
    const reader = sink.response.body!.getReader();
    expect((await reader.read()).value).toEqual(new Uint8Array([58, 10]));
    await new Promise((resolve) => setImmediate(resolve));
    expect(drains).toBe(1);
    expect(sink.write(new Uint8Array(1))).toBe(true);
    await reader.cancel();
  });

  it('says full once the body the runtime reads holds 64 KiB', async () => {
    const sink = new WebSink(request());
    sink.open({});
    const reader = sink.response.body!.getReader();
    expect((await reader.read()).value).toEqual(new Uint8Array([58, 10])); // the opening comment
    expect(sink.write(new Uint8Array(64 * 1024 - 1))).toBe(true);
    expect(sink.write(new Uint8Array(1))).toBe(false);
    await reader.cancel();
  });

  it('aborts its signal only once the runtime has read every byte of an ended stream', async () => {
    const sink = new WebSink(request());
    sink.open({});
    const signal = sink.signal;
    for (let i = 0; i < 4; i++) sink.write(new Uint8Array(40_000));
    sink.end();
    const reader = sink.response.body!.getReader();
    const seen: boolean[] = [];
    let total = 0;
    for (let piece = await reader.read(); !piece.done; piece = await reader.read()) {
      seen.push(signal.aborted);
      total += piece.value.length;
    }
    // The runtime pulls again once fewer than 64 KiB wait: the stream is not flushed until the last piece.
    expect(total).toBe(160_000);
    expect(seen).toEqual([false, false, false, true]);
    expect(signal.aborted).toBe(true);
  });

  it('closes a sink ended before it opened', () => {
    const sink = new WebSink(request());
    const closed: string[] = [];
    sink.onClose(() => closed.push('closed'));
    sink.end();
    expect(closed).toEqual(['closed']);
    expect(sink.signal.aborted).toBe(true);
  });
});

describe('sse() on Hono: a Response the framework never reads', () => {
  it.each([
    ['an event at once', () => concat(of({ data: 'x' }), NEVER), 4000],
    ['a quiet stream, heartbeats only', () => NEVER, 20],
    ['a quiet stream without heartbeats', () => NEVER, false],
  ] as const)(
    'ends a stream behind timeout() that answered 504 with reason stall after stallTimeout, its source unsubscribed (%s)',
    async (_label, events, heartbeat) => {
      const source = counted(events());
      const group = new StreamGroup();
      const { options, closes } = recording({ heartbeat, stallTimeout: 100, group });
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let made = false;
      const handler = sse(async () => {
        await released; // a slow lookup, still running when timeout() answers
        made = true;
        return source.observable;
      }, options);
      const app = new Hono();
      app.get('/sse', timeout(50), (c) => handler(c.req.raw));
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
      try {
        if (!server.listening) await once(server, 'listening');
        const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`);
        expect(response.status).toBe(504);
        await response.text();
        release();
        await waitFor(() => made && source.counts.subscribed === 1, 5000, 'the stream');
        await waitFor(() => closes.length > 0, 5000, 'the close');
        expect(closes.map((c) => c.reason)).toEqual(['stall']);
        expect(source.counts.active).toBe(0);
        expect(group.size).toBe(0);
      } finally {
        release();
        // Whatever the outcome, no stream of this test outlives it.
        await group.close({ deadline: 10 });
        await new Promise((resolve) => server.close(resolve));
      }
    },
  );
});

describe('sse() on Hono: a source that fails before its first message', () => {
  it("rejects the handler, for Hono's onError to answer, and counts it as failed alone", async () => {
    const { options, closes, seen } = metered({ heartbeat: false });
    const source = counted(throwError(() => new Error('no such feed')));
    const handler = sse(() => source.observable, options);
    const app = new Hono();
    app.get('/sse', (c) => handler(c.req.raw));
    app.onError((error, c) => c.json({ refused: error.message }, 404));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    try {
      if (!server.listening) await once(server, 'listening');
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ refused: 'no such feed' });
      expect([seen, closes, source.counts.active]).toEqual([['failed'], [], 0]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('sse(): a stream opened by its Observable, whose body no one reads', () => {
  it.each([
    ['its first message', () => concat(of({ data: 'x' }), NEVER)],
    ['its subscribe() returning, quiet', () => NEVER],
    [
      'a subscriber that emits once subscribe() returned',
      () =>
        new Observable<MessageEvent>((subscriber) => {
          queueMicrotask(() => subscriber.next({ data: 'late' }));
        }),
    ],
  ] as const)('ends with stall at stallTimeout, not before, opened at %s', async (_label, events) => {
    vi.useFakeTimers();
    const source = counted(events());
    const { options, closes } = recording({ heartbeat: false, stallTimeout: 300 });
    const response = await sse(() => source.observable, options)(request());
    expect(response.status).toBe(200);
    await vi.advanceTimersByTimeAsync(299);
    expect([closes.map((c) => c.reason), source.counts.active]).toEqual([[], 1]);
    await vi.advanceTimersByTimeAsync(1);
    expect([closes.map((c) => c.reason), source.counts.active]).toEqual([['stall'], 0]);
  });
});

describe('sse() on Hono: middleware that reads or transforms the body', () => {
  it('streams at once behind etag(), which skips a Response that has an ETag instead of hashing an endless body', async () => {
    const source = counted(concat(of({ data: 'hello' }), NEVER));
    const { options, closes } = recording({ heartbeat: false });
    const handler = sse(() => source.observable, options);
    const app = new Hono();
    app.use(etag());
    app.get('/sse', (c) => handler(c.req.raw));
    // Hashing the whole body, etag() would answer only once the stream ended: never.
    const response = await app.request('/sse');
    const tag = response.headers.get('etag');
    expect(tag).toMatch(/^"[\w-]+"$/);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('data: hello\n\n')) text += decoder.decode((await reader.read()).value);
    await reader.cancel();
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(source.counts.active).toBe(0);
    // A client that sends the tag back gets a new stream, not a 304 that would replay a stale one.
    const again = await app.request('/sse', { headers: { 'if-none-match': tag! } });
    expect(again.status).toBe(200);
    expect(again.headers.get('etag')).not.toBe(tag);
    await again.body!.cancel();
  }, 2000);

  it('keeps an ETag the route sets in its headers option', async () => {
    const response = await sse(() => NEVER, { heartbeat: false, headers: { ETag: '"mine"' } })(request());
    expect(response.headers.get('etag')).toBe('"mine"');
    await response.body!.cancel();
  });

  it.each(['GET', 'HEAD'])(
    'sends no ETag on a %s where the route removes it (headers: { ETag: null })',
    async (method) => {
      const response = await sse(() => NEVER, { heartbeat: false, headers: { ETag: null } })(
        request({ method }),
      );
      expect([response.status, response.headers.get('etag')]).toEqual([200, null]);
      await response.body?.cancel();
    },
  );

  it('is left uncompressed by compress(), events sent as they come (Cache-Control: no-transform)', async () => {
    const handler = sse(() => concat(of({ data: 'x'.repeat(4096) }), NEVER), { heartbeat: false });
    const app = new Hono();
    app.use(compress());
    app.get('/sse', (c) => handler(c.req.raw));
    const response = await app.request('/sse', { headers: { 'accept-encoding': 'gzip, deflate' } });
    expect(response.headers.get('content-encoding')).toBeNull();
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('\n\n')) text += decoder.decode((await reader.read()).value);
    expect(text.replace(/^:\n/, '')).toBe(`data: ${'x'.repeat(4096)}\n\n`);
    await reader.cancel();
  });
});

describe('WebSink: stallTimeout after the stream ended', () => {
  const events = Array.from({ length: 16 }, () => ({ data: 'z'.repeat(64 * 1024) }));
  const ended = async () => {
    vi.useFakeTimers();
    const { options, closes } = recording({ heartbeat: false, stallTimeout: 300, maxQueueBytes: 1 << 24 });
    const response = await sse(() => from(events), options)(request());
    await vi.advanceTimersByTimeAsync(0);
    expect(closes.map((c) => c.reason)).toEqual(['complete']);
    return response.body!.getReader();
  };

  it('keeps a client that takes some of what the end left in every stallTimeout, until it has it all', async () => {
    const reader = await ended();
    let text = '';
    for (;;) {
      await vi.advanceTimersByTimeAsync(250);
      const piece = await reader.read();
      if (piece.done) break;
      text += new TextDecoder().decode(piece.value);
    }
    expect(text.split('data: ').length - 1).toBe(events.length);
  });

  it('drops a client that takes nothing of it for stallTimeout', async () => {
    const reader = await ended();
    await reader.read();
    await vi.advanceTimersByTimeAsync(300);
    await expect(reader.read()).resolves.toMatchObject({ done: false });
    await vi.advanceTimersByTimeAsync(600);
    await expect(reader.read()).rejects.toThrow(SseStreamDroppedError);
  });
});

describe('WebSink: a request aborted while its body is read', () => {
  it('ends the body, so what reads it is not left waiting for good', async () => {
    const abort = new AbortController();
    const { options, closes } = recording({ heartbeat: false });
    const response = await sse(() => NEVER, options)(request({ signal: abort.signal }));
    const reader = response.body!.getReader();
    const read = reader.read();
    abort.abort(); // the client left; the runtime's read is still pending
    await expect(read).resolves.toMatchObject({ done: true });
    expect(closes.map((c) => c.reason)).toEqual(['client']);
  });

  it('ends the body of a request turned away after it aborted', async () => {
    const group = new StreamGroup();
    let stopped!: () => void;
    group.closeUntil(new Promise<void>((resolve) => (stopped = resolve)));
    const abort = new AbortController();
    abort.abort();
    const response = await sse(() => NEVER, { group })(request({ signal: abort.signal }));
    stopped();
    if (response.body) await expect(response.body.getReader().read()).resolves.toMatchObject({ done: true });
  });
});

describe('WebSink: a request aborted once a shutdown aborted its handler', () => {
  it('ends the body of the answer that turns it away, so what reads it is not left waiting for good', async () => {
    const group = new StreamGroup();
    const { options, closes } = recording({ group });
    const abort = new AbortController();
    let signal: AbortSignal | undefined;
    const answered = sse((_request, context) => {
      signal = context.signal;
      return new Promise<never>(() => {}); // ignores its signal
    }, options)(request({ signal: abort.signal }));
    const closing = group.close({ retry: 1000, deadline: 2 ** 31 - 1 });
    expect(signal?.aborted).toBe(true);
    abort.abort(); // the client leaves before the handler settles
    const response = await answered;
    await closing;
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    // The turn-away's answer, opened on a sink already closed: its body must end when read.
    const read = response.body!.getReader().read();
    const late = new Promise((resolve) => setTimeout(() => resolve('still waiting'), 1000));
    await expect(Promise.race([read, late])).resolves.toMatchObject({ done: true });
  });
});

describe('WebSink: listeners', () => {
  it('leaves no abort listener on request.signal once the stream ended', async () => {
    const req = request();
    const response = await sse(() => from([{ data: 'x' }]), { heartbeat: false })(req);
    expect(await response.text()).toBe('data: x\n\n');
    expect(getEventListeners(req.signal, 'abort')).toHaveLength(0);
  });

  it('leaves no abort listener on request.signal after a HEAD', async () => {
    const req = request({ method: 'HEAD' });
    const response = await sse(() => NEVER)(req);
    expect(await response.text()).toBe('');
    expect(getEventListeners(req.signal, 'abort')).toHaveLength(0);
  });
});

describe('WebSink: HEAD, on a transport of its own', () => {
  it('answers with an empty body that ends when read, as sse() does, and ends the stream at once', async () => {
    const req = request({ method: 'HEAD' });
    const sink = new WebSink(req);
    const source = counted(NEVER);
    const { options, closes } = recording({ heartbeat: false });
    streamEvents(source.observable, sink, options);
    // A null body is one of 0 bytes: Bun and Deno would send `Content-Length: 0`.
    expect(sink.response.body).not.toBeNull();
    // Open until read, not empty from the start: that too Bun and Deno would send as `Content-Length: 0`.
    await new Promise((resolve) => setImmediate(resolve));
    const reader = sink.response.body!.getReader();
    let ended = false;
    reader.closed.then(() => (ended = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(ended).toBe(false);
    expect(await reader.read()).toEqual({ done: true, value: undefined });
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(source.counts.active).toBe(0);
    expect(getEventListeners(req.signal, 'abort')).toHaveLength(0);
  });
});

describe('WebSink: closing', () => {
  it("aborts the handler's signal when the body is cancelled", async () => {
    let signal: AbortSignal | undefined;
    const response = await sse((_request, context) => {
      signal = context.signal;
      return NEVER;
    })(request());
    expect(signal!.aborted).toBe(false);
    await response.body!.cancel();
    expect(signal!.aborted).toBe(true);
  });

  it.each(['the request aborts', 'the body is cancelled'])(
    "counts a client that leaves as its close, though its source ends on the handler's signal (%s): what waits is dropped, not sent",
    async (how) => {
      const { options, closes } = recording({ heartbeat: false });
      const abort = new AbortController();
      const subject = new Subject<MessageEvent>();
      const response = await sse(
        // A source tied to its signal, as the signal's doc asks: it completes as the client leaves.
        (_request, { signal }) => subject.pipe(takeUntil(fromEvent(signal, 'abort'))),
        options,
      )(request({ signal: abort.signal }));
      const reader = response.body!.getReader();
      await reader.read(); // the opening comment; then the client stops reading
      for (let i = 0; i < 100; i++) subject.next({ data: 'x'.repeat(1000) });
      await new Promise((resolve) => setImmediate(resolve));
      if (how === 'the request aborts') abort.abort();
      else await reader.cancel();
      expect(closes.map((c) => c.reason)).toEqual(['client']);
      const { events, dropped } = closes[0]!.stats;
      expect(dropped).toBeGreaterThan(0);
      expect(events + dropped).toBe(100);
    },
  );

  it.each(['a wrote hook', 'onError'])(
    'drops, not counts as sent, what the end had left for a client that leaves while it is written (body cancelled from %s)',
    async (from) => {
      const subject = new Subject<MessageEvent>();
      let reader!: ReadableStreamDefaultReader<Uint8Array>;
      let ending = false;
      const leave = () => {
        if (ending) void reader.cancel();
      };
      const { options, closes } = metered({
        heartbeat: false,
        onError: from === 'onError' ? leave : () => {},
      });
      options.metrics!.wrote = from === 'a wrote hook' ? leave : () => {};
      const response = await sse(() => subject, options)(request());
      reader = response.body!.getReader();
      await reader.read(); // the opening comment; then the client stops reading
      // 64 KiB in the body, and about twice that queued: the end writes it in several chunks.
      for (let i = 0; i < 200; i++) subject.next({ data: 'x'.repeat(1000) });
      await new Promise((resolve) => setImmediate(resolve));
      ending = true;
      if (from === 'onError') subject.error(new Error('database went away'));
      else subject.complete();
      expect(closes).toHaveLength(1);
      const { events, dropped } = closes[0]!.stats;
      expect(dropped).toBeGreaterThan(0);
      expect(events + dropped).toBe(200);
    },
  );

  it('ignores a write after the body was cancelled', async () => {
    const sink = new WebSink(request());
    sink.open({});
    await sink.response.body!.cancel();
    expect(sink.write(new Uint8Array(10))).toBe(true);
  });
});

describe('sse(): a source whose own headers no Response can carry', () => {
  it('rejects before a Response exists, the source never subscribed, for the framework to answer', async () => {
    const source = counted(concat(from([{ data: 'never sent' }]), NEVER));
    const { options, closes } = recording({ heartbeat: false });
    const server = await honoHarness.start([
      {
        path: '/sse',
        events: () => Object.assign(source.observable, { [SOURCE_HEADERS]: { 'X-Note': 'a\nb' } }),
        options,
      },
    ]);
    try {
      const response = await fetch(`${server.url}/sse`);
      expect(response.status).toBe(500);
      await response.text();
      expect(source.counts.subscribed).toBe(0);
      expect(closes).toEqual([]);
      expect(server.logged.join('\n')).toMatch(
        /TypeError: An event stream's source carries headers\['X-Note'\]/,
      );
    } finally {
      await server.close();
    }
  });

  it('rejects on a runtime whose Response refuses the header, instead of answering 204', async () => {
    const source = counted(NEVER);
    const handler = sse(() => Object.assign(source.observable, { [SOURCE_HEADERS]: { 'bad name': 'v' } }));
    await expect(handler(request())).rejects.toThrow(/source carries headers\['bad name'\]: the name is not/);
    expect(source.counts.subscribed).toBe(0);
  });

  it('returns an iterator the handler made, so what it holds is released', async () => {
    // Say, a header of the request's own (a topic) that is no Latin-1: every such request would
    // leave its listener on the emitter for good.
    const emitter = new EventEmitter();
    const handler = sse(() => {
      const iterator = on(emitter, 'message') as unknown as AsyncIterable<MessageEvent>;
      return Object.assign(iterator, { [SOURCE_HEADERS]: { 'X-Topic': 'caf\u20ac' } });
    });
    await expect(handler(request())).rejects.toThrow(/source carries headers\['X-Topic'\]/);
    expect(emitter.listenerCount('message')).toBe(0);
  });

  it("hands the route's onError what that iterator's return() throws", async () => {
    const failure = new Error('return() failed');
    const errors: unknown[] = [];
    const iterator: AsyncIterableIterator<MessageEvent> = {
      next: () => new Promise(() => {}),
      return: () => {
        throw failure;
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    const handler = sse(() => Object.assign(iterator, { [SOURCE_HEADERS]: { 'X-Topic': 'caf\u20ac' } }), {
      onError: (error) => errors.push(error),
    });
    await expect(handler(request())).rejects.toThrow(/source carries headers\['X-Topic'\]/);
    expect(errors).toEqual([failure]);
  });
});

describe('sse(): the opening comment', () => {
  it('opens a stream with nothing to send yet with the comment ":"', async () => {
    const response = await sse(() => NEVER, { heartbeat: false })(request());
    const reader = response.body!.getReader();
    const first = await Promise.race([
      reader.read().then(({ value }) => new TextDecoder().decode(value)),
      new Promise<string>((resolve) => setImmediate(() => resolve('nothing yet'))),
    ]);
    expect(first).toBe(':\n');
    await reader.cancel();
  });
});

describe('sse(): headers and defaults', () => {
  it('answers HEAD with no hop-by-hop header, as GET', async () => {
    const handler = sse(() => NEVER);
    const head = await handler(request({ method: 'HEAD' }));
    expect(head.headers.get('connection')).toBeNull();
    const names: string[] = [];
    head.headers.forEach((_value, name) => {
      names.push(name);
    });
    expect(names.sort()).toEqual(['cache-control', 'content-type', 'etag', 'x-accel-buffering']);
  });

  it('sends a quiet stream a heartbeat within two intervals of 4 s by default', async () => {
    vi.useFakeTimers();
    const response = await sse(() => NEVER)(request());
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const reading = (async () => {
      for (let piece = await reader.read(); !piece.done; piece = await reader.read())
        text += decoder.decode(piece.value);
    })();
    await vi.advanceTimersByTimeAsync(8_100);
    expect(text.replace(/^:\n/, '')).toContain(':\n');
    await reader.cancel();
    await reading;
  });
});

/**
 * A source that fails once its stream is open, to be reported: one that fails at once is refused
 * before the stream opens, as a handler's throw.
 */
const failingLater = (failure: Error) => defer(async (): Promise<never> => Promise.reject(failure));
/** The body of a stream that ended with nothing sent: the runtime may have read the opening comment. */
const OPENING_ONLY = /^(:\n)?$/;

describe("sse(): a Request-like object of a bridge's own", () => {
  it('reports a source error, naming the path, when its url is the path alone', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      // Say, a bridge that hands over Node's `req.url`, which is the path and query alone.
      const like = {
        url: '/sse?room=1',
        method: 'GET',
        headers: new Headers(),
        signal: new AbortController().signal,
      };
      const failure = new Error('the database went away');
      const response = await sse(() => failingLater(failure), { heartbeat: false })(like as never);
      expect(await response.text()).toMatch(OPENING_ONLY);
      expect(errors).toHaveBeenCalledWith('rxsse: event stream GET /sse failed:', failure);
    } finally {
      errors.mockRestore();
    }
  });

  it.each([
    ['a bad host', 'http://[bad/sse?token=1', 'http://[bad/sse'],
    ['a bad port', 'http://127.0.0.1:99999/sse?token=1#top', 'http://127.0.0.1:99999/sse'],
  ])(
    'reports a source error, naming its url without the query, when its url has %s',
    async (_label, url, named) => {
      // An absolute url that `new URL()` refuses: naming the route threw, and the report was lost.
      const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
      try {
        const like = { url, method: 'GET', headers: new Headers(), signal: new AbortController().signal };
        const failure = new Error('the database went away');
        const response = await sse(() => failingLater(failure), { heartbeat: false })(like as never);
        expect(await response.text()).toMatch(OPENING_ONLY);
        expect(errors).toHaveBeenCalledWith(`rxsse: event stream GET ${named} failed:`, failure);
      } finally {
        errors.mockRestore();
      }
    },
  );
});

describe('readLastEventId', () => {
  it('keeps an id the runtime decoded already (characters past U+00FF)', () => {
    // A runtime that decodes header bytes as UTF-8 hands over the characters themselves (a
    // WHATWG Headers object refuses them, hence the stand-in).
    const decoded = {
      url: 'http://127.0.0.1/sse',
      headers: { get: (name: string) => (name === 'last-event-id' ? 'Привет-1' : null) },
    } as unknown as Request;
    expect(readLastEventId(decoded)).toBe('Привет-1');
  });

  it('keeps a leading U+FEFF of an id sent as UTF-8 bytes', () => {
    // Legal in an id (`ids: 'spec'`), and a client sends it back as it received it: EF BB BF.
    const bytes = String.fromCharCode(...new TextEncoder().encode('\ufeff7'));
    expect(readLastEventId(request({ headers: { 'Last-Event-ID': bytes } }))).toBe('\ufeff7');
  });

  it.each([
    ['a number', 5],
    ['an array', ['1', '2']],
    ['an object', {}],
  ])(
    "reads no id from a bridge's headers whose get() answers %s, as the query's is read then",
    (_label, value) => {
      // The handler's `lastEventId` is a string or nothing: a channel refuses any other, failing every
      // reconnect of that client, and a handler's own string method would throw on it.
      const odd = {
        url: 'http://127.0.0.1/sse?lastEventId=7',
        headers: { get: (name: string) => (name === 'last-event-id' ? value : null) },
      } as unknown as Request;
      expect(readLastEventId(odd)).toBe('7');
    },
  );

  it('keeps bytes that are not UTF-8 as they are', () => {
    expect(readLastEventId(request({ headers: { 'Last-Event-ID': 'id\u00e9' } }))).toBe('id\u00e9');
  });
});

describe('closeStreamsAndStop', () => {
  it('throws a RangeError at once for an option out of range, and stops nothing', () => {
    const group = new StreamGroup();
    const stop = vi.fn(async () => {});
    expect(() => closeStreamsAndStop(stop, { group, deadline: 0 })).toThrow(RangeError);
    expect(() => closeStreamsAndStop(stop, { group, retry: -1 })).toThrow(RangeError);
    expect(stop).not.toHaveBeenCalled();
    expect(group.closing).toBe(false);
  });

  it('throws a TypeError at once for a stop that is not a function, or a group that is not a StreamGroup', () => {
    const group = new StreamGroup();
    // Say, Bun's server itself instead of () => server.stop(): the streams would end, the server not.
    const server = { stop: vi.fn(async () => {}) };
    expect(() => closeStreamsAndStop(server as never, { group })).toThrow(
      /^closeStreamsAndStop\(\) takes a function that stops the server, got an object \(Object\)$/,
    );
    expect(() => closeStreamsAndStop(server.stop, { group: {} as never })).toThrow(
      /^group must be a StreamGroup, got an object \(Object\)$/,
    );
    expect(group.closing).toBe(false);
    expect(server.stop).not.toHaveBeenCalled();
  });

  it('throws a TypeError at once for an option name it does not take, naming the one meant, and stops nothing', () => {
    const group = new StreamGroup();
    const stop = vi.fn(async () => {});
    expect(() => closeStreamsAndStop(stop, { group, spred: 100 } as never)).toThrow(
      /^Unknown shutdown option "spred" \(did you mean "spread"\?\)$/,
    );
    expect(() => closeStreamsAndStop(stop, { Group: group } as never)).toThrow(/\(did you mean "group"\?\)$/);
    expect(stop).not.toHaveBeenCalled();
    expect(group.closing).toBe(false);
  });

  it('takes options built from a config, whose group and durations left undefined keep their defaults', async () => {
    // What is not configured is undefined (the repo checks under exactOptionalPropertyTypes).
    const config: { group?: StreamGroup; retry?: number; spread?: number; deadline?: number } = {
      retry: 1000,
    };
    const { options, closes } = recording();
    const response = await sse(() => concat(from([{ data: 'hi' }]), NEVER), options)(request());
    const stop = vi.fn(async () => {});
    const stopping = closeStreamsAndStop(stop, {
      group: config.group,
      retry: config.retry,
      spread: config.spread,
      deadline: config.deadline,
    });
    expect(await response.text()).toBe('data: hi\n\nretry: 1000\n\n');
    await stopping;
    expect(stop).toHaveBeenCalledOnce();
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
  });

  it('throws a TypeError at once for options that are not an object, instead of ignoring them', () => {
    const stop = vi.fn(async () => {});
    // Say, a retry given bare: the streams would end without the hint, and nothing would tell.
    expect(() => closeStreamsAndStop(stop, 1000 as never)).toThrow(
      new TypeError('shutdown options must be an object, got number 1000'),
    );
    expect(() => closeStreamsAndStop(stop, null as never)).toThrow(
      new TypeError('shutdown options must be an object, got null'),
    );
    expect(stop).not.toHaveBeenCalled();
    expect(openStreams.closing).toBe(false);
  });

  it('turns requests away until stop settles, and rejects with what stop failed with', async () => {
    const group = new StreamGroup();
    const failure = new Error('the server would not stop');
    let fail!: () => void;
    const stopping = closeStreamsAndStop(() => new Promise((_, reject) => (fail = () => reject(failure))), {
      group,
      retry: 500,
    });
    await vi.waitFor(() => expect(fail).toBeDefined());
    const turnedAway = await sse(() => NEVER, { group })(request());
    expect(await turnedAway.text()).toBe('retry: 500\n\n');
    fail();
    await expect(stopping).rejects.toBe(failure);
    expect(group.closing).toBe(false);
  });
});

describe('closeStreamsAndStop: a stream still flushing', () => {
  it('runs stop only once the streams have ended and flushed', async () => {
    const held = await sse(() => NEVER, { heartbeat: false })(request());
    let stops = 0;
    const stopping = closeStreamsAndStop(
      async () => {
        stops++;
      },
      { retry: 500, deadline: 10_000 },
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Its body unread, the stream has not flushed the retry hint yet: the server must not stop.
    expect(stops).toBe(0);
    expect(await held.text()).toBe('retry: 500\n\n');
    await stopping;
    expect(stops).toBe(1);
  });
});

describe('closeStreamsAndStop: a group whose close() fails', () => {
  it("still ends the process's streams and runs stop, then rejects with the group's failure", async () => {
    const failure = new Error('flush failed');
    class Failing extends StreamGroup {
      override close(): Promise<void> {
        throw failure;
      }
    }
    const group = new Failing();
    const { options, closes } = recording({ heartbeat: false });
    const body = (await sse(() => NEVER, options)(request())).text();
    const stop = vi.fn(async () => {});
    await expect(closeStreamsAndStop(stop, { group, retry: 500 })).rejects.toBe(failure);
    expect(stop).toHaveBeenCalledOnce();
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(await body).toBe('retry: 500\n\n');
    expect(group.closing).toBe(false);
  });
});

describe('closeStreamsAndStop: a route of its own group', () => {
  it('turns its requests away too until stop settles, its handler never run', async () => {
    let release!: () => void;
    let stops = 0;
    const stopping = closeStreamsAndStop(
      () => {
        stops++;
        return new Promise<void>((resolve) => (release = resolve));
      },
      { group: new StreamGroup(), retry: 500 },
    );
    await vi.waitFor(() => expect(stops).toBe(1));
    let ran = false;
    const turnedAway = await sse(
      () => {
        ran = true;
        return NEVER;
      },
      { group: new StreamGroup() },
    )(request());
    expect(await turnedAway.text()).toBe('retry: 500\n\n');
    expect(ran).toBe(false);
    release();
    await stopping;
  });
});

describe('closeStreamsAndStop: a handler still setting up', () => {
  it('aborts its signal and turns its client away, a shutdown, without waiting for the deadline', async () => {
    const { options, closes } = recording();
    let signal: AbortSignal | undefined;
    const fetchHandler = sse((_request, context) => {
      signal = context.signal;
      return new Promise<never>((_, reject) => {
        context.signal.addEventListener('abort', () => reject(context.signal.reason));
      });
    }, options);
    const answer = fetchHandler(request());
    await vi.waitFor(() => expect(signal).toBeDefined());
    const stop = vi.fn(async () => {});
    // A deadline no test waits for: the close must be done once the answer is read.
    const stopping = closeStreamsAndStop(stop, { retry: 1000, deadline: 2 ** 31 - 1 });
    const response = await answer;
    expect(signal!.aborted).toBe(true);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('retry: 1000\n\n');
    await stopping;
    expect(stop).toHaveBeenCalledOnce();
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
  });

  it.each(['GET', 'HEAD'])(
    'turns a %s of a route of its own group away whose handler returned a source as the shutdown began',
    async (method) => {
      // The route's group is none of the shutdown's: only the process's streams tell of it.
      const { options, closes } = recording({ group: new StreamGroup() });
      // The handler returns at once; the shutdown begins before the answer is made.
      const answer = sse(() => concat(from([{ data: 'late' }]), NEVER), options)(request({ method }));
      const stopping = closeStreamsAndStop(async () => {}, { retry: 1000, deadline: 2 ** 31 - 1 });
      const response = await answer;
      await stopping;
      expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
      expect(await response.text()).toBe(method === 'GET' ? 'retry: 1000\n\n' : '');
    },
  );

  it('keeps the close of a client that left before the shutdown began: reason client', async () => {
    const { options, closes } = recording();
    let fail!: (error: unknown) => void;
    let signal: AbortSignal | undefined;
    const fetchHandler = sse((_request, context) => {
      signal = context.signal;
      return new Promise<never>((_, reject) => (fail = reject));
    }, options);
    const leave = new AbortController();
    const answer = fetchHandler(request({ signal: leave.signal }));
    await vi.waitFor(() => expect(signal).toBeDefined());
    leave.abort();
    await closeStreamsAndStop(async () => {}, { retry: 1000, deadline: 2 ** 31 - 1 });
    fail(signal!.reason);
    await answer;
    expect(closes.map((c) => c.reason)).toEqual(['client']);
  });

  it("reports nothing when the handler fails with request.signal's abort once the deadline answered", async () => {
    vi.useFakeTimers();
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      let requested = false;
      // It waits on the Request's own signal, not on the one the shutdown aborts.
      const fetchHandler = sse(async (request) => {
        requested = true;
        await new Promise((_resolve, reject) =>
          request.signal.addEventListener('abort', () => reject(request.signal.reason)),
        );
        return NEVER;
      });
      const leave = new AbortController();
      const answer = fetchHandler(request({ signal: leave.signal }));
      await vi.waitFor(() => expect(requested).toBe(true));
      const stopping = closeStreamsAndStop(async () => {}, { retry: 1000, deadline: 500 });
      await vi.advanceTimersByTimeAsync(500);
      expect(await (await answer).text()).toBe('retry: 1000\n\n');
      await stopping;
      // The client leaves now: @hono/node-server aborts the Request's signal with a string.
      leave.abort('aborted');
      await vi.advanceTimersByTimeAsync(0);
      expect(errors).not.toHaveBeenCalled();
    } finally {
      errors.mockRestore();
    }
  });

  it('answers at the deadline, and lets go of what the handler resolves to or fails with later', async () => {
    vi.useFakeTimers();
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const { options, closes } = recording();
      let returned = false;
      let cancelled = false;
      const late = new Error('the lookup failed after all');
      const settles: ((value: unknown) => void)[] = [];
      const signals: AbortSignal[] = [];
      const fetchHandler = sse(
        // Ignore their signal; each settles only when the test says.
        (_request, { signal }) => {
          signals.push(signal);
          return new Promise<never>((resolve) => settles.push(resolve as (value: unknown) => void));
        },
        options,
      );
      const answers = Array.from({ length: 4 }, () => fetchHandler(request()));
      await vi.waitFor(() => expect(settles).toHaveLength(4));
      const stopping = closeStreamsAndStop(async () => {}, { retry: 1000, deadline: 500 });
      await vi.advanceTimersByTimeAsync(499);
      let answered = 0;
      for (const answer of answers) void answer.then(() => answered++);
      await vi.advanceTimersByTimeAsync(0);
      expect(answered).toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      for (const answer of answers) expect(await (await answer).text()).toBe('retry: 1000\n\n');
      await stopping;
      expect(closes.map((c) => c.reason)).toEqual(['shutdown', 'shutdown', 'shutdown', 'shutdown']);

      async function* events() {
        try {
          yield { data: 'never sent' };
        } finally {
          returned = true;
        }
      }
      const iterator = events();
      await iterator.next(); // suspended in its try: only return() runs its finally
      settles[0]!(iterator);
      settles[1]!(
        new Response(
          new ReadableStream({
            cancel: () => {
              cancelled = true;
            },
          }),
        ),
      );
      // Failing with the abort the shutdown gave it is no error of the handler's: not reported.
      (settles[3] as unknown as (error: unknown) => void)(Promise.reject(signals[3]!.reason));
      (settles[2] as unknown as (error: unknown) => void)(Promise.reject(late));
      await vi.waitFor(() => expect(returned && cancelled).toBe(true));
      await vi.waitFor(() => expect(errors).toHaveBeenCalledWith(expect.stringContaining('GET /sse'), late));
      expect(errors).toHaveBeenCalledOnce();
    } finally {
      errors.mockRestore();
    }
  });
});

describe('sse() on a Node server that closes: a request that comes once its streams have ended', () => {
  it('is turned away until the close completes, though the fetch handler cannot see the server', async () => {
    const source = counted(NEVER as Observable<MessageEvent>);
    // A group of the route's own: the close keeps the process's closing, not this one.
    const stream = sse(() => source.observable, { heartbeat: false, group: new StreamGroup() });
    let asked = 0;
    let answer: (() => void) | undefined;
    const server = serveFetch(async (request) => {
      if (new URL(request.url).pathname !== '/slow') {
        asked++;
        return stream(request);
      }
      await new Promise<void>((resolve) => (answer = resolve));
      return new Response('ok');
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    closeStreamsOnServerClose(server, { deadline: 60_000 });
    // A request in flight holds the close; no stream is open, so ending them is over at once.
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = await rawRequests(url, [httpRequest('GET', '/slow')]);
    cleanups.push(async () => client.destroy());
    await waitFor(() => answer !== undefined, 5000, 'the slow request');
    let closed = false;
    server.close(() => {
      closed = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    // Pipelined behind the slow one: it reaches the handler while the server still closes.
    client.socket.write(httpRequest('GET', '/sse'));
    await waitFor(() => asked === 1, 5000, 'the stream request');
    answer!();
    await waitFor(() => closed, 5000, 'server.close()');
    expect(source.counts.subscribed).toBe(0);
    expect(client.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*ok[\s\S]*HTTP\/1\.1 /);
  });
});

describe('sse() on @hono/node-server that closes: a stream whose body the runtime has read, not written', () => {
  // The runtime has read the body's last bytes and waits for room to write them: the stream counts
  // as flushed, and only the connection tells that the client has not taken them.
  it.each(['ends at the shutdown', 'ended before it'])(
    'is cut at the deadline for a client that reads nothing, so close() completes (%s)',
    async (when) => {
      const deadline = 300;
      const events = new Subject<MessageEvent>();
      let outgoing: ServerResponse | undefined;
      const stream = sse(() => events, { stallTimeout: false, heartbeat: false, maxQueueBytes: 64 << 20 });
      const app = new Hono<{ Bindings: { outgoing: ServerResponse } }>();
      app.get('/sse', (c) => {
        outgoing = c.env.outgoing;
        return stream(c.req.raw);
      });
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
      if (!server.listening) await once(server, 'listening');
      closeStreamsOnServerClose(server, { deadline });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const client = await rawClient(`${url}/sse`, { read: false });
      cleanups.push(async () => client.destroy());
      await waitFor(() => outgoing !== undefined, 5000, 'the request');
      // Until the runtime's socket is full: it has read the body, and waits for 'drain'.
      await waitFor(
        () => {
          if (outgoing!.writableNeedDrain) return true;
          events.next({ data: 'z'.repeat(64 * 1024) });
          return false;
        },
        5000,
        'the socket to fill',
      );
      if (when === 'ended before it') events.complete();
      let closed = false;
      server.close(() => {
        closed = true;
      });
      await waitFor(() => closed, deadline + 2000, 'server.close()');
    },
  );
});
