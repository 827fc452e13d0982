import { concat, from, map, NEVER, Observable, range, Subject, type Subscriber, tap } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { recordUnhandledRejections } from '../../../test/support/warnings.js';
import {
  answerHeadEventStream,
  type CloseReason,
  type EventSourceLike,
  type EventStream,
  heartbeatCount,
  letGoSource,
  type MessageEvent,
  resolveStreamOptions,
  SOURCE_GAP_EVENT,
  SOURCE_HEADERS,
  SOURCE_OPENS_FIRST,
  SOURCE_RELEASE,
  SseFormatError,
  StreamGroup,
  type StreamMetrics,
  type StreamOptions,
  type StreamStats,
  SUBSCRIBER_DEMAND,
  scheduleHeartbeat,
  streamEvents,
  turnAwayEventStream,
  type WithSubscriberDemand,
} from '../src/index.js';
import { MemorySink } from '../src/testing/index.js';

interface Closed {
  reason: CloseReason;
  stats: StreamStats;
  error?: unknown;
}

/** Streams `source` to a memory sink, recording closes, `onError` calls and unhandled reports. */
function run(source: unknown, options: StreamOptions = {}, sink = new MemorySink()) {
  const closes: Closed[] = [];
  const errors: unknown[] = [];
  const reported: unknown[] = [];
  const stream = streamEvents(
    source as EventSourceLike<MessageEvent<unknown>>,
    sink,
    {
      heartbeat: false,
      onClose: (reason, stats, error) => closes.push({ reason, stats, error }),
      ...options,
    },
    (error) => reported.push(error),
  );
  return { sink, stream, closes, errors, reported };
}

/** Metrics that record what they count: `opened`, `closed <reason>`, `failed`. */
function counting() {
  const seen: string[] = [];
  const metrics: StreamMetrics = {
    opened: () => seen.push('opened'),
    wrote: () => {},
    heartbeat: () => {},
    dropped: () => {},
    closed: (reason) => seen.push(`closed ${reason}`),
    failed: () => seen.push('failed'),
  };
  return { seen, metrics };
}

