import { NEVER, Observable, Subject } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { gc } from '../../../test/support/gc.js';
import {
  type AbortableSink,
  allStreams,
  CUT_SHORT,
  type EventSourceLike,
  HandlerSetup,
  type MessageEvent,
  resolveStreamOptions,
  StreamGroup,
  type StreamMetrics,
  type StreamOptions,
  streamEvents,
} from '../src/index.js';
import { MemorySink } from '../src/testing/index.js';

const noMetrics: StreamMetrics = {
  opened: () => {},
  wrote: () => {},
  heartbeat: () => {},
  dropped: () => {},
  closed: () => {},
};

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Whether `ref` is still alive after full collections (with a tick between, for finalizers). */
async function survives(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    gc();
    await tick();
  }
  return ref.deref() !== undefined;
}

/** A promise that never settles while the test holds it: a quiet topic, a lock, a long poll. */
function pending<T>(): { promise: Promise<T>; settle: (value: T) => void; fail: (error: unknown) => void } {
  let settle!: (value: T) => void;
  let fail!: (error: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  return { promise, settle, fail };
}

/** Closes `group` with a 1 s deadline on fake timers, and tells how the handler's `settled` ended. */
async function cutShortByClose(group: StreamGroup, settled: Promise<unknown>): Promise<unknown> {
  const closed = group.close({ deadline: 1000 });
  await vi.advanceTimersByTimeAsync(1000);
  await closed;
  await vi.advanceTimersByTimeAsync(0);
  return Promise.race([settled, 'still pending']);
}

/**
 * Streams `source` to a memory sink, then the client leaves; returns weak references to the
 * stream and its sink, so that nothing of them stays reachable from this function.
 */
async function streamAndLeave(source: unknown, options: StreamOptions = {}) {
  const sink = new MemorySink();
  const stream = streamEvents(source as EventSourceLike<MessageEvent<unknown>>, sink, {
    heartbeat: false,
    ...options,
  });
  await tick();
  sink.disconnect();
  await tick();
  return { stream: new WeakRef(stream), sink: new WeakRef(sink), reason: stream.closeReason };
}

describe('a closed stream is garbage', () => {
  it("while its iterator's pull waits on a promise that lives on", async () => {
    const quiet = pending<void>();
    async function* events(): AsyncGenerator<MessageEvent> {
      yield { data: 'first' };
      await quiet.promise;
      yield { data: 'never' };
    }
    const { stream, sink, reason } = await streamAndLeave(events());
    expect(reason).toBe('client');
    expect(await survives(stream)).toBe(false);
    expect(await survives(sink)).toBe(false);
    quiet.settle();
  });

  it("while its iterator's pull and return() never settle", async () => {
    const quiet = pending<IteratorResult<MessageEvent>>();
    const iterator = {
      next: () => quiet.promise,
      return: () => new Promise<IteratorResult<MessageEvent>>(() => {}),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    const { stream, reason } = await streamAndLeave(iterator);
    expect(reason).toBe('client');
    expect(await survives(stream)).toBe(false);
    quiet.settle({ done: false, value: { data: 'late' } });
  });
});

describe('a closed stream is garbage while the group that closed it lives on', () => {
  it('once its connection flushed, though the group never closes again', async () => {
    const group = new StreamGroup();
    const stream = new WeakRef(streamEvents(NEVER, new MemorySink(), { heartbeat: false, group }));
    await group.close();
    expect(stream.deref()?.closeReason).toBe('shutdown');
    expect(await survives(stream)).toBe(false);
    expect(group.size).toBe(0);
  });

  it('once a stream that ended by itself flushed, though the group never closes', async () => {
    const group = new StreamGroup();
    const endAndFlush = () => {
      const done = new Subject<MessageEvent>();
      const sink = new MemorySink();
      const stream = streamEvents(done, sink, { heartbeat: false, group, stallTimeout: false });
      // The end leaves bytes in the transport: the group holds the stream until they are out.
      sink.full = true;
      done.next({ data: 'a' });
      done.complete();
      sink.release();
      return new WeakRef(stream);
    };
    const stream = endAndFlush();
    expect(await survives(stream)).toBe(false);
  });
});

describe('a group whose last stream ended', () => {
  it('is garbage, though allStreams counted it while it held a stream', async () => {
    const useOnce = () => {
      const group = new StreamGroup();
      const sink = new MemorySink();
      streamEvents(NEVER, sink, { heartbeat: false, group });
      sink.disconnect();
      return new WeakRef(group);
    };
    const group = useOnce();
    expect(await survives(group)).toBe(false);
  });
});

describe('a closed stream is garbage while a promise of user code is still pending', () => {
  const cases: [string, (wait: () => Promise<void>) => [unknown, StreamOptions]][] = [
    ['an async onClose', (wait) => [NEVER, { onClose: wait }]],
    ['an async metrics hook', (wait) => [NEVER, { metrics: { ...noMetrics, closed: wait } }]],
    ["an Observable's async teardown", (wait) => [new Observable<MessageEvent>(() => wait), {}]],
    [
      "an iterator's return()",
      (wait) => [
        {
          next: () => new Promise<IteratorResult<MessageEvent>>(() => {}),
          return: () => wait().then(() => ({ done: true, value: undefined })),
          [Symbol.asyncIterator]() {
            return this;
          },
        },
        {},
      ],
    ],
  ];
  for (const [label, make] of cases) {
    it(`${label}, and its rejection is still reported`, async () => {
      const slow = pending<void>();
      const errors: unknown[] = [];
      const [source, options] = make(() => slow.promise);
      const { stream, reason } = await streamAndLeave(source, { ...options, onError: (e) => errors.push(e) });
      expect(reason).toBe('client');
      expect(await survives(stream)).toBe(false);
      slow.fail(new Error('late'));
      await tick();
      expect(errors.map(String)).toEqual(['Error: late']);
    });
  }
});

describe('a closed stream is garbage while its source lives on', () => {
  it('when an Observable keeps its subscriber after the teardown, as rxjs lets go of its destination', async () => {
    const listeners = new EventTarget();
    const source = new Observable<MessageEvent>((subscriber) => {
      // A listener never removed: the source's own leak, which must not hold the stream as well.
      listeners.addEventListener('message', () => subscriber.next({ data: 'x' }));
    });
    const { stream, sink, reason } = await streamAndLeave(source);
    expect(reason).toBe('client');
    expect(await survives(stream)).toBe(false);
    expect(await survives(sink)).toBe(false);
    listeners.dispatchEvent(new Event('message'));
  });
});

/** A MemorySink as a transport's own is, for a handler still setting up: its client may leave. */
class LeavingSink extends MemorySink implements AbortableSink {
  closed = false;
  #onClose: (() => void) | undefined;
  onClose(listener: () => void): boolean {
    if (this.closed) return false;
    this.#onClose = listener;
    return true;
  }
  abort(): void {}
  leave(): void {
    this.closed = true;
    this.disconnect();
    this.#onClose?.();
  }
}

describe('a handler that never settles', () => {
  /** Its client answered by another writer: awaited, not cut short, yet of no use to its groups. */
  class AnsweredSink extends LeavingSink {
    readonly answered = true;
  }

  it.each([
    ['with its connection', LeavingSink],
    ['though another writer answered its response', AnsweredSink],
  ])('is let go by its groups once its client left, %s', async (_, Sink) => {
    const group = new StreamGroup();
    const server = new StreamGroup();
    const setUp = () => {
      const sink = new Sink();
      const setup = new HandlerSetup(
        sink,
        resolveStreamOptions({ group, heartbeat: false }),
        () => {},
        server,
      );
      void setup.settle(new Promise<never>(() => {}));
      sink.leave();
      return new WeakRef(sink);
    };
    const sink = setUp();
    expect(await survives(sink)).toBe(false);
  });
});

/** A handler's setup on a {@link LeavingSink}, and the reasons its streams close with. */
function closeCountingSetup() {
  const reasons: string[] = [];
  const sink = new LeavingSink();
  const options = resolveStreamOptions({ heartbeat: false, onClose: (reason) => reasons.push(reason) });
  return { sink, setup: new HandlerSetup(sink, options, () => {}, undefined), reasons };
}

describe("a handler's setup", () => {
  it("hands the route's onError a result that is no source, when a shutdown turns its client away", () => {
    const errors: unknown[] = [];
    const reported: unknown[] = [];
    const options = resolveStreamOptions({ heartbeat: false, onError: (error) => errors.push(error) });
    const setup = new HandlerSetup(new LeavingSink(), options, (error) => reported.push(error), undefined);
    setup.start('not a source' as unknown as EventSourceLike<MessageEvent>, true);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/not a source|got a string/i);
    expect(reported).toEqual([]);
  });

  it('counts as turned away a client that left after the shutdown aborted its handler', () => {
    const { sink, setup, reasons } = closeCountingSetup();
    setup.close();
    sink.leave();
    setup.turnAway();
    // The shutdown came first: the client's close after it does not make this a stream it ended.
    expect(reasons).toEqual(['shutdown']);
  });

  it('answers a HEAD as turned away when its client left after the shutdown aborted its handler', () => {
    const { sink, setup, reasons } = closeCountingSetup();
    setup.close();
    sink.leave();
    setup.answerHead(false);
    // As its GET: the shutdown came first, the client's close after it does not make this its own.
    expect(reasons).toEqual(['shutdown']);
  });

  it("turns away a client whose handler failed with its signal's abort, when the shutdown aborted it", () => {
    class AbortingSink extends LeavingSink {
      override abort(): void {
        this.disconnect();
      }
    }
    const reasons: string[] = [];
    const sink = new AbortingSink();
    const options = resolveStreamOptions({ heartbeat: false, onClose: (reason) => reasons.push(reason) });
    const setup = new HandlerSetup(sink, options, () => {}, undefined);
    setup.close();
    // The handler gave its signal to a fetch: it fails with the abort the shutdown made.
    expect(setup.failed(sink.signal.reason)).toBeUndefined();
    expect(reasons).toEqual(['shutdown']);
    expect(sink.headers).toBeDefined();
  });

  it('leaves its groups once its handler settled: their later close neither aborts nor destroys its connection', async () => {
    const group = new StreamGroup();
    const server = new StreamGroup();
    const sink = new LeavingSink();
    const aborted = vi.spyOn(sink, 'abort');
    const destroyed = vi.spyOn(sink, 'destroy');
    const setup = new HandlerSetup(sink, resolveStreamOptions({ group, heartbeat: false }), () => {}, server);
    expect(await setup.settle(Promise.resolve('settled'))).toBe('settled');
    await Promise.all([group.close({ deadline: 1 }), server.close({ deadline: 1 })]);
    expect(aborted).not.toHaveBeenCalled();
    expect(destroyed).not.toHaveBeenCalled();
  });

  it("counts in no gauge of its group while pending, yet the group's close cuts it short at its deadline", async () => {
    vi.useFakeTimers();
    try {
      const group = new StreamGroup();
      const before = allStreams.size;
      const setup = new HandlerSetup(
        new LeavingSink(),
        resolveStreamOptions({ group, heartbeat: false }),
        () => {},
        undefined,
      );
      const settled = setup.settle(new Promise<never>(() => {}));
      expect([group.size, allStreams.size]).toEqual([0, before]);
      expect(await cutShortByClose(group, settled)).toBe(CUT_SHORT);
      expect([group.size, allStreams.size]).toEqual([0, before]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("is one of its server's streams while pending, whatever its route's group: the server's close cuts it short", async () => {
    vi.useFakeTimers();
    try {
      const server = new StreamGroup();
      const setup = new HandlerSetup(
        new LeavingSink(),
        resolveStreamOptions({ group: new StreamGroup(), heartbeat: false }),
        () => {},
        server,
      );
      const settled = setup.settle(new Promise<never>(() => {}));
      expect(await cutShortByClose(server, settled)).toBe(CUT_SHORT);
    } finally {
      vi.useRealTimers();
    }
  });

  it("hears no failure of a handler cut short that then fails with its signal's abort, and any other one", async () => {
    const heard = async (failure: (sink: LeavingSink) => unknown) => {
      const errors: unknown[] = [];
      const sink = new LeavingSink();
      const options = resolveStreamOptions({ heartbeat: false, onError: (error) => errors.push(error) });
      const setup = new HandlerSetup(sink, options, (error) => errors.push(error), undefined);
      const handler = pending<never>();
      const settled = setup.settle(handler.promise);
      sink.leave();
      expect(await settled).toBe(CUT_SHORT);
      handler.fail(failure(sink));
      await tick();
      return errors.map(String);
    };
    // The handler gave its signal to a fetch: that it failed with the abort is the client's leaving.
    expect(await heard((sink) => sink.signal.reason)).toEqual([]);
    expect(await heard(() => new Error('bug'))).toEqual(['Error: bug']);
  });

  it("throws a handler's failure for the framework, and reports a failed hook that throws or rejects", async () => {
    const hookFailure = new Error('hook failed');
    for (const failed of [
      () => {
        throw hookFailure;
      },
      () => Promise.reject(hookFailure),
    ]) {
      const errors: unknown[] = [];
      const options = resolveStreamOptions({
        heartbeat: false,
        metrics: { ...noMetrics, failed },
        onError: (error) => errors.push(error),
      });
      const setup = new HandlerSetup(new LeavingSink(), options, (error) => errors.push(error), undefined);
      const failure = new Error('handler failed');
      expect(() => setup.failed(failure)).toThrow(failure);
      await tick();
      expect(errors).toEqual([hookFailure]);
    }
  });

  it('turns its client away once a shutdown aborted it, though its caller saw no close begin', () => {
    const { setup, reasons } = closeCountingSetup();
    setup.close();
    let subscribed = false;
    setup.start(
      new Observable<MessageEvent>(() => {
        subscribed = true;
      }),
    );
    expect([reasons, subscribed]).toEqual([['shutdown'], false]);
  });

  it('keeps the close of a client that left before a shutdown reached its handler', () => {
    const { sink, setup, reasons } = closeCountingSetup();
    sink.leave();
    setup.close();
    setup.turnAway();
    expect(reasons).toEqual(['client']);
  });

  it('is cut short once where the deadlines of two closes reach it: the connection is left to its answer', async () => {
    const sink = new LeavingSink();
    const setup = new HandlerSetup(sink, resolveStreamOptions({ heartbeat: false }), () => {}, undefined);
    const settled = setup.settle(new Promise<never>(() => {}));
    // The server's close and the route group's both hold it: the first deadline cuts it short, and
    // the transport turns its client away on that connection.
    setup.destroy();
    expect(await settled).toBe(CUT_SHORT);
    setup.destroy();
    expect(sink.destroyed).toBe(false);
  });

  it('awaits a handler whose response another writer answered, though its client left', async () => {
    class AnsweredSink extends LeavingSink {
      readonly answered = true;
    }
    const sink = new AnsweredSink();
    const setup = new HandlerSetup(sink, resolveStreamOptions({ heartbeat: false }), () => {}, undefined);
    let fail!: (error: unknown) => void;
    const settled = setup.settle(
      new Promise<never>((_, reject) => {
        fail = reject;
      }),
    );
    sink.leave();
    // A timeout in front of the route answered: the handler's failure is still the transport's to hand on.
    const failure = new Error('handler failed');
    fail(failure);
    await expect(settled).rejects.toBe(failure);
  });
});
