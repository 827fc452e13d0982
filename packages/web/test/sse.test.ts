import { EventEmitter, on } from 'node:events';
import type { MessageEvent } from '@rxsse/core';
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import { concat, from, NEVER, Observable } from 'rxjs';
import { Response as UndiciResponse } from 'undici';
import { describe, expect, it, vi } from 'vitest';
import { metered } from '../../../test/support/recording.js';
import { SseStreamDroppedError, sse, WebSink } from '../src/index.js';

const request = (init?: RequestInit, path = '/sse') => new Request(`http://127.0.0.1${path}`, init);

async function read(response: Response): Promise<string> {
  return new TextDecoder().decode(await response.arrayBuffer());
}

describe('sse() as a fetch handler', () => {
  it('answers with no hop-by-hop header, even one the route sets', async () => {
    const handler = sse(() => from([{ data: 'x' }]), {
      headers: {
        Connection: 'keep-alive',
        'Keep-Alive': 'timeout=5',
        'Transfer-Encoding': 'chunked',
        'X-Id': '1',
      },
    });
    const response = await handler(request());
    const names: string[] = [];
    response.headers.forEach((_value, name) => {
      names.push(name);
    });
    expect(names.sort()).toEqual(['cache-control', 'content-type', 'etag', 'x-accel-buffering', 'x-id']);
    expect(await read(response)).toBe('data: x\n\n');
  });

  it('rejects before a Response exists when the handler throws or returns no source', async () => {
    const failure = new Error('not authorized');
    await expect(
      sse(() => {
        throw failure;
      })(request()),
    ).rejects.toBe(failure);
    await expect(sse(() => 42 as never)(request())).rejects.toThrow(/returned number 42/);
  });

  it('rejects an object that only calls itself a Response, as it does any other object that is no source', async () => {
    const { options, seen } = metered();
    const fake = { [Symbol.toStringTag]: 'Response', status: 200 };
    await expect(sse(() => fake as never, options)(request())).rejects.toThrow(
      /handler returned an object \(Object\), not an Observable/,
    );
    expect(seen).toEqual(['failed']);
  });

  it.each([
    ['no status', { headers: new Headers(), body: null }],
    ['a body that is no stream', { status: 200, headers: new Headers(), body: 'who are you?' }],
  ])(
    'rejects an object tagged Response with %s, as it does any other object that is no source',
    async (_label, shape) => {
      const fake = { [Symbol.toStringTag]: 'Response', ...shape };
      await expect(sse(() => fake as never)(request())).rejects.toThrow(
        /handler returned an object \(Object\), not an Observable/,
      );
    },
  );

  it('rejects an object shaped like a Response that does not say it is one, as any other object that is no source', async () => {
    const shaped = { status: 200, headers: new Headers(), body: null };
    await expect(sse(() => shaped as never)(request())).rejects.toThrow(
      /handler returned an object \(Object\), not an Observable/,
    );
  });

  it('sends a Response the handler returns instead of a stream, and aborts its signal', async () => {
    let signal: AbortSignal | undefined;
    const handler = sse((incoming, context) => {
      signal = context.signal;
      if (incoming.headers.get('authorization') === null)
        return new Response('who are you?', { status: 401 });
      return from([{ data: 'x' }]);
    });
    const refused = await handler(request());
    expect(refused.status).toBe(401);
    expect(await refused.text()).toBe('who are you?');
    expect(signal?.aborted).toBe(true);
    const admitted = await handler(request({ headers: { authorization: 'Bearer 1' } }));
    expect(admitted.headers.get('content-type')).toBe('text/event-stream');
    expect(await read(admitted)).toBe('data: x\n\n');
  });

  it("sends a Response of another realm's as it is (the undici package's fetch), also one that comes too late", async () => {
    const refused = await sse(
      () => new UndiciResponse('who are you?', { status: 401 }) as unknown as Response,
    )(request());
    expect(refused.status).toBe(401);
    expect(await refused.text()).toBe('who are you?');
    // One that comes after its client left is cancelled, not reported as a handler's bug.
    const errors: unknown[] = [];
    const abort = new AbortController();
    let resolve!: (response: Response) => void;
    const answer = sse(() => new Promise<Response>((settle) => (resolve = settle)), {
      onError: (error) => errors.push(error),
    })(request({ signal: abort.signal }));
    abort.abort();
    expect((await answer).status).toBe(204);
    const cancelled: boolean[] = [];
    // undici's types name a ReadableStream of their own.
    const body = new ReadableStream({ cancel: () => void cancelled.push(true) }) as never;
    const late = new UndiciResponse(body);
    resolve(late as unknown as Response);
    await vi.waitFor(() => expect(cancelled).toEqual([true]));
    expect(errors).toEqual([]);
  });

  it("sends a bodiless Response of another realm's as it is (a 204 of the undici package's)", async () => {
    const stop = await sse(() => new UndiciResponse(null, { status: 204 }) as unknown as Response)(request());
    expect(stop.status).toBe(204);
    expect(stop.body).toBeNull();
  });

  it('refuses a handler that is not a function when the route is set up, and says how to pass a source', () => {
    expect(() => sse(from([{ data: 'x' }]) as never)).toThrow(
      /^sse\(\) takes a handler, a function of the request that returns its events, got an object \(Observable\); wrap a source in one: sse\(\(\) => source\)$/,
    );
    expect(() => sse(null as never)).toThrow(/, got null$/);
    expect(() => sse(() => NEVER, 'fast' as never)).toThrow(/^options must be an object, got string fast$/);
    expect(() => sse(() => NEVER, null as never)).toThrow(/^options must be an object, got null$/);
    expect(() => sse(() => NEVER, { maxQueueByte: 1e6 } as never)).toThrow(
      /^Unknown stream option "maxQueueByte" \(did you mean "maxQueueBytes"\?\)$/,
    );
  });

  it("rejects with a TypeError that says what to pass when it is given a framework's context, not a Request", async () => {
    // Say, Hono's app.get('/sse', sse(...)): Hono hands its Context, whose Request is c.req.raw.
    const context = { req: { raw: request() }, env: {} };
    await expect(sse(() => NEVER)(context as never)).rejects.toThrow(
      /^sse\(\)'s fetch handler takes a Request, got an object \(Object\); from a framework's context, pass its Request \(Hono: c\.req\.raw; SvelteKit: event\.request\)$/,
    );
  });

  it("rejects with a TypeError that names SvelteKit's event.request when it is given a RequestEvent", async () => {
    // Say, `export const GET = handler` in a SvelteKit +server.ts, which calls it with its
    // RequestEvent: the Request is its `request`, and `url` is a URL, not a string.
    const event = { request: request(), url: new URL('http://127.0.0.1/sse'), params: {} };
    await expect(sse(() => NEVER)(event as never)).rejects.toThrow(/SvelteKit: event\.request\)$/);
  });

  it.each([
    ['null', null],
    ['missing', undefined],
  ])(
    'rejects with a TypeError naming the signal, the handler not run, for a Request-like whose signal is %s',
    async (_label, signal) => {
      // Say, node-fetch's Request, or a bridge's object: nothing would tell when its client leaves.
      const like = { url: 'http://127.0.0.1/sse', method: 'GET', headers: new Headers(), signal };
      let calls = 0;
      const handler = sse(() => {
        calls++;
        return NEVER;
      });
      await expect(handler(like as never)).rejects.toThrow(
        new TypeError(
          `sse()'s fetch handler takes a Request whose signal is an AbortSignal, got an object (Object) whose signal is ${signal}; pass the runtime's own Request, or give yours the signal of its connection`,
        ),
      );
      expect(calls).toBe(0);
    },
  );

  it.each([
    // Its listener could never be removed: a sink that closed would throw where it lets go of it.
    ['can be listened to but not let go of', { aborted: false, addEventListener: () => {} }],
    // A client gone before the handler ran would never be seen: `aborted` is what tells of it.
    ['is an EventTarget that cannot say it aborted', new EventTarget()],
  ])('rejects a Request-like whose signal %s, the handler not run', async (_name, signal) => {
    const like = { url: 'http://127.0.0.1/sse', method: 'GET', headers: new Headers(), signal };
    let calls = 0;
    const handler = sse(() => {
      calls++;
      return NEVER;
    });
    await expect(handler(like as never)).rejects.toThrow(/takes a Request whose signal is an AbortSignal/);
    expect(calls).toBe(0);
  });

  it('answers HEAD with the headers alone, the handler run and its source never subscribed', async () => {
    let calls = 0;
    let subscribed = 0;
    const response = await sse(() => {
      calls++;
      return new Observable<never>(() => void subscribed++);
    })(request({ method: 'HEAD' }));
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(await response.text()).toBe('');
    expect(calls).toBe(1);
    expect(subscribed).toBe(0);
  });

  it('answers HEAD with the headers alone, and returns() an iterator its handler made', async () => {
    // `events.on` listens from the moment it is called, and stops only at its iterator's return().
    const emitter = new EventEmitter();
    const response = await sse(() => on(emitter, 'tick') as unknown as AsyncIterable<MessageEvent>)(
      request({ method: 'HEAD' }),
    );
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('');
    await vi.waitFor(() => expect(emitter.listenerCount('tick')).toBe(0));
  });

  it("answers HEAD with the Response its handler refuses the GET with (an auth check's 401)", async () => {
    const handler = sse((req) =>
      req.headers.get('authorization')
        ? NEVER
        : new Response('no token', { status: 401, headers: { 'www-authenticate': 'Bearer' } }),
    );
    const response = await handler(request({ method: 'HEAD' }));
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    const allowed = await handler(request({ method: 'HEAD', headers: { authorization: 'Bearer x' } }));
    expect(allowed.status).toBe(200);
  });

  it('reads Last-Event-ID sent as UTF-8 bytes, and the query parameter', async () => {
    const seen: (string | undefined)[] = [];
    const handler = sse((_request, { lastEventId }) => {
      seen.push(lastEventId);
      return from([]);
    });
    const utf8AsBytes = String.fromCharCode(...new TextEncoder().encode('é-1'));
    await handler(request({ headers: { 'Last-Event-ID': utf8AsBytes } }));
    await handler(request(undefined, '/sse?lastEventId=7'));
    expect(seen).toEqual(['é-1', '7']);
  });

  it('stops the source when the body is cancelled, and when request.signal aborts', async () => {
    const reasons: string[] = [];
    const handler = sse(() => concat(from([{ data: 'x' }]), NEVER), {
      onClose: (reason) => reasons.push(reason),
    });
    const cancelled = await handler(request());
    await cancelled.body!.cancel();
    const abort = new AbortController();
    await handler(request({ signal: abort.signal }));
    abort.abort();
    expect(reasons).toEqual(['client', 'client']);
  });

  it('errors the body with SseStreamDroppedError when it drops a stream on purpose', async () => {
    const reasons: string[] = [];
    const kib = 'k'.repeat(1024);
    const handler = sse(() => from(Array.from({ length: 512 }, () => ({ data: kib }))), {
      maxQueueBytes: 64 * 1024,
      onClose: (reason) => reasons.push(reason),
    });
    const response = await handler(request());
    await expect(read(response)).rejects.toBeInstanceOf(SseStreamDroppedError);
    expect(reasons).toEqual(['overflow']);
  });

  it("replays a channel's history larger than the route's queue whole, though the body is read only once the handler returned", async () => {
    // 3,000 events of 1 KB, three times the default maxQueueBytes.
    const engine = memoryEngine({ maxEvents: 10_000, maxBytes: 8 << 20 });
    const chat = createChannel(engine, 'room', { maxReplay: { events: 10_000, bytes: 8 << 20 } });
    const first = await chat.publish({ data: 'first' });
    const ids: string[] = [];
    for (let i = 0; i < 3000; i++) ids.push(await chat.publish({ data: 'x'.repeat(1000) }));
    const reasons: string[] = [];
    const handler = sse((_request, context) => chat.subscribe(context), {
      heartbeat: false,
      onClose: (reason) => reasons.push(reason),
    });
    const response = await handler(request({ headers: { 'Last-Event-ID': first } }));
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes(`id: ${ids.at(-1)}\n`)) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
    expect([...text.matchAll(/^id: (.+)$/gm)].map((match) => match[1])).toEqual(ids);
    expect(reasons).toEqual(['client']);
  });

  it('replays a channel after Last-Event-ID, and says SSE-History-Truncated when it cannot', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const handler = sse((_request, context) => chat.subscribe(context), { heartbeat: false });
    /** The first chunk after the opening comment, if the body begins with one. */
    const firstChunk = async (response: Response) => {
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      // A replay waits for the body's first read, which the comment answers.
      while (text === '' || text === ':\n') text = decoder.decode((await reader.read()).value);
      await reader.cancel();
      return text;
    };
    const first = await chat.publish({ data: 'one' });
    await chat.publish({ data: 'two' });
    const replayed = await handler(request({ headers: { 'Last-Event-ID': first } }));
    expect(replayed.headers.get('sse-history-truncated')).toBeNull();
    expect(await firstChunk(replayed)).toMatch(/^id: \S+\ndata: two\n\n$/);
    const truncated = await handler(request({ headers: { 'Last-Event-ID': '1-0' } }));
    expect(truncated.headers.get('sse-history-truncated')).toBe('true');
    expect(await firstChunk(truncated)).toBe(
      'event: history-truncated\ndata: {"lastEventId":"1-0","reason":"history"}\n\n',
    );
  });
});