/** A MemorySink that keeps what is written to it after its end, which a Node response refuses. */
class EndedSink extends MemorySink {
  readonly late: string[] = [];
  override write(chunk: Uint8Array) {
    if (this.ended || this.destroyed) this.late.push(new TextDecoder().decode(chunk));
    return super.write(chunk);
  }
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** An iterator past its first `next()`, so that only its `return()` runs its `finally`: `returned()` tells. */
async function startedIterator() {
  let returned = false;
  async function* source() {
    try {
      yield { data: 'a' };
    } finally {
      returned = true;
    }
  }
  const iterator = source();
  await iterator.next();
  return { iterator, returned: () => returned };
}

describe('invalid sources', () => {
  for (const [label, value] of [
    ['42', 42],
    ['{}', {}],
    ['null', null],
    ['undefined', undefined],
    ['an array', [{ data: 'x' }]],
    ['a string', 'data'],
  ] as const) {
    it(`refuses ${label} before opening the response`, () => {
      const sink = new MemorySink();
      const opened = vi.fn();
      const onClose = vi.fn();
      const metrics: StreamMetrics = {
        opened,
        wrote: () => {},
        heartbeat: () => {},
        dropped: () => {},
        closed: () => {},
      };
      const group = new StreamGroup();
      expect(() => streamEvents(value as never, sink, { metrics, onClose, group })).toThrow(TypeError);
      expect(() => streamEvents(value as never, sink, { metrics, onClose, group })).toThrow(
        /not an Observable or an AsyncIterable/,
      );
      expect(sink.headers).toBeUndefined();
      expect(opened).not.toHaveBeenCalled();
      expect(onClose).not.toHaveBeenCalled();
      expect(group.size).toBe(0);
    });
  }

  for (const [name, symbol] of [
    ['SOURCE_HEADERS', SOURCE_HEADERS],
    ['SOURCE_OPENS_FIRST', SOURCE_OPENS_FIRST],
  ] as const) {
    it(`refuses an Observable whose ${name} getter throws, as one that fails at once: nothing opened or closed`, () => {
      const source = new Observable<MessageEvent>((subscriber) => subscriber.next({ data: 'a' }));
      Object.defineProperty(source, symbol, {
        get() {
          throw new Error('the getter threw');
        },
      });
      const sink = new MemorySink();
      const { seen, metrics } = counting();
      const group = new StreamGroup();
      const onClose = vi.fn();
      expect(() => streamEvents(source, sink, { metrics, onClose, group })).toThrow('the getter threw');
      expect(seen).toEqual([]);
      expect(onClose).not.toHaveBeenCalled();
      expect(sink.headers).toBeUndefined();
      expect(sink.destroyed).toBe(false);
      expect(group.size).toBe(0);
    });
  }

  for (const [label, headers] of [
    ['a Content-Length', { 'Content-Length': '3' }],
    ['a Content-Type other than text/event-stream', { 'Content-Type': 'text/html' }],
    ['a value that is no string', { 'X-Feed': 5 }],
    ['a name that is no token', { 'X Feed': 'a' }],
    ['a string', 'abc'],
    ['a number', 5],
  ] as const) {
    it(`refuses an Observable whose SOURCE_HEADERS hold ${label}, as a route's headers would be: nothing opened or closed`, () => {
      // Sent, a Content-Length makes the client read the rest of the stream as the next response,
      // and another Content-Type stops an EventSource for good.
      const source = Object.assign(from([{ data: 'a' }]), { [SOURCE_HEADERS]: headers });
      const sink = new MemorySink();
      const { seen, metrics } = counting();
      const onClose = vi.fn();
      expect(() => streamEvents(source as never, sink, { metrics, onClose })).toThrow(TypeError);
      expect(() => streamEvents(source as never, sink, { metrics, onClose })).toThrow(/source carries/);
      expect(seen).toEqual([]);
      expect(onClose).not.toHaveBeenCalled();
      expect(sink.headers).toBeUndefined();
    });
  }

  it('names what was returned', () => {
    expect(() => run(42)).toThrow(/number 42/);
    expect(() => run([1])).toThrow(/array/);
    expect(() => run(null)).toThrow(/null/);
    expect(() => run(new Map())).toThrow(/returned an object \(Map\), not an Observable/);
    expect(() => run(Object.create(null))).toThrow(/returned an object \(no prototype\), not an Observable/);
    // A long string is cut to its first 40 characters.
    expect(() => run(`${'a'.repeat(40)}b`)).toThrow(/returned string a{40}\.\.\., not an Observable/);
  });
});

describe('sources that break where they are let go of', () => {
  /** An Observable whose `next` getter throws: a transport that only lets it go asks for its iterator. */
  const withThrowingNext = () =>
    Object.defineProperty(
      new Observable<MessageEvent>((subscriber) => subscriber.next({ data: 'a' })),
      'next',
      {
        get() {
          throw new Error('the next getter threw');
        },
      },
    );

  it('a HEAD is answered, counted once, and the getter throw reported', () => {
    const { seen, metrics } = counting();
    const errors: unknown[] = [];
    const sink = new MemorySink();
    const source = withThrowingNext();
    const report = (error: unknown) => errors.push(error);
    letGoSource(source, report);
    answerHeadEventStream(sink, { metrics, heartbeat: false }, report, false, source);
    expect(sink.headers?.['content-type']).toBe('text/event-stream');
    expect(sink.ended).toBe(true);
    expect(seen).toEqual(['opened', 'closed complete']);
    expect(errors).toEqual([new Error('the next getter threw')]);
  });

  it('a GET whose client left first closes once, and the getter throw is reported once', () => {
    const { seen, metrics } = counting();
    const sink = new MemorySink();
    sink.disconnect();
    const { closes, reported } = run(withThrowingNext(), { metrics }, sink);
    expect(seen).toEqual(['opened', 'closed client']);
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(reported).toEqual([new Error('the next getter threw')]);
  });

  it('a request turned away lets go of what an Observable holds: a SOURCE_RELEASE that throws is reported', () => {
    const errors: unknown[] = [];
    const sink = new MemorySink();
    const source = Object.assign(new Observable<MessageEvent>(), {
      [SOURCE_RELEASE]: () => {
        throw new Error('release threw');
      },
    });
    turnAwayEventStream(sink, { heartbeat: false }, (error) => errors.push(error), source);
    expect(sink.ended).toBe(true);
    expect(errors).toEqual([new Error('release threw')]);
  });

  it('a request turned away lets go of it, and the getter throw is reported', () => {
    const errors: unknown[] = [];
    const sink = new MemorySink();
    turnAwayEventStream(sink, { heartbeat: false }, (error) => errors.push(error), withThrowingNext());
    expect(sink.ended).toBe(true);
    expect(errors).toEqual([new Error('the next getter threw')]);
  });

  for (const [label, after] of [
    ['completed', (subscriber: Subscriber<MessageEvent>) => subscriber.complete()],
    ['failed', (subscriber: Subscriber<MessageEvent>) => subscriber.error(new Error('the first'))],
  ] as const) {
    it(`a subscribe() that throws after it ${label}: the throw is still heard`, () => {
      const errors: unknown[] = [];
      const subscribe = (subscriber: Subscriber<MessageEvent>) => {
        subscriber.next({ data: 'a' });
        after(subscriber);
        throw new Error('subscribe threw');
      };
      // A hand-written Observable: rxjs's own never lets subscribe() throw.
      const { sink, closes, reported } = run({ subscribe }, { onError: (error) => errors.push(error) });
      expect(sink.text).toBe('data: a\n\n');
      expect(closes.map((c) => c.reason)).toEqual([label === 'completed' ? 'complete' : 'error']);
      expect(errors.at(-1)).toEqual(new Error('subscribe threw'));
      expect(reported).toEqual([]);
      // Without onError, the framework's channel hears it.
      expect(run({ subscribe }).reported.at(-1)).toEqual(new Error('subscribe threw'));
    });
  }

  it('a subscribe() that throws before it sent anything: refused as a source that fails at once, the throw reported nowhere else', () => {
    const failure = new Error('subscribe threw');
    // A hand-written Observable: rxjs's own turns the throw into error().
    const source = {
      subscribe: () => {
        throw failure;
      },
    };
    const errors: unknown[] = [];
    const sink = new MemorySink();
    const closes: CloseReason[] = [];
    const options: StreamOptions = {
      heartbeat: false,
      onError: (e: unknown) => errors.push(e),
      onClose: (r: CloseReason) => closes.push(r),
    };
    expect(() => streamEvents(source as never, sink, options)).toThrow(failure);
    expect([sink.headers, sink.chunks, sink.ended, closes, errors]).toEqual([undefined, [], false, [], []]);
  });
});

describe('synchronous sources', () => {
  it('stop at the overflow close instead of running to the end', () => {
    let produced = 0;
    const source = range(0, 2_000_000).pipe(
      tap(() => produced++),
      map((n) => ({ data: `event ${n}` })),
    );
    const sink = new MemorySink();
    sink.full = true;
    const closes: CloseReason[] = [];
    streamEvents(source, sink, {
      heartbeat: false,
      maxQueueBytes: 64 * 1024,
      onClose: (reason) => closes.push(reason),
    });
    expect(closes).toEqual(['overflow']);
    expect(produced).toBeLessThan(20_000);
  });

  it('end a loop that runs while the subscriber is open, once the client is gone', () => {
    let produced = 0;
    const sink = new MemorySink();
    const source = new Observable<MessageEvent>((subscriber) => {
      // Bounded, so today's behaviour fails the test instead of hanging it.
      while (!subscriber.closed && produced < 100_000) {
        produced++;
        subscriber.next({ data: 'x' });
        if (produced === 1000) sink.disconnect();
      }
    });
    const closes: CloseReason[] = [];
    streamEvents(source, sink, { heartbeat: false, onClose: (reason) => closes.push(reason) });
    expect(closes).toEqual(['client']);
    expect(produced).toBe(1000);
  });

  it('stop at a refused message when onInvalidMessage is close', () => {
    let produced = 0;
    const source = range(0, 1_000_000).pipe(
      tap(() => produced++),
      map((n) => (n === 10 ? { data: 'bad', id: 'a\nb' } : { data: String(n) })),
    );
    const { closes } = run(source, { onInvalidMessage: 'close' });
    expect(closes.map((c) => c.reason)).toEqual(['error']);
    expect(produced).toBe(11);
  });

  it('still run the teardown the source returns', () => {
    let tornDown = false;
    const sink = new MemorySink();
    const source = new Observable<MessageEvent>((subscriber) => {
      subscriber.next({ data: 'x' });
      sink.disconnect();
      return () => {
        tornDown = true;
      };
    });
    streamEvents(source, sink, { heartbeat: false });
    expect(tornDown).toBe(true);
  });

  it('run every teardown added and not removed, in the order added', () => {
    const ran: string[] = [];
    const sink = new MemorySink();
    const source = new Observable<MessageEvent>((subscriber) => {
      for (const name of ['a', 'b', 'c']) subscriber.add(() => ran.push(name));
      return () => ran.push('returned');
    });
    streamEvents(source, sink, { heartbeat: false });
    sink.disconnect();
    expect(ran).toEqual(['a', 'b', 'c', 'returned']);
  });

  it('skip a teardown removed, the first one too, and run the rest in order', () => {
    const ran: string[] = [];
    const sink = new MemorySink();
    const source = new Observable<MessageEvent>((subscriber) => {
      const first = () => ran.push('first');
      const third = () => ran.push('third');
      subscriber.add(first);
      subscriber.add(() => ran.push('second'));
      subscriber.add(third);
      subscriber.add(() => ran.push('fourth'));
      subscriber.remove(first);
      subscriber.remove(third);
    });
    streamEvents(source, sink, { heartbeat: false });
    sink.disconnect();
    expect(ran).toEqual(['second', 'fourth']);
  });

  it('run a teardown added after the first was removed last, in the order added', () => {
    const ran: string[] = [];
    const sink = new MemorySink();
    const source = new Observable<MessageEvent>((subscriber) => {
      const first = () => ran.push('first');
      subscriber.add(first);
      subscriber.add(() => ran.push('second'));
      subscriber.remove(first);
      subscriber.add(() => ran.push('third'));
    });
    streamEvents(source, sink, { heartbeat: false });
    sink.disconnect();
    expect(ran).toEqual(['second', 'third']);
  });
});

describe('refused messages', () => {
  const bad: [string, MessageEvent<unknown>][] = [
    ['CR/LF in id', { data: 'x', id: 'a\r\nid: 666' }],
    ['type error', { data: 'x', type: 'error' }],
    ['data undefined', { data: undefined }],
    ['retry 1.5', { data: 'x', retry: 1.5 }],
    ['no message at all (null)', null as never],
    ['a bare value instead of a message', 42 as never],
  ];
  for (const [label, message] of bad) {
    it(`skips a message with ${label}, reports it, counts it and goes on`, async () => {
      const errors: unknown[] = [];
      const refused = vi.fn();
      const metrics: StreamMetrics = {
        opened: () => {},
        wrote: () => {},
        heartbeat: () => {},
        dropped: () => {},
        closed: () => {},
        refused,
      };
      const { sink, closes, reported } = run(from([{ data: 'a' }, message, { data: 'b' }]), {
        onError: (error) => errors.push(error),
        metrics,
      });
      await tick();
      expect(sink.text).toBe('data: a\n\ndata: b\n\n');
      expect(closes.map((c) => c.reason)).toEqual(['complete']);
      expect(closes[0]!.stats.refused).toBe(1);
      expect(errors).toHaveLength(1);
      expect((errors[0] as Error).name).toMatch(/^Sse(Format|Range)Error$/);
      expect(refused).toHaveBeenCalledTimes(1);
      expect(reported).toEqual([]);
    });
  }

  it('hears a Promise emitted in place of a message: refused, and its rejection reported, never unhandled', async () => {
    const errors: unknown[] = [];
    const failure = new Error('the lookup failed');
    // `map(async ...)`: the source emits promises, the second of which rejects.
    const source = from([1, 2]).pipe(
      map(async (n) => {
        if (n === 2) throw failure;
        return { data: n };
      }),
    );
    const { closes, reported } = run(source, { onError: (error) => errors.push(error) });
    await tick();
    expect(closes[0]!.stats.refused).toBe(2);
    expect(errors.slice(0, 2).map((e) => (e as Error).message)).toEqual([
      expect.stringContaining('got a Promise'),
      expect.stringContaining('got a Promise'),
    ]);
    expect(errors[2]).toBe(failure);
    expect(errors).toHaveLength(3);
    expect(reported).toEqual([]);
  });

  it('hears a Promise given as data: refused, and its rejection reported', async () => {
    const errors: unknown[] = [];
    const failure = new Error('the score failed');
    const data = Promise.reject(failure);
    const { sink, closes } = run(from([{ data }, { data: 'b' }]), { onError: (error) => errors.push(error) });
    await tick();
    expect(sink.text).toBe('data: b\n\n');
    expect(closes[0]!.stats.refused).toBe(1);
    expect((errors[0] as Error).message).toContain('is a Promise');
    expect(errors.slice(1)).toEqual([failure]);
  });

  it("reports a refused Promise's rejection that comes after the stream ended, without onError", async () => {
    let reject!: (error: Error) => void;
    const late = new Promise((_, no) => {
      reject = no;
    });
    const { closes, reported } = run(from([late]), { onInvalidMessage: 'close' });
    expect(closes.map((c) => c.reason)).toEqual(['error']);
    const failure = new Error('settled after the end');
    reject(failure);
    await tick();
    expect(reported.slice(-1)).toEqual([failure]);
  });

  it('refuses with SseFormatError an undefined that opens a tick, on a route that sent before', async () => {
    const options = resolveStreamOptions({ heartbeat: false });
    streamEvents(from([{ data: 'a' }]), new MemorySink(), options);
    await tick();
    const reported: unknown[] = [];
    const sink = new MemorySink();
    const source = from([undefined as never, { data: 'b' }]);
    const stream = streamEvents(source, sink, options, (error) => reported.push(error));
    await tick();
    expect(sink.text).toBe('data: b\n\n');
    expect(stream.stats.refused).toBe(1);
    expect(reported).toEqual([expect.any(SseFormatError)]);
  });

  it('skips refused messages from an AsyncIterable too', async () => {
    async function* source() {
      yield { data: 'a' };
      yield { data: 'x', id: 'bad\n' };
      yield { data: 'b' };
    }
    const { sink, closes, reported } = run(source());
    await vi.waitFor(() => expect(closes).toHaveLength(1));
    expect(sink.text).toBe('data: a\n\ndata: b\n\n');
    expect(closes[0]!.stats.refused).toBe(1);
    // No onError: the refusal goes to the framework's channel.
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeInstanceOf(SseFormatError);
  });

  it('skips a message larger than maxQueueBytes instead of closing on it', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, closes, reported } = run(subject, { maxQueueBytes: 1024 });
    subject.next({ data: 'a' });
    subject.next({ data: 'x'.repeat(2000) });
    subject.next({ data: 'b' });
    subject.complete();
    await tick();
    expect(sink.text).toBe('data: a\n\ndata: b\n\n');
    expect(closes[0]!.reason).toBe('complete');
    expect(closes[0]!.stats.refused).toBe(1);
    expect(reported).toHaveLength(1);
    expect(String(reported[0])).toMatch(/maxQueueBytes/);
  });

  it('skips a message larger than maxQueueBytes from an AsyncIterable too', async () => {
    async function* source() {
      yield { data: 'a' };
      yield { data: 'x'.repeat(2000) };
      yield { data: 'é'.repeat(600) }; // 600 units, 1,200 bytes
      // 400 units, 1,200 bytes: fewer units than half the cap, so only its exact size tells.
      yield { data: '€'.repeat(400) };
      yield { data: 'b' };
    }
    const { sink, closes, reported } = run(source(), { maxQueueBytes: 1024 });
    await vi.waitFor(() => expect(closes).toHaveLength(1));
    expect(sink.text).toBe('data: a\n\ndata: b\n\n');
    expect(closes[0]!.reason).toBe('complete');
    expect(closes[0]!.stats.refused).toBe(3);
    expect(reported).toHaveLength(3);
    expect(String(reported[0])).toMatch(/maxQueueBytes/);
  });