describe('WebSink', () => {
  it.each([
    ['null', null],
    ['missing', undefined],
  ])(
    'throws a TypeError naming the signal, as sse() does, for a Request-like whose signal is %s',
    (_label, signal) => {
      // A transport of its own may hand over node-fetch's Request, or a bridge's object.
      const like = { url: 'http://127.0.0.1/sse', method: 'GET', headers: new Headers(), signal };
      expect(() => new WebSink(like as never)).toThrow(
        new TypeError(
          `new WebSink() takes a Request whose signal is an AbortSignal, got an object (Object) whose signal is ${signal}; pass the runtime's own Request, or give yours the signal of its connection`,
        ),
      );
    },
  );

  it('throws a TypeError that says what it takes when it is given no object', () => {
    expect(() => new WebSink(null as never)).toThrow(
      new TypeError('new WebSink() takes a Request, got null'),
    );
  });

  const piecesOf = async (...chunks: number[]) => {
    const sink = new WebSink(request());
    sink.open({});
    for (const length of chunks) sink.write(new Uint8Array(length));
    sink.end();
    const sizes: number[] = [];
    const reader = sink.response.body!.getReader();
    for (let piece = await reader.read(); !piece.done; piece = await reader.read())
      sizes.push(piece.value.length);
    return sizes;
  };

  it('hands the runtime pieces of about 64 KiB: a chunk just over it whole, a larger one in even parts', async () => {
    // A queue's chunk is 64 Ki UTF-16 units, a little more in bytes: cut at 64 KiB, it left a sliver.
    expect(await piecesOf(66_528, 1_000)).toEqual([66_528, 1_000]);
    expect(await piecesOf(300_000)).toEqual([60_000, 60_000, 60_000, 60_000, 60_000]);
    expect(await piecesOf(100_000)).toEqual([50_000, 50_000]);
  });

  it('enqueues no piece after the runtime cancelled the body as the one before went in (Deno)', () => {
    const sink = new WebSink(request());
    sink.open({});
    const reader = sink.response.body!.getReader();
    const { enqueue } = ReadableStreamDefaultController.prototype;
    // Deno writes a piece to its socket as it is enqueued, finds the client gone, and cancels there.
    const enqueued = vi
      .spyOn(ReadableStreamDefaultController.prototype, 'enqueue')
      .mockImplementation(function (this: ReadableStreamDefaultController, chunk) {
        enqueue.call(this, chunk);
        void reader.cancel();
      });
    try {
      // The rest of the chunk has nowhere to go: enqueued, it would throw out of the write.
      sink.write(new Uint8Array(300_000));
      expect(enqueued).toHaveBeenCalledTimes(1);
      expect(sink.closed).toBe(true);
    } finally {
      enqueued.mockRestore();
    }
  });
});