  it("closes with 'error' on a refused message when onInvalidMessage is 'close'", async () => {
    const { sink, closes } = run(from([{ data: 'a' }, { data: 'x', id: 'a\nb' }, { data: 'b' }]), {
      onInvalidMessage: 'close',
      onError: () => {},
    });
    await tick();
    expect(sink.text).toBe('data: a\n\n');
    expect(closes.map((c) => c.reason)).toEqual(['error']);
    expect(closes[0]!.error).toBeInstanceOf(SseFormatError);
  });
});

describe("an Observable's demand (SUBSCRIBER_DEMAND)", () => {
  it('tells a pulling source to wait while the transport is full, until it drains or the stream ends', async () => {
    let subscriber!: Subscriber<MessageEvent> & WithSubscriberDemand;
    const source = new Observable<MessageEvent>((s) => {
      subscriber = s as typeof subscriber;
    });
    const sink = new MemorySink();
    const { closes } = run(source, {}, sink);
    const demand = () => subscriber[SUBSCRIBER_DEMAND]!();
    expect(demand()).toBeUndefined();
    sink.full = true;
    subscriber.next({ data: 'fills the transport' });
    await tick();
    const room = demand();
    expect(room).toBeInstanceOf(Promise);
    // Asked again meanwhile: the same wait.
    expect(demand()).toBe(room);
    let opened = false;
    void room!.then(() => {
      opened = true;
    });
    await tick();
    expect(opened).toBe(false);
    sink.release();
    await tick();
    expect(opened).toBe(true);
    expect(demand()).toBeUndefined();

    sink.full = true;
    subscriber.next({ data: 'fills it again' });
    await tick();
    const last = demand();
    sink.disconnect();
    await expect(last).resolves.toBeUndefined();
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(demand()).toBeUndefined();
  });
});

describe('AsyncIterable pacing', () => {
  it('an iterator whose pulls resolve at once leaves the event loop its turns while the transport has room', async () => {
    // A generator with no I/O to wait for: each pull resolves in a microtask, and a transport that
    // takes every write (a socket whose client reads as fast) never says full.
    const total = 50_000;
    let pulled = 0;
    async function* endless() {
      while (pulled < total) {
        pulled++;
        yield { data: 'x' };
      }
    }
    let pulledWhenTimerRan: number | undefined;
    setTimeout(() => {
      pulledWhenTimerRan = pulled;
    }, 0);
    const { sink, closes } = run(endless());
    await vi.waitFor(() => expect(closes.map((c) => c.reason)).toEqual(['complete']));
    expect(pulledWhenTimerRan).toBeLessThan(total / 10);
    expect(sink.text).toBe('data: x\n\n'.repeat(total));
  });
});

describe('AsyncIterable teardown', () => {
  const returns: [string, () => unknown][] = [
    [
      'throws',
      () => {
        throw new Error('return() threw');
      },
    ],
    ['rejects', () => Promise.reject(new Error('return() rejected'))],
    ['returns a non-promise', () => 42],
    ['never settles', () => new Promise(() => {})],
  ];
  for (const [label, onReturn] of returns) {
    it(`closes exactly once when the iterator's return() ${label}`, async () => {
      let pulls = 0;
      const iterator: AsyncIterableIterator<MessageEvent> = {
        // Two events, then a pull that never settles: the client leaves while it waits.
        next: () =>
          ++pulls <= 2 ? Promise.resolve({ done: false, value: { data: 'x' } }) : new Promise(() => {}),
        return: onReturn as () => Promise<IteratorResult<MessageEvent>>,
        [Symbol.asyncIterator]() {
          return this;
        },
      };
      const { sink, closes } = run(iterator, { onError: () => {} });
      await tick();
      sink.disconnect();
      await tick();
      await tick();
      expect(closes.map((c) => c.reason)).toEqual(['client']);
      expect(sink.destroyed).toBe(true);
    });
  }

  it('does not return() an iterator that finished or whose next() failed, as for await does not', async () => {
    const messages = {
      done: [],
      throws: ['cursor failed'],
      'no object': [expect.stringMatching(/not an object/)],
    };
    for (const ending of ['done', 'throws', 'no object'] as const) {
      const calls: string[] = [];
      let pulls = 0;
      const iterator = {
        next: async (): Promise<IteratorResult<MessageEvent>> => {
          calls.push('next');
          if (++pulls === 1) return { done: false, value: { data: 'x' } };
          if (ending === 'throws') throw new Error('cursor failed');
          if (ending === 'no object') return 5 as never;
          return { done: true, value: undefined };
        },
        // Its cleanup ran as the cursor ended: once more, it throws.
        return: async (): Promise<IteratorResult<MessageEvent>> => {
          calls.push('return');
          throw new Error('cursor already closed');
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
      const errors: unknown[] = [];
      const { closes, reported } = run(iterator, { onError: (error) => errors.push(error) });
      await vi.waitFor(() => expect(closes).toHaveLength(1));
      await tick();
      expect([calls, closes[0]!.reason], ending).toEqual([
        ['next', 'next'],
        ending === 'done' ? 'complete' : 'error',
      ]);
      expect(
        [...errors, ...reported].map((error) => (error as Error).message),
        ending,
      ).toEqual(messages[ending]);
    }
  });

  it('reports a return() that throws at once, and closes once', () => {
    const iterator = {
      next: () => new Promise<IteratorResult<MessageEvent>>(() => {}),
      return: () => {
        throw new Error('cleanup threw');
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    const { sink, closes, reported } = run(iterator);
    sink.disconnect();
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(reported).toEqual([new Error('cleanup threw')]);
  });

  it('reports a return() that throws or rejects', async () => {
    const iterator = {
      next: () => new Promise<IteratorResult<MessageEvent>>(() => {}),
      return: () => Promise.reject(new Error('cleanup failed')),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    const { sink, reported } = run(iterator);
    sink.disconnect();
    await vi.waitFor(() => expect(reported).toHaveLength(1));
    expect((reported[0] as Error).message).toBe('cleanup failed');
  });

  it('fails a source whose next() resolves to no object with a TypeError, as for await does, instead of pulling on', async () => {
    let pulls = 0;
    const iterator = {
      // A few results that are no objects, then the end: pulled on, each would be refused for good.
      next: () => Promise.resolve(++pulls <= 3 ? 5 : { done: true, value: undefined }),
      return: () => Promise.resolve({ done: true, value: undefined }),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    const errors: unknown[] = [];
    const { sink, closes } = run(iterator, { onError: (error) => errors.push(error) });
    await tick();
    expect(closes.map((c) => c.reason)).toEqual(['error']);
    expect(closes[0]!.stats.refused).toBe(0);
    expect(closes[0]!.error).toBeInstanceOf(TypeError);
    expect(String(closes[0]!.error)).toMatch(/not an object/);
    expect(errors).toEqual([closes[0]!.error]);
    expect(pulls).toBe(1);
    expect(sink.text).toBe('');
  });

  it("turns away, and returns the iterator of, a source whose [Symbol.asyncIterator]() began its group's shutdown", async () => {
    const group = new StreamGroup();
    // A stream still flushing keeps the shutdown going while the source makes its iterator.
    const flushing = run(new Subject<MessageEvent>(), { group });
    flushing.sink.full = true;
    let closed: Promise<void> | undefined;
    const returned = vi.fn(async () => ({ done: true as const, value: undefined }));
    const source = {
      [Symbol.asyncIterator]() {
        closed = group.close();
        return { next: () => new Promise<never>(() => {}), return: returned };
      },
    };
    const { closes } = run(source, { group });
    await tick();
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(returned).toHaveBeenCalledTimes(1);
    flushing.sink.release();
    await closed;
  });
});

describe('user callbacks that throw', () => {
  const boom = (name: string) => () => {
    throw new Error(`${name} threw`);
  };

  it('errorEvent: the stream still ends, and the throw is reported', async () => {
    const failure = new Error('source failed');
    const errors: unknown[] = [];
    // Fails once the stream is open: one that fails at once is refused before the stream opens.
    const source = new Subject<MessageEvent>();
    const { sink, closes, reported } = run(source, {
      errorEvent: boom('errorEvent'),
      onError: (error) => errors.push(error),
    });
    source.error(failure);
    await tick();
    expect(sink.ended).toBe(true);
    expect(closes.map((c) => c.reason)).toEqual(['error']);
    expect(errors.map(String)).toEqual([String(failure), 'Error: errorEvent threw']);
    expect(reported).toEqual([]);
  });

  it('errorEvent, async: the rejection is reported, never unhandled, and nothing is sent for it', async () => {
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    try {
      const errors: unknown[] = [];
      const source = new Subject<MessageEvent>();
      const { sink, closes } = run(source, {
        errorEvent: (async () => {
          throw new Error('errorEvent rejected');
        }) as unknown as StreamOptions['errorEvent'],
        onError: (error) => errors.push(error),
      });
      source.error(new Error('source failed'));
      await tick();
      await tick();
      expect(closes.map((c) => c.reason)).toEqual(['error']);
      expect(sink.text).toBe('');
      expect(errors.map(String)).toContain('Error: errorEvent rejected');
      expect(unhandled).toEqual([]);
    } finally {
      stop();
    }
  });

  it('onClose: the response is still ended and the throw reported', () => {
    const reported: unknown[] = [];
    const sink = new MemorySink();
    streamEvents(from([{ data: 'a' }]), sink, { heartbeat: false, onClose: boom('onClose') }, (error) =>
      reported.push(error),
    );
    expect(sink.ended).toBe(true);
    expect(reported.map(String)).toEqual(['Error: onClose threw']);
  });

  it('onError: the source error and the throw both reach the framework channel', () => {
    const failure = new Error('source failed');
    const source = new Subject<MessageEvent>();
    const { sink, reported, closes } = run(source, { onError: boom('onError') });
    source.error(failure);
    expect(sink.ended).toBe(true);
    expect(closes.map((c) => c.reason)).toEqual(['error']);
    expect(reported.map(String)).toEqual(['Error: onError threw', String(failure)]);
  });

  it('serialize: the message is refused and skipped', async () => {
    const { sink, closes, reported } = run(from([{ data: { n: 1 } }, { data: 'b' }]), {
      serialize: boom('serialize'),
    });
    await tick();
    expect(sink.text).toBe('data: b\n\n');
    expect(closes[0]!.stats.refused).toBe(1);
    expect(String(reported[0])).toMatch(/serialize threw/);
  });

  it('every metrics hook: the stream still works and ends, each throw reported', async () => {
    const metrics: StreamMetrics = {
      opened: boom('opened'),
      wrote: boom('wrote'),
      heartbeat: boom('heartbeat'),
      dropped: boom('dropped'),
      closed: boom('closed'),
      refused: boom('refused'),
    };
    const onClose = vi.fn();
    const subject = new Subject<MessageEvent>();
    const { sink, reported } = run(subject, {
      metrics,
      onClose,
      maxQueueBytes: 64,
      onOverflow: 'drop-newest',
    });
    subject.next({ data: 'a' });
    subject.next({ data: 'x', id: 'a\nb' });
    sink.full = true;
    await tick();
    subject.next({ data: 'y'.repeat(40) });
    subject.next({ data: 'z'.repeat(40) });
    subject.complete();
    sink.release();
    await tick();
    expect(sink.ended).toBe(true);
    expect(sink.text).toContain('data: a\n\n');
    expect(onClose).toHaveBeenCalledTimes(1);
    const messages = new Set(reported.map(String));
    for (const hook of ['opened', 'wrote', 'dropped', 'closed', 'refused']) {
      expect(messages).toContain(`Error: ${hook} threw`);
    }
  });

  it('async onClose, onError and metrics hooks: a rejection is heard like a throw, never unhandled', async () => {
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    try {
      const reject = (name: string) => async () => {
        throw new Error(`${name} rejected`);
      };
      const metrics: StreamMetrics = {
        opened: reject('opened'),
        wrote: reject('wrote'),
        heartbeat: reject('heartbeat'),
        dropped: reject('dropped'),
        closed: reject('closed'),
      };
      const errors: unknown[] = [];
      const { sink, reported } = run(from([{ data: 'a' }]), {
        metrics,
        onClose: reject('onClose'),
        onError: async (error) => {
          errors.push(error);
          if (String(error).includes('onClose')) throw new Error('onError rejected');
        },
      });
      await tick();
      await tick();
      expect(sink.ended).toBe(true);
      expect(new Set(errors.map(String))).toEqual(
        new Set(['opened', 'wrote', 'closed', 'onClose'].map((name) => `Error: ${name} rejected`)),
      );
      // As for a throw: the rejection, then the error onError failed to take.
      expect(reported.map(String)).toEqual(['Error: onError rejected', 'Error: onClose rejected']);
      expect(unhandled).toEqual([]);
    } finally {
      stop();
    }
  });

  it('an async serialize: the message is refused, and its rejection is heard, never unhandled', async () => {
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    try {
      const errors: unknown[] = [];
      const { sink } = run(from([{ data: { n: 1 } }, { data: { n: 2 } }]), {
        serialize: (async () => {
          throw new Error('serialize rejected');
        }) as never,
        onError: (error) => void errors.push(error),
      });
      await tick();
      await tick();
      expect(errors.map(String)).toEqual([
        'SseFormatError: Invalid SSE data: the serializer returned a Promise: it must return the text itself (an async serialize cannot be awaited)',
        'SseFormatError: Invalid SSE data: the serializer returned a Promise: it must return the text itself (an async serialize cannot be awaited)',
        'Error: serialize rejected',
        'Error: serialize rejected',
      ]);
      expect(sink.text).toBe('');
      expect(unhandled).toEqual([]);
    } finally {
      stop();
    }
  });

  it("an Observable's async teardown: a rejection is reported, never unhandled", async () => {
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    try {
      const source = new Observable<MessageEvent>((subscriber) => {
        subscriber.next({ data: 'x' });
        return async () => {
          throw new Error('teardown rejected');
        };
      });
      const { sink, reported } = run(source);
      sink.disconnect();
      await tick();
      await tick();
      expect(reported.map(String)).toEqual(['Error: teardown rejected']);
      expect(unhandled).toEqual([]);
    } finally {
      stop();
    }
  });

  it('an async subscribe function that settles after its client left: its teardown runs, its rejection is reported', async () => {
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    try {
      let tornDown = 0;
      const settles: Record<string, () => void> = {};
      const pending = (name: string, settle: () => unknown) =>
        new Observable<MessageEvent>(
          (() => new Promise((resolve) => (settles[name] = () => resolve(settle())))) as never,
        );
      const resolved = run(pending('resolve', () => () => tornDown++));
      const rejected = run(pending('reject', () => Promise.reject(new Error('subscribe rejected'))));
      resolved.sink.disconnect();
      rejected.sink.disconnect();
      settles.resolve!();
      settles.reject!();
      await tick();
      expect(tornDown).toBe(1);
      expect(rejected.reported.map(String)).toEqual(['Error: subscribe rejected']);
      expect([...resolved.closes, ...rejected.closes].map((c) => c.reason)).toEqual(['client', 'client']);
      expect(unhandled).toEqual([]);
    } finally {
      stop();
    }
  });

  it('an async subscribe function that rejects while its stream is open: the stream fails with its error', async () => {
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    try {
      const failure = new Error('subscribe rejected');
      const errors: unknown[] = [];
      const source = new Observable<MessageEvent>((async (subscriber: Subscriber<MessageEvent>) => {
        subscriber.next({ data: 'a' });
        await Promise.resolve();
        throw failure;
      }) as never);
      const { sink, closes, reported } = run(source, { onError: (error) => void errors.push(error) });
      await tick();
      expect(sink.text).toBe('data: a\n\n');
      expect(closes.map((c) => [c.reason, c.error])).toEqual([['error', failure]]);
      expect(sink.ended).toBe(true);
      expect([errors, reported, unhandled]).toEqual([[failure], [], []]);
    } finally {
      stop();
    }
  });

  it("a reporter that throws is not fatal either: the console tells the error and the reporter's failure", () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const sink = new MemorySink();
    const source = new Subject<MessageEvent>();
    const failure = new Error('x');
    let thrown: unknown;
    streamEvents(source, sink, { heartbeat: false }, () => {
      thrown = new Error('the reporter threw');
      throw thrown;
    });
    try {
      expect(() => source.error(failure)).not.toThrow();
      expect(sink.ended).toBe(true);
      expect(logged.mock.calls).toEqual([[expect.stringMatching(/^rxsse: /), failure, thrown]]);
    } finally {
      logged.mockRestore();
    }
  });

  it('a reporter that throws while the console throws too is not fatal: the stream still ends', () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {
      throw new Error('the console threw');
    });
    const sink = new MemorySink();
    const source = new Subject<MessageEvent>();
    const closes: string[] = [];
    streamEvents(source, sink, { heartbeat: false, onClose: (reason) => void closes.push(reason) }, () => {
      throw new Error('the reporter threw');
    });
    try {
      expect(() => source.error(new Error('x'))).not.toThrow();
      expect(logged).toHaveBeenCalledTimes(1);
      expect(sink.ended).toBe(true);
      expect(closes).toEqual(['error']);
    } finally {
      logged.mockRestore();
    }
  });
});

describe('sinks that throw', () => {
  type SinkCall = 'open' | 'write' | 'end' | 'destroy';

  /** A MemorySink whose `method` throws, as a custom transport's might. */
  function failingSink(method: SinkCall) {
    const sink = new MemorySink();
    const call = sink[method].bind(sink) as (...args: unknown[]) => void;
    sink[method] = ((...args: unknown[]) => {
      call(...args);
      throw new Error(`${method} threw`);
    }) as never;
    return sink;
  }

  /** Collects what escapes as an uncaught exception (a throw out of a microtask or a timer). */
  function catchUncaught() {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    return { uncaught, stop: () => process.off('uncaughtException', onUncaught) };
  }

  /** Streams `source` to `sink` with onError and onClose recorded. */
  function watch(
    source: EventSourceLike<MessageEvent<unknown>>,
    sink: MemorySink,
    options: StreamOptions = {},
  ) {
    const closes: Closed[] = [];
    const errors: unknown[] = [];
    const reported: unknown[] = [];
    streamEvents(
      source,
      sink,
      {
        heartbeat: false,
        onClose: (reason, stats, error) => closes.push({ reason, stats, error }),
        onError: (error) => errors.push(error),
        ...options,
      },
      (error) => reported.push(error),
    );
    return { closes, errors, reported };
  }

  it('write in the tick: closes its own stream with error, and every other stream of the tick is written', async () => {
    const { uncaught, stop } = catchUncaught();
    try {
      const subject = new Subject<MessageEvent>();
      const broken = failingSink('write');
      const failed = watch(subject, broken);
      const healthy = [new MemorySink(), new MemorySink()];
      const others = healthy.map((sink) => watch(subject, sink));
      subject.next({ data: 'a' });
      await tick();
      subject.next({ data: 'b' });
      await tick();
      for (const sink of healthy) expect(sink.text).toBe('data: a\n\ndata: b\n\n');
      for (const other of others) expect(other.closes).toEqual([]);
      expect(failed.closes.map((c) => c.reason)).toEqual(['error']);
      expect(failed.errors.map(String)).toEqual(['Error: write threw']);
      expect(failed.reported).toEqual([]);
      expect(broken.destroyed).toBe(true);
      expect(broken.ended).toBe(false);
      expect(uncaught).toEqual([]);
      subject.complete();
    } finally {
      stop();
    }
  });

  it('write of a tick larger than a chunk: the source goes on to the other streams', async () => {
    const subject = new Subject<MessageEvent>();
    const broken = failingSink('write');
    const failed = watch(subject, broken, { maxQueueBytes: 1024 * 1024 });
    const healthy = new MemorySink();
    watch(subject, healthy, { maxQueueBytes: 1024 * 1024 });
    const data = 'x'.repeat(1000);
    expect(() => {
      for (let i = 0; i < 100; i++) subject.next({ data });
    }).not.toThrow();
    await tick();
    expect(healthy.text).toBe(`data: ${data}\n\n`.repeat(100));
    expect(failed.closes.map((c) => c.reason)).toEqual(['error']);
    expect(failed.errors.map(String)).toEqual(['Error: write threw']);
    subject.complete();
  });

  it('write of a heartbeat: only that stream closes, the others still beat, and it is not counted sent', async () => {
    vi.useFakeTimers();
    const { uncaught, stop } = catchUncaught();
    try {
      const broken = failingSink('write');
      let counted = 0;
      const none = () => {};
      const metrics = { opened: none, wrote: none, dropped: none, closed: none, heartbeat: () => counted++ };
      const failed = watch(NEVER, broken, { heartbeat: 1000, metrics });
      const healthy = new MemorySink();
      const other = watch(NEVER, healthy, { heartbeat: 1000 });
      await vi.advanceTimersByTimeAsync(2000);
      expect(healthy.text).toBe(':\n');
      expect(failed.closes.map((c) => c.reason)).toEqual(['error']);
      expect(failed.errors.map(String)).toEqual(['Error: write threw']);
      expect([counted, failed.closes[0]!.stats.heartbeats]).toEqual([0, 0]);
      expect(uncaught).toEqual([]);
      healthy.disconnect();
      expect(other.closes.map((c) => c.reason)).toEqual(['client']);
    } finally {
      stop();
      vi.useRealTimers();
    }
  });

  it('write of a pulled message: closes with error once, reported once, and the sink is only destroyed', async () => {
    async function* source() {
      yield { data: 'a' };
      yield { data: 'b' };
    }
    const broken = failingSink('write');
    const failed = watch(source(), broken, { errorEvent: () => ({ data: 'failed' }) });
    await tick();
    expect(failed.closes.map((c) => c.reason)).toEqual(['error']);
    expect(failed.errors.map(String)).toEqual(['Error: write threw']);
    expect(broken.text).toBe('data: a\n\n');
    expect(broken.destroyed).toBe(true);
    expect(broken.ended).toBe(false);
  });

  it('open: closes with error before any write, and returns the iterator', async () => {
    const { iterator, returned } = await startedIterator();
    const broken = failingSink('open');
    let failed: ReturnType<typeof watch> | undefined;
    expect(() => {
      failed = watch(iterator, broken, { retry: 1000 });
    }).not.toThrow();
    await tick();
    expect(failed!.closes.map((c) => c.reason)).toEqual(['error']);
    expect(failed!.errors.map(String)).toEqual(['Error: open threw']);
    expect(broken.chunks).toEqual([]);
    expect(broken.destroyed).toBe(true);
    expect(returned()).toBe(true);
  });

  it('write of the retry hint that drops the connection, then throws: one close, reported, and the iterator returned', async () => {
    class Sink extends MemorySink {
      override write(chunk: Uint8Array): boolean {
        super.write(chunk);
        this.disconnect();
        throw new Error('write threw');
      }
    }
    const { iterator, returned } = await startedIterator();
    const { closes, errors, reported } = watch(iterator, new Sink(), { retry: 1000 });
    await tick();
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(errors.map(String)).toEqual(['Error: write threw']);
    expect(reported).toEqual([]);
    expect(returned()).toBe(true);
  });

  it('end: the source completing still completes the other streams, and the throw is reported', () => {
    const subject = new Subject<MessageEvent>();
    const broken = failingSink('end');
    const failed = watch(subject, broken);
    const healthy = new MemorySink();
    const other = watch(subject, healthy);
    expect(() => subject.complete()).not.toThrow();
    expect(failed.closes.map((c) => c.reason)).toEqual(['complete']);
    expect(failed.errors.map(String)).toEqual(['Error: end threw']);
    expect(broken.destroyed).toBe(true);
    expect(other.closes.map((c) => c.reason)).toEqual(['complete']);
    expect(healthy.ended).toBe(true);
  });

  it('end: a group shutdown still closes every other stream', async () => {
    const group = new StreamGroup();
    const broken = failingSink('end');
    const failed = watch(NEVER, broken, { group });
    const healthy = new MemorySink();
    const other = watch(NEVER, healthy, { group });
    await expect(group.close({ deadline: 1000 })).resolves.toBeUndefined();
    expect(failed.closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(failed.errors.map(String)).toEqual(['Error: end threw']);
    expect(other.closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(healthy.ended).toBe(true);
    expect(group.size).toBe(0);
  });

  it('destroy: a client that leaves closes the stream once, and the throw is reported', async () => {
    const { uncaught, stop } = catchUncaught();
    try {
      const broken = failingSink('destroy');
      const failed = watch(NEVER, broken);
      broken.disconnect();
      await tick();
      expect(failed.closes.map((c) => c.reason)).toEqual(['client']);
      expect(failed.errors.map(String)).toEqual(['Error: destroy threw']);
      expect(uncaught).toEqual([]);
    } finally {
      stop();
    }
  });
});

describe('encode once', () => {
  it('never sends text encoded for an earlier state of a re-used message object', async () => {
    const options = resolveStreamOptions({ heartbeat: false });
    const shared: MessageEvent = { data: '' };
    const a = new Subject<MessageEvent>();
    const b = new Subject<MessageEvent>();
    const sinkA = new MemorySink();
    const sinkB = new MemorySink();
    streamEvents(a, sinkA, options);
    streamEvents(b, sinkB, options);
    shared.data = 'for A';
    a.next(shared);
    await tick();
    shared.data = 'for B';
    b.next(shared);
    await tick();
    // Mutated within one synchronous turn, too.
    shared.data = 'A again';
    a.next(shared);
    shared.data = 'B again';
    shared.id = '7';
    b.next(shared);
    await tick();
    expect(sinkA.text).toBe('data: for A\n\ndata: A again\n\n');
    expect(sinkB.text).toBe('data: for B\n\nid: 7\ndata: B again\n\n');
  });

  it('re-encodes an object whose JSON data was mutated between ticks', async () => {
    const options = resolveStreamOptions({ heartbeat: false });
    const state = { n: 1 };
    const shared: MessageEvent = { data: state };
    const a = new Subject<MessageEvent>();
    const sink = new MemorySink();
    streamEvents(a, sink, options);
    a.next(shared);
    await tick();
    state.n = 2;
    a.next(shared);
    await tick();
    expect(sink.text).toBe('data: {"n":1}\n\ndata: {"n":2}\n\n');
  });
});

describe('option validation', () => {
  const MAX = 2 ** 31 - 1;
  for (const name of ['heartbeat', 'stallTimeout', 'maxLifetime', 'retry'] as const) {
    for (const value of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, MAX + 1, 30 * 86_400_000]) {
      it(`refuses ${name}: ${value} with a RangeError naming it`, () => {
        expect(() => resolveStreamOptions({ [name]: value })).toThrow(RangeError);
        expect(() => resolveStreamOptions({ [name]: value })).toThrow(new RegExp(name));
      });
    }
    it(`accepts ${name}: 2^31-1`, () => {
      expect(() => resolveStreamOptions({ [name]: MAX })).not.toThrow();
    });
  }

  it('resolves options once, and checks every object that was not resolved here, whatever fields it carries', () => {
    const resolved = resolveStreamOptions({ retry: 1000 });
    expect(resolveStreamOptions(resolved)).toBe(resolved);
    // A copy is checked again, and resolved as the original was.
    expect(resolveStreamOptions({ ...resolved })).toMatchObject({ retry: 1000, heartbeat: 15_000 });
    expect(() => resolveStreamOptions({ ...resolved, maxQueueBytes: -1 })).toThrow(/maxQueueBytes/);
    const forged = { resolved: true, maxQueueBytes: -1, heartbeat: 'soon' } as unknown as StreamOptions;
    expect(() => resolveStreamOptions(forged)).toThrow(TypeError);
    // Known to every copy of rxsse in the process (an ESM and a CJS build), by a registered symbol.
    const symbols = Object.getOwnPropertySymbols(resolved);
    expect(symbols.map((symbol) => Symbol.keyFor(symbol))).toEqual(['rxsse.resolvedStreamOptions']);
    expect(Object.keys(resolved)).not.toContain('resolved');
  });

  it('refuses a retry that is not an integer', () => {
    expect(() => resolveStreamOptions({ retry: 1.5 })).toThrow(/retry/);
  });

  it('refuses an unknown onInvalidMessage', () => {
    expect(() => resolveStreamOptions({ onInvalidMessage: 'ignore' as never })).toThrow(/onInvalidMessage/);
  });

  for (const [name, value] of [
    ['deadline', 0],
    ['deadline', MAX + 1],
    ['spread', -1],
    ['spread', MAX + 1],
    ['retry', 0],
    ['retry', 1.5],
  ] as const) {
    it(`refuses shutdown ${name}: ${value}`, async () => {
      await expect(new StreamGroup().close({ [name]: value })).rejects.toThrow(new RegExp(name));
    });
  }

  afterEach(() => {
    expect(heartbeatCount()).toBe(0);
  });

  it('keeps the heartbeat wheel small whatever the interval', () => {
    const target = { busy: false, beat() {} };
    globalThis.gc?.();
    const before = process.memoryUsage().heapUsed;
    const leave = scheduleHeartbeat(86_400_000, target);
    const grown = process.memoryUsage().heapUsed - before;
    leave();
    expect(grown).toBeLessThan(4 * 1024 * 1024);
  });

  it('fires a long maxLifetime late, not at once', async () => {
    vi.useFakeTimers();
    try {
      const { closes, sink } = run(concat(from([{ data: 'a' }]), NEVER), { maxLifetime: MAX });
      await vi.advanceTimersByTimeAsync(60_000);
      expect(closes).toEqual([]);
      sink.disconnect();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a metrics hook that ends its own stream', () => {
  /** Hooks that do nothing, but for `hooks`. */
  const hooksWith = (hooks: Partial<StreamMetrics>): StreamMetrics => ({
    opened() {},
    wrote() {},
    heartbeat() {},
    dropped() {},
    closed() {},
    ...hooks,
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([10, 70_000])(
    'serialize, closing the group for a message of %i characters: nothing is written after the end',
    async (length) => {
      const group = new StreamGroup();
      const sink = new EndedSink();
      const events = new Subject<MessageEvent>();
      const serialize = (data: unknown) => {
        if ((data as { close: boolean }).close) void group.close({ deadline: 50 });
        return 'x'.repeat(length);
      };
      const { closes } = run(events, { group, serialize }, sink);
      events.next({ data: { close: false } });
      events.next({ data: { close: true } });
      await tick();
      expect(sink.late).toEqual([]);
      expect(sink.ended).toBe(true);
      expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
      expect(sink.text).toBe(`data: ${'x'.repeat(length)}\n\n`);
      // The message whose serialize ended the stream is lost: counted, as every lost event.
      expect(closes[0]!.stats).toMatchObject({ events: 1, dropped: 1 });
    },
  );

  it('wrote, closing the group while a message waits for room: that message is counted dropped', async () => {
    const group = new StreamGroup();
    const sink = new EndedSink();
    const events = new Subject<MessageEvent>();
    let writes = 0;
    const metrics = hooksWith({
      wrote: () => {
        if (writes++ > 0) void group.close({ deadline: 50 });
      },
    });
    const { closes } = run(events, { group, metrics, maxQueueBytes: 30, retry: 1000 }, sink);
    events.next({ data: 'aaaaaaaaaa' });
    events.next({ data: 'bbbbbbbbbb' });
    await tick();
    expect(sink.late).toEqual([]);
    expect(sink.text).toBe('retry: 1000\n\ndata: aaaaaaaaaa\n\n');
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(closes[0]!.stats).toMatchObject({ events: 1, dropped: 1 });
  });

  it('dropped, closing the group as drop-oldest makes room: every message is sent or counted dropped', async () => {
    const group = new StreamGroup();
    const sink = new EndedSink();
    sink.full = true;
    const events = new Subject<MessageEvent>();
    const metrics = hooksWith({ dropped: () => void group.close({ deadline: 50 }) });
    const { closes } = run(events, { group, metrics, maxQueueBytes: 50, onOverflow: 'drop-oldest' }, sink);
    for (let i = 0; i < 5; i++) events.next({ data: `message ${i}` });
    sink.release();
    await tick();
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    const { events: sent, dropped } = closes[0]!.stats;
    expect(sent + dropped).toBe(5);
    expect(sink.text.split('\n\n').filter((block) => block.startsWith('data:'))).toHaveLength(sent);
  });

  it('wrote, closing the group mid-flush: every event goes out once, in order, before the end', async () => {
    const sink = new EndedSink();
    const group = new StreamGroup();
    const subject = new Subject<MessageEvent>();
    let writes = 0;
    const metrics = hooksWith({
      wrote: () => {
        if (++writes === 1) void group.close();
      },
    });
    const { closes } = run(subject, { group, metrics }, sink);
    subject.next({ data: 'a' });
    subject.next({ data: 'b' });
    await tick();
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(sink.text).toBe('data: a\n\ndata: b\n\n');
    expect(sink.late).toEqual([]);
  });

  it('wrote, destroying the stream while it writes its end: nothing more goes to the sink it dropped', async () => {
    const sink = new EndedSink();
    sink.full = true;
    const events = new Subject<MessageEvent>();
    let destroying = false;
    let stream: EventStream | undefined;
    const metrics = hooksWith({
      wrote: () => {
        if (destroying) stream?.destroy();
      },
    });
    const { closes, ...started } = run(events, { metrics, maxQueueBytes: 1024 * 1024 }, sink);
    stream = started.stream;
    events.next({ data: 'a' });
    await tick();
    // The transport took a and is full: b and c wait in the queue, a chunk each.
    const b = 'b'.repeat(70_000);
    events.next({ data: b });
    events.next({ data: 'c'.repeat(70_000) });
    destroying = true;
    stream.close('shutdown', 1000);
    expect(sink.destroyed).toBe(true);
    expect(sink.late).toEqual([]);
    expect(sink.ended).toBe(false);
    expect(sink.text).toBe(`data: a\n\ndata: ${b}\n\n`);
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    // c, left in the queue, is lost with the connection: counted.
    expect(closes[0]!.stats).toMatchObject({ events: 2, dropped: 1 });
  });

  it('onError, destroying the stream its source failed: no error event or end goes to the sink it dropped', async () => {
    const sink = new EndedSink();
    sink.full = true;
    const events = new Subject<MessageEvent>();
    let stream: EventStream | undefined;
    const { closes, ...started } = run(
      events,
      { onError: () => stream?.destroy(), errorEvent: () => ({ type: 'error', data: 'failed' }) },
      sink,
    );
    stream = started.stream;
    events.next({ data: 'a' });
    await tick();
    // The transport took a and is full: b waits in the queue.
    events.next({ data: 'b' });
    events.error(new Error('source failed'));
    expect(sink.destroyed).toBe(true);
    expect(sink.late).toEqual([]);
    expect(sink.ended).toBe(false);
    expect(sink.text).toBe('data: a\n\n');
    expect(closes.map((c) => c.reason)).toEqual(['error']);
    expect(closes[0]!.stats).toMatchObject({ events: 1, dropped: 1 });
  });

  it("opened, closing the group, for an Observable: the shutdown's answer comes after the stream's headers", async () => {
    const sink = new EndedSink();
    const calls: string[] = [];
    const open = sink.open.bind(sink);
    sink.open = (headers) => {
      calls.push('open');
      return open(headers);
    };
    const group = new StreamGroup();
    const metrics = hooksWith({ opened: () => void group.close({ retry: 5000 }) });
    // Subscribed before it opens, it is a member of the group as its hook closes it.
    const { closes } = run(from([{ data: 'a' }]), { group, metrics }, sink);
    await tick();
    expect(calls).toEqual(['open']);
    expect(sink.headers?.['content-type']).toBe('text/event-stream');
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(sink.text).toMatch(/^retry: \d+\n\n$/);
    expect(sink.ended).toBe(true);
    expect(sink.late).toEqual([]);
  });

  it.each([
    ['an AsyncIterable', true],
    ['a source that opens first', false],
  ])(
    'opened, closing the group, for %s: the shutdown ends the stream after its headers, instead of leaving it open in the closed group',
    async (_, iterable) => {
      const sink = new EndedSink();
      const group = new StreamGroup();
      const source = iterable
        ? (async function* () {
            yield { data: 'a' };
          })()
        : Object.assign(new Subject<MessageEvent>().asObservable(), { [SOURCE_OPENS_FIRST]: true });
      let closing: Promise<void> | undefined;
      const metrics = hooksWith({
        opened: () => {
          closing = group.close({ retry: 5000 });
        },
      });
      const { closes } = run(source, { group, metrics }, sink);
      await tick();
      expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
      expect(sink.headers?.['content-type']).toBe('text/event-stream');
      // Turned away as a request that arrives during the shutdown: its source is never fed.
      expect(sink.text).toMatch(/^retry: \d+\n\n$/);
      expect(sink.ended).toBe(true);
      expect(sink.late).toEqual([]);
      expect(group.size).toBe(0);
      await closing;
    },
  );

  it('opened, closing the group, for an Observable whose client left as it was subscribed: closed by the client, nothing written to the sink it never opened', async () => {
    const sink = new MemorySink();
    const group = new StreamGroup();
    const metrics = hooksWith({ opened: () => void group.close({ retry: 5000 }) });
    // Its client leaves while the source is subscribed, before its first message.
    const source = new Observable<MessageEvent>(() => sink.disconnect());
    const { closes } = run(source, { group, metrics }, sink);
    await tick();
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(sink.headers).toBeUndefined();
    expect(sink.chunks).toEqual([]);
    expect(sink.ended).toBe(false);
    expect(group.size).toBe(0);
  });

  it('heartbeat: no heartbeat is written after the end', async () => {
    vi.useFakeTimers();
    const sink = new EndedSink();
    const group = new StreamGroup();
    const { closes } = run(
      NEVER,
      { group, heartbeat: 1000, metrics: hooksWith({ heartbeat: () => void group.close() }) },
      sink,
    );
    await vi.advanceTimersByTimeAsync(3000);
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(sink.late).toEqual([]);
  });

  it('wrote, for the retry hint: the stream holds no heartbeat, timer or source after its end', async () => {
    vi.useFakeTimers();
    const sink = new EndedSink();
    const group = new StreamGroup();
    const { iterator, returned } = await startedIterator();
    const { closes } = run(
      iterator,
      {
        group,
        retry: 1000,
        heartbeat: 1000,
        maxLifetime: 60_000,
        metrics: hooksWith({ wrote: () => void group.close() }),
      },
      sink,
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(heartbeatCount()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(returned()).toBe(true);
    expect(sink.late).toEqual([]);
  });
});

describe('user code that ends its own stream while it runs', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("serialize, for an AsyncIterable's message: nothing is written after the end", async () => {
    const sink = new EndedSink();
    let stream: EventStream | undefined;
    async function* source() {
      yield { data: { n: 1 } };
      yield { data: { n: 2 } };
    }
    const { closes, stream: started } = run(
      source(),
      {
        serialize: (data) => {
          if ((data as { n: number }).n === 2) stream!.close();
          return JSON.stringify(data);
        },
      },
      sink,
    );
    stream = started;
    await tick();
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(sink.text).toBe('data: {"n":1}\n\n');
    expect(sink.late).toEqual([]);
  });
  it("a source's gap event factory that closes the stream: the gap event goes once, nothing after the end", async () => {
    const sink = new EndedSink();
    const { closes, subject } = closedByGapFactory(sink, { onOverflow: 'drop-newest', maxQueueBytes: 30 });
    sink.full = true;
    subject.next({ id: 'w', data: '' });
    await Promise.resolve();
    subject.next({ id: 'e0', data: '' });
    // Dropped: a gap event is owed after e0, made once the client has room.
    subject.next({ id: 'e1', data: 'x'.repeat(10) });
    sink.release();
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\nevent: gap\ndata: after e0\n\n');
    expect(sink.late).toEqual([]);
  });
  it("a source's gap event factory that closes the stream as drop-oldest makes room: nothing is queued after the end", async () => {
    const sink = new EndedSink();
    const {
      closes,
      subject,
      stream: started,
    } = closedByGapFactory(sink, {
      onOverflow: 'drop-oldest',
      maxQueueBytes: 51,
    });
    sink.full = true;
    subject.next({ id: 'w', data: '' });
    await Promise.resolve();
    for (const id of ['e0', 'e1', 'e2']) subject.next({ id, data: '' });
    // 25 bytes, and the gap event's 26, fit only if the oldest go: the factory, asked for the gap
    // event that would go first, closes the stream, which hands the queue over as it ends.
    subject.next({ id: 'e3', data: 'x'.repeat(10) });
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(started.queuedBytes).toBe(0);
    sink.release();
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\nid: e1\ndata:\n\nid: e2\ndata:\n\n');
    expect(sink.late).toEqual([]);
    expect(closes[0]!.stats.dropped).toBe(1);
  });
  /** A stream to `sink` of a source whose gap event factory closes the stream as it makes the gap event. */
  function closedByGapFactory(sink: EndedSink, options: StreamOptions) {
    const subject = new Subject<MessageEvent>();
    let stream: EventStream | undefined;
    const source = Object.assign(
      new Observable<MessageEvent>((subscriber) => subject.subscribe(subscriber)),
      {
        [SOURCE_GAP_EVENT]: (lastEventId: string | null) => {
          stream?.close();
          return { type: 'gap', data: `after ${lastEventId}` };
        },
      },
    );
    const started = run(source, options, sink);
    stream = started.stream;
    return { ...started, subject };
  }
  /** Streams with a heartbeat, a lifetime and a retry hint, to a sink that `during` ends at `open()`. */
  async function endedAtOpen(during: (sink: MemorySink, group: StreamGroup) => void) {
    vi.useFakeTimers();
    const group = new StreamGroup();
    class Sink extends EndedSink {
      override open(headers: Readonly<Record<string, string>>) {
        super.open(headers);
        during(this, group);
      }
    }
    const sink = new Sink();
    const { iterator, returned } = await startedIterator();
    const { closes } = run(iterator, { group, retry: 1000, heartbeat: 1000, maxLifetime: 60_000 }, sink);
    await vi.advanceTimersByTimeAsync(5000);
    return { sink, group, closes, returned };
  }

  for (const [label, during, reason] of [
    ['the client leaves', (sink: MemorySink) => sink.disconnect(), 'client'],
    ['the group closes', (_: MemorySink, group: StreamGroup) => void group.close(), 'shutdown'],
  ] as const) {
    it(`a sink's open() during which ${label}: no heartbeat, timer, group or bytes after the end`, async () => {
      const { sink, group, closes, returned } = await endedAtOpen(during);
      expect(closes.map((c) => c.reason)).toEqual([reason]);
      expect(heartbeatCount()).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
      expect(group.size).toBe(0);
      expect(sink.late).toEqual([]);
      expect(returned()).toBe(true);
    });
  }
  it("a sink's onClose() that calls its listener at once: the stream leaves its group and the wheel", async () => {
    vi.useFakeTimers();
    const group = new StreamGroup();
    class Sink extends EndedSink {
      onClose(listener: () => void) {
        listener();
        return true;
      }
    }
    const sink = new Sink();
    const { iterator, returned } = await startedIterator();
    const { closes } = run(iterator, { group, heartbeat: 1000, maxLifetime: 60_000 }, sink);
    await vi.advanceTimersByTimeAsync(5000);
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(group.size).toBe(0);
    expect(heartbeatCount()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(sink.chunks).toEqual([]);
    expect(returned()).toBe(true);
  });
});

describe('sinks that call back at once', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A sink whose client leaves inside each write, as Deno's cancels a Web body inside `enqueue`. */
  class LeavingSink extends MemorySink {
    override write(chunk: Uint8Array) {
      const room = super.write(chunk);
      this.disconnect();
      return room;
    }
  }
  /** Every hook as a line, in order. */
  const hookLog = (log: string[]): StreamMetrics => ({
    opened: () => log.push('opened'),
    wrote: (events, bytes) => log.push(`wrote ${events} ${bytes}`),
    heartbeat: () => log.push('heartbeat'),
    dropped: (count) => log.push(`dropped ${count}`),
    closed: (reason) => log.push(`closed ${reason}`),
  });

  // The hooks of the chunk the transport was taking come after `closed`: the stream ended inside
  // its write. The counts `onClose` and `closed` got are the final ones, that chunk included (the
  // queue's peak is noted once the flush is over).
  const counts = ({ events, bytes, heartbeats, dropped, refused }: StreamStats) => ({
    events,
    bytes,
    heartbeats,
    dropped,
    refused,
  });
  it('a client that leaves inside the write of an event: the counts onClose got are final', async () => {
    const log: string[] = [];
    const subject = new Subject<MessageEvent>();
    const atClose: ReturnType<typeof counts>[] = [];
    const onClose = (_: CloseReason, stats: StreamStats) => atClose.push(counts(stats));
    const { stream } = run(subject, { metrics: hookLog(log), onClose }, new LeavingSink());
    subject.next({ data: 'x' });
    await tick();
    expect(log.sort()).toEqual(['closed client', 'opened', 'wrote 1 9']);
    expect(atClose).toEqual([counts(stream.stats)]);
    expect(stream.stats).toMatchObject({ events: 1, bytes: 9 });
  });

  it('a client that leaves inside the write of a heartbeat: the counts onClose got are final', async () => {
    vi.useFakeTimers();
    const log: string[] = [];
    const atClose: ReturnType<typeof counts>[] = [];
    const onClose = (_: CloseReason, stats: StreamStats) => atClose.push(counts(stats));
    const metrics = hookLog(log);
    const { stream } = run(NEVER, { heartbeat: 1000, metrics, onClose }, new LeavingSink());
    await vi.advanceTimersByTimeAsync(2500);
    expect(log.sort()).toEqual(['closed client', 'heartbeat', 'opened', 'wrote 0 2']);
    expect(atClose).toEqual([counts(stream.stats)]);
    expect(stream.stats).toMatchObject({ heartbeats: 1, bytes: 2 });
  });

  it('onDrain() that calls its listener as it registers it: the stream that has room again is not dropped as stalled', async () => {
    vi.useFakeTimers();
    // The transport drained before the stream asked to be told: such a sink says so at once.
    class Sink extends MemorySink {
      override onDrain(listener: () => void) {
        super.onDrain(listener);
        this.full = false;
        listener();
      }
    }
    const sink = new Sink();
    sink.full = true;
    await expectNoStall(sink);
  });
});

/** Events five stall timeouts apart on `sink`, then a complete: the stream is never dropped as stalled. */
async function expectNoStall(sink: MemorySink): Promise<void> {
  const subject = new Subject<MessageEvent>();
  const { closes } = run(subject, { stallTimeout: 1000 }, sink);
  subject.next({ data: 'a' });
  await vi.advanceTimersByTimeAsync(5000);
  subject.next({ data: 'b' });
  await vi.advanceTimersByTimeAsync(0);
  expect(closes).toEqual([]);
  expect(sink.text).toBe('data: a\n\ndata: b\n\n');
  subject.complete();
  expect(closes.map((c) => c.reason)).toEqual(['complete']);
  expect(vi.getTimerCount()).toBe(0);
}

describe('sinks of plain JavaScript', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('write() that returns nothing has room, as an open() that returns nothing has: the stream is not dropped as stalled', async () => {
    vi.useFakeTimers();
    class Sink extends MemorySink {
      override write(chunk: Uint8Array) {
        super.write(chunk);
        return undefined as unknown as boolean;
      }
    }
    const sink = new Sink();
    await expectNoStall(sink);
  });
});

describe('a source sent to while the stream takes one of its messages', () => {
  /** Metrics whose `dropped` hook is `dropped`. */
  const onDrop = (dropped: () => void): StreamMetrics => ({
    opened() {},
    wrote() {},
    heartbeat() {},
    dropped,
    closed() {},
  });

  it('a dropped hook that emits at an overflow close: closes once with overflow, instead of recursing', () => {
    const sink = new MemorySink();
    sink.full = true;
    const subject = new Subject<MessageEvent>();
    let emitted = 0;
    const metrics = onDrop(() => {
      // Bounded, so that the recursion this guards against ends in the test too.
      if (emitted++ < 5000) subject.next({ data: `drop ${emitted}` });
    });
    const { closes, reported } = run(subject, { maxQueueBytes: 20, onOverflow: 'close', metrics }, sink);
    // The transport takes the first and is full: the third passes the cap.
    for (const data of ['aaaaaaaa', 'bbbbbbbb', 'cccccccc']) subject.next({ data });
    expect(closes.map((c) => c.reason)).toEqual(['overflow']);
    expect(reported).toEqual([]);
  });

  it.each([
    ['emits', 'what it sent before the close is counted dropped, instead of lost uncounted', false],
    ['emits and completes', 'the completion that waited behind it is no event, not counted dropped', true],
  ])('a dropped hook that %s at an overflow close: %s', (_what, _outcome, completes) => {
    const sink = new MemorySink();
    sink.full = true;
    const subject = new Subject<MessageEvent>();
    const atClose: StreamStats[] = [];
    const metrics = onDrop(() => {
      subject.next({ data: 'notice' });
      if (completes) subject.complete();
    });
    run(
      subject,
      { maxQueueBytes: 20, onOverflow: 'close', metrics, onClose: (_, stats) => atClose.push({ ...stats }) },
      sink,
    );
    // The transport takes a and is full, b waits, and c passes the cap: the drop of c sends a notice
    // before the close, which drops b and that notice. The notices the close's own drops send come
    // after the end: not the stream's.
    for (const data of ['aaaaaaaa', 'bbbbbbbb', 'cccccccc']) subject.next({ data });
    expect(atClose).toMatchObject([{ events: 1, dropped: 3 }]);
  });

  it('a dropped hook that emits on every drop: the loop ends the stream with a RangeError, instead of running for good', () => {
    const sink = new MemorySink();
    sink.full = true;
    const subject = new Subject<MessageEvent>();
    let emitted = 0;
    const metrics = onDrop(() => {
      // Bounded, so that the loop this guards against ends in the test too.
      if (emitted++ < 100_000) subject.next({ data: 'dropped' });
    });
    const { closes, errors } = run(
      subject,
      { maxQueueBytes: 20, onOverflow: 'drop-newest', metrics, onError: (error) => errors.push(error) },
      sink,
    );
    for (const data of ['aaaaaaaa', 'bbbbbbbb', 'cccccccc']) subject.next({ data });
    expect(closes.map((c) => c.reason)).toEqual(['error']);
    expect(closes[0]!.error).toBeInstanceOf(RangeError);
    expect(errors).toEqual([closes[0]!.error]);
    expect(emitted).toBeLessThan(2000);
  });

  it('a dropped hook that emits under drop-oldest: its event goes after the one that made room', async () => {
    const sink = new MemorySink();
    sink.full = true;
    const subject = new Subject<MessageEvent>();
    let emitted = 0;
    const metrics = onDrop(() => {
      if (emitted++ === 0) subject.next({ data: 'hook' });
    });
    run(subject, { maxQueueBytes: 27, onOverflow: 'drop-oldest', metrics }, sink);
    // The transport takes 1-3 and is full: a-c fill the cap, and d drops them.
    for (const data of ['1', '2', '3', 'a', 'b', 'c', 'd']) subject.next({ data });
    sink.release();
    await tick();
    expect(sink.text).toBe('data: 1\n\ndata: 2\n\ndata: 3\n\ndata: d\n\ndata: hook\n\n');
  });

  it('serialize that emits into the source: the events go out in the order sent', async () => {
    const subject = new Subject<MessageEvent>();
    const serialize = (data: unknown) => {
      if ((data as { n: number }).n === 1) subject.next({ data: { n: 2 } });
      return JSON.stringify(data);
    };
    const { sink } = run(subject, { serialize });
    subject.next({ data: { n: 1 } });
    await tick();
    expect(sink.text).toBe('data: {"n":1}\n\ndata: {"n":2}\n\n');
  });

  it('serialize that emits into the source on each of its messages, a few rounds deep: every event goes out in order, the stream open', async () => {
    const subject = new Subject<MessageEvent>();
    // Each message sends the next while the stream takes it: nine rounds, each one message long.
    const serialize = (data: unknown) => {
      const { n } = data as { n: number };
      if (n < 10) subject.next({ data: { n: n + 1 } });
      return JSON.stringify(data);
    };
    const { sink, closes } = run(subject, { serialize });
    subject.next({ data: { n: 1 } });
    await tick();
    expect(closes).toEqual([]);
    expect(sink.text).toBe(Array.from({ length: 10 }, (_, i) => `data: {"n":${i + 1}}\n\n`).join(''));
  });

  it('serialize that emits into the source, then closes its group: what waited behind its message is counted dropped, instead of lost uncounted', async () => {
    const group = new StreamGroup();
    const subject = new Subject<MessageEvent>();
    const atClose: StreamStats[] = [];
    const serialize = (data: unknown) => {
      if ((data as { n: number }).n === 1) {
        subject.next({ data: { n: 2 } });
        subject.next({ data: { n: 3 } });
        void group.close();
      }
      return JSON.stringify(data);
    };
    // A drop's notice, sent as the end counts one: after the end, not the stream's.
    const metrics = onDrop(() => subject.next({ data: { n: -1 } }));
    const onClose = (_: CloseReason, stats: StreamStats) => atClose.push({ ...stats });
    const { sink } = run(subject, { group, serialize, metrics, onClose });
    subject.next({ data: { n: 0 } });
    subject.next({ data: { n: 1 } });
    await tick();
    expect(sink.text).toBe('data: {"n":0}\n\n');
    // 1, whose serialize ended the stream, is lost, and so are 2 and 3, sent before that end.
    expect(atClose).toMatchObject([{ events: 1, dropped: 3 }]);
  });

  it.each([
    ['an Observable', () => new Subject<MessageEvent>()],
    ['an AsyncIterable', () => undefined],
  ])(
    'serialize that closes the stream, then throws, for %s: its message is counted dropped by that end, not refused as well after it',
    async (_, subject) => {
      const hooks: string[] = [];
      let stream: EventStream | undefined;
      const serialize = (data: unknown) => {
        if ((data as { n: number }).n === 1) {
          stream!.close();
          throw new Error('cannot serialize');
        }
        return JSON.stringify(data);
      };
      const metrics = {
        ...counting().metrics,
        dropped: (count: number) => hooks.push(`dropped ${count}`),
        refused: () => hooks.push('refused'),
        closed: (reason: CloseReason) => hooks.push(`closed ${reason}`),
      };
      const pushed = subject();
      async function* pulled() {
        yield { data: { n: 0 } };
        yield { data: { n: 1 } };
      }
      const errors: unknown[] = [];
      const running = run(pushed ?? pulled(), { serialize, metrics, onError: (error) => errors.push(error) });
      stream = running.stream;
      pushed?.next({ data: { n: 0 } });
      pushed?.next({ data: { n: 1 } });
      await tick();
      expect(running.sink.text).toBe('data: {"n":0}\n\n');
      expect(running.closes.map((c) => c.reason)).toEqual(['shutdown']);
      expect(running.closes[0]!.stats).toMatchObject({ events: 1, dropped: 1, refused: 0 });
      expect(hooks).toEqual(['dropped 1', 'closed shutdown']);
      // Not counted, but still heard: the serializer's failure is a bug of the route's.
      expect(errors.map(String)).toEqual([
        'SseFormatError: Invalid SSE data: the serializer threw: cannot serialize',
      ]);
    },
  );

  it('a wrote hook that ends its stream: the stats onClose gets are final, its queue peak counted before the end', async () => {
    const closed: StreamStats[] = [];
    let stream: EventStream | undefined;
    const metrics = {
      ...counting().metrics,
      wrote: () => stream!.destroy(),
      closed: (_: CloseReason, stats: StreamStats) => closed.push({ ...stats }),
    };
    const subject = new Subject<MessageEvent>();
    const running = run(subject, { metrics, onClose: (_, stats) => closed.push({ ...stats }) });
    stream = running.stream;
    subject.next({ data: 'a' });
    subject.next({ data: 'b' });
    await tick();
    const stats = { events: 2, bytes: 18, heartbeats: 0, dropped: 0, peakQueuedBytes: 18, refused: 0 };
    expect(closed).toEqual([stats, stats]);
    expect(running.stream.stats).toEqual(stats);
  });

  it('a wrote hook that sends: what it queued behind the written chunk counts in the peak, though written in the same turn', async () => {
    const subject = new Subject<MessageEvent>();
    let sent = false;
    const metrics = {
      ...counting().metrics,
      wrote: () => {
        if (sent) return;
        sent = true;
        subject.next({ data: 'x'.repeat(500) });
      },
    };
    const { sink, stream } = run(subject, { metrics });
    subject.next({ data: 'a' });
    await tick();
    expect(sink.text).toBe(`data: a\n\ndata: ${'x'.repeat(500)}\n\n`);
    // The queue held 'data: a' (9 bytes), then the 508 the hook sent: never both at once.
    expect(stream.stats).toMatchObject({ events: 2, bytes: 517, peakQueuedBytes: 508 });
  });

  it('serialize that completes the source: the message goes out before the end, instead of being lost uncounted', async () => {
    const subject = new Subject<MessageEvent>();
    const serialize = (data: unknown) => {
      subject.complete();
      return JSON.stringify(data);
    };
    const { sink, closes } = run(subject, { serialize });
    subject.next({ data: { n: 1 } });
    await tick();
    expect(closes.map((c) => c.reason)).toEqual(['complete']);
    expect(sink.text).toBe('data: {"n":1}\n\n');
    expect(closes[0]!.stats.events).toBe(1);
  });

  it('a source that unsubscribes its own subscriber: the stream ends as complete, instead of staying open with no source', async () => {
    const source = new Observable<MessageEvent>((subscriber) => {
      subscriber.next({ data: 'a' });
      subscriber.unsubscribe();
    });
    const { sink, closes } = run(source);
    await tick();
    expect(closes.map((c) => c.reason)).toEqual(['complete']);
    expect(sink.text).toBe('data: a\n\n');
    expect(sink.ended).toBe(true);
  });
});

describe("a source that ends on its sink's signal", () => {
  it('ends with its client, what waits for it dropped, though its abort listener came before the stream', () => {
    const sink = new MemorySink();
    const subject = new Subject<MessageEvent>();
    // Added before the stream listens, so it runs first when the client leaves.
    sink.signal.addEventListener('abort', () => subject.complete());
    const reasons: CloseReason[] = [];
    const stream = streamEvents(subject, sink, {
      heartbeat: false,
      onClose: (reason) => reasons.push(reason),
    });
    // Queued for the end of the tick, which the client does not wait for.
    subject.next({ data: 'a' });
    subject.next({ data: 'b' });
    sink.disconnect();
    expect(reasons).toEqual(['client']);
    expect(stream.stats).toMatchObject({ events: 0, dropped: 2 });
  });
});
