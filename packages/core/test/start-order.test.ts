import { getEventListeners } from 'node:events';
import { Observable, ReplaySubject, Subject, share, startWith, take } from 'rxjs';
import { describe, expect, it } from 'vitest';
import {
  SOURCE_GAP_EVENT,
  SUBSCRIBER_GAP_EVENT,
  type WithSubscriberGapEvent,
} from '../src/http/source-gap.js';
import {
  type CloseReason,
  heartbeatCount,
  type MessageEvent,
  StreamGroup,
  type StreamMetrics,
  type StreamOptions,
  streamEvents,
} from '../src/index.js';
import { MemorySink } from '../src/testing/index.js';

/** A MemorySink that notes, as a line each, when its headers and chunks came. */
class OrderedSink extends MemorySink {
  readonly order: string[] = [];
  override open(headers: Readonly<Record<string, string>>) {
    this.order.push('headers');
    super.open(headers);
  }
  override write(chunk: Uint8Array) {
    this.order.push(new TextDecoder().decode(chunk));
    return super.write(chunk);
  }
}

/** Streams `source`, noting its closes and what its metrics hooks were told (`opened`, `dropped`, `closed`). */
function run(
  source: Observable<MessageEvent>,
  options: Omit<StreamOptions, 'metrics'> & { metrics?: Partial<StreamMetrics> } = {},
  sink = new OrderedSink(),
) {
  const closes: CloseReason[] = [];
  const calls: string[] = [];
  const errors: unknown[] = [];
  const stream = streamEvents(source, sink, {
    heartbeat: false,
    onError: (error) => errors.push(error),
    onClose: (reason) => closes.push(reason),
    ...options,
    metrics: {
      opened: () => calls.push('opened'),
      wrote: () => {},
      heartbeat: () => {},
      dropped: (count) => calls.push(`dropped ${count}`),
      closed: (reason) => calls.push(`closed ${reason}`),
      ...options.metrics,
    },
  });
  return { stream, sink, closes, calls, errors };
}

/** An Observable over `subject` that sends `first` as it is subscribed. */
function sendingAtOnce(subject: Subject<MessageEvent>, first: MessageEvent): Observable<MessageEvent> {
  return new Observable<MessageEvent>((subscriber) => {
    const subscription = subject.subscribe(subscriber);
    subject.next(first);
    return subscription;
  });
}

describe('an Observable subscribed before its stream opens', () => {
  it('sends what a metrics hook emits into it while it opens after the message that opened it', async () => {
    const subject = new Subject<MessageEvent>();
    let opened = 0;
    const { sink, errors } = run(sendingAtOnce(subject, { data: 'a' }), {
      metrics: {
        opened: () => {
          opened++;
          subject.next({ data: 'b' });
        },
      },
    });
    await Promise.resolve();
    expect(sink.text).toBe('data: a\n\ndata: b\n\n');
    expect([opened, errors]).toEqual([1, []]);
  });

  it('sends the message that opened it before a failure a hook sends while it opens', () => {
    const subject = new Subject<MessageEvent>();
    const failure = new Error('hook');
    const { sink, closes, errors } = run(sendingAtOnce(subject, { data: 'a' }), {
      retry: 5,
      metrics: { wrote: () => subject.error(failure) },
    });
    expect(sink.order).toEqual(['headers', 'retry: 5\n\n', 'data: a\n\n']);
    expect([closes, errors]).toEqual([['error'], [failure]]);
  });

  it('sends a gap event of its own that opened it before what a hook sends while it opens', async () => {
    const subject = new Subject<MessageEvent>();
    const own = (lastEventId: string | null): MessageEvent => ({ type: 'gap', data: String(lastEventId) });
    const source = Object.assign(
      new Observable<MessageEvent>((subscriber) => {
        const subscription = subject.subscribe(subscriber);
        (subscriber as WithSubscriberGapEvent)[SUBSCRIBER_GAP_EVENT]?.(own);
        return subscription;
      }),
      { [SOURCE_GAP_EVENT]: own },
    );
    const { sink, errors } = run(source, {
      retry: 5,
      metrics: { opened: () => subject.next({ id: '1', data: 'b' }) },
    });
    await Promise.resolve();
    expect(sink.order).toEqual(['headers', 'retry: 5\n\n', 'event: gap\ndata: null\n\nid: 1\ndata: b\n\n']);
    expect(errors).toEqual([]);
  });

  it('sends a gap event of its own a hook sends while it opens after what the hook sent before it', async () => {
    const subject = new Subject<MessageEvent>();
    let subscriber: WithSubscriberGapEvent | undefined;
    const own = (lastEventId: string | null): MessageEvent => ({ type: 'gap', data: String(lastEventId) });
    const source = Object.assign(
      new Observable<MessageEvent>((s) => {
        subscriber = s as WithSubscriberGapEvent;
        const subscription = subject.subscribe(s);
        subject.next({ id: '1', data: 'a' });
        return subscription;
      }),
      { [SOURCE_GAP_EVENT]: own },
    );
    const { sink } = run(source, {
      metrics: {
        opened: () => {
          subject.next({ id: '2', data: 'b' });
          subscriber?.[SUBSCRIBER_GAP_EVENT]?.(own);
        },
      },
    });
    await Promise.resolve();
    expect(sink.text).toBe('id: 1\ndata: a\n\nid: 2\ndata: b\n\nevent: gap\ndata: 2\n\n');
  });

  it('sends the message that opened it before the end a hook makes by unsubscribing its subscriber', () => {
    let subscriber: { unsubscribe(): void } | undefined;
    const source = new Observable<MessageEvent>((s) => {
      subscriber = s;
      s.next({ data: 'a' });
    });
    const { sink, closes, stream } = run(source, {
      retry: 5,
      metrics: { wrote: () => subscriber?.unsubscribe() },
    });
    expect([sink.order, sink.ended, closes, stream.stats.events]).toEqual([
      ['headers', 'retry: 5\n\n', 'data: a\n\n'],
      true,
      ['complete'],
      1,
    ]);
    // So does a message whose serialize unsubscribes it, once the stream is open.
    const subject = new Subject<MessageEvent>();
    const later = run(
      new Observable<MessageEvent>((s) => {
        subscriber = s;
        return subject.subscribe(s);
      }),
      {
        serialize: (data) => {
          subscriber?.unsubscribe();
          return JSON.stringify(data);
        },
      },
    );
    subject.next({ data: ['b'] });
    expect([later.sink.order, later.closes, later.stream.stats.events]).toEqual([
      ['headers', 'data: ["b"]\n\n'],
      ['complete'],
      1,
    ]);
  });

  it('writes the headers and the retry hint before a message a hook sends as subscribe() returns', () => {
    const subject = new Subject<MessageEvent>();
    const data = 'x'.repeat(70_000);
    const { sink } = run(subject, {
      retry: 5,
      maxQueueBytes: 1024 * 1024,
      metrics: { opened: () => subject.next({ data }) },
    });
    expect(sink.order.map((line) => line.slice(0, 9))).toEqual(['headers', 'retry: 5\n', 'data: xxx']);
  });

  it('lets go of a source whose client left during subscribe(): counted once, torn down once, nothing written', () => {
    const sink = new OrderedSink();
    const group = new StreamGroup();
    let tornDown = 0;
    const source = new Observable<MessageEvent>((subscriber) => {
      sink.disconnect();
      subscriber.next({ data: 'late' });
      return () => tornDown++;
    });
    const { closes, calls } = run(source, { group, heartbeat: 1000, retry: 5 }, sink);
    expect([sink.order, closes, calls, tornDown]).toEqual([[], ['client'], ['opened', 'closed client'], 1]);
    expect([group.size, heartbeatCount()]).toEqual([0, 0]);
  });

  it('closes once when its client left during subscribe() and the opened hook that counts it closes its group', () => {
    const sink = new OrderedSink();
    const group = new StreamGroup();
    let tornDown = 0;
    const source = new Observable<MessageEvent>(() => {
      sink.disconnect();
      return () => tornDown++;
    });
    const { closes } = run(source, { group, metrics: { opened: () => void group.close() } }, sink);
    // The hook ended the stream while its end counted it opened: that end is the one, not a second.
    expect([closes.length, tornDown, group.size]).toEqual([1, 1, 0]);
  });

  it('ends, as completed, a source that unsubscribes its own subscriber in subscribe() before any message', () => {
    const group = new StreamGroup();
    const source = new Observable<MessageEvent>((subscriber) => subscriber.unsubscribe());
    const { sink, closes, calls } = run(source, { group, retry: 5 });
    // Nothing more can come from it: left open, the client would wait on a stream with no source.
    expect([sink.order, sink.ended, closes, calls]).toEqual([
      ['headers', 'retry: 5\n\n'],
      true,
      ['complete'],
      ['opened', 'closed complete'],
    ]);
    expect(group.size).toBe(0);
  });

  it('turns away, unheard, a source that began a shutdown while it was subscribed', async () => {
    const group = new StreamGroup();
    let tornDown = 0;
    let closed: Promise<void> | undefined;
    const source = new Observable<MessageEvent>((subscriber) => {
      closed = group.close({ retry: 7 });
      subscriber.next({ data: 'a' });
      return () => tornDown++;
    });
    const { sink, closes, calls } = run(source, { group, heartbeat: 1000 });
    expect([sink.order, sink.ended, closes, calls, tornDown]).toEqual([
      ['headers', 'retry: 7\n\n'],
      true,
      ['shutdown'],
      // The message it sent reached no client: dropped.
      ['opened', 'dropped 1', 'closed shutdown'],
      1,
    ]);
    expect([sink.headers?.connection, group.size, heartbeatCount()]).toEqual(['close', 0, 0]);
    // The shutdown waited for it, and is over once it was turned away.
    await closed;
    expect(group.closing).toBe(false);
  });

  it('leaves no member in its group once refused: a shutdown after it has nothing to wait for', async () => {
    const group = new StreamGroup();
    const failing = new Observable<MessageEvent>((subscriber) => subscriber.error(new Error('not found')));
    expect(() => run(failing, { group, heartbeat: 1000 })).toThrow('not found');
    let closed = false;
    void group.close().then(() => {
      closed = true;
    });
    await Promise.resolve();
    expect([closed, group.size, heartbeatCount()]).toEqual([true, 0, 0]);
  });

  it('is refused with the first failure of a hand-written source that fails twice at once', () => {
    const first = new Error('first');
    const twice = new Observable<MessageEvent>((subscriber) => {
      subscriber.error(first);
      subscriber.error(new Error('second'));
    });
    // Its first failure ended it: a later one breaks the Observable contract, and is not the answer.
    expect(() => run(twice)).toThrow(first);
  });

  it('leaves no abort listener on its signal once refused: nothing holds the stream after it', () => {
    const sink = new OrderedSink();
    const failing = new Observable<MessageEvent>((subscriber) => subscriber.error(new Error('not found')));
    expect(() => run(failing, {}, sink)).toThrow('not found');
    // The listener was added to hear a client that leaves while subscribed; a refused stream never
    // opens, so nothing may keep it (and its options) reachable from the request's signal.
    expect(getEventListeners(sink.signal, 'abort')).toHaveLength(0);
  });

  it("never subscribes a source whose sink's onClose() finds its client gone at once", () => {
    class GoneSink extends OrderedSink {
      onClose(listener: () => void) {
        listener();
        return true;
      }
    }
    const sink = new GoneSink();
    const group = new StreamGroup();
    let subscribed = 0;
    const source = new Observable<MessageEvent>((subscriber) => {
      subscribed++;
      subscriber.next({ data: 'late' });
    });
    const { closes, calls } = run(source, { group, heartbeat: 1000 }, sink);
    // The client is gone before the subscribe: the source must not run its side effects for nobody.
    expect([sink.order, closes, calls, subscribed]).toEqual([[], ['client'], ['opened', 'closed client'], 0]);
    expect([group.size, heartbeatCount()]).toEqual([0, 0]);
  });

  it('writes nothing and joins no group when its client leaves while the opened hook runs', () => {
    const sink = new OrderedSink();
    const group = new StreamGroup();
    let tornDown = 0;
    const source = new Observable<MessageEvent>((subscriber) => {
      subscriber.next({ data: 'a' });
      return () => tornDown++;
    });
    const { closes, errors } = run(
      source,
      { group, heartbeat: 1000, metrics: { opened: () => sink.disconnect() } },
      sink,
    );
    // The stream ended inside the hook: opening on after it would send headers to a client that is
    // gone and leave a member in the group that no end will ever remove.
    expect([sink.order, closes, errors, tornDown]).toEqual([[], ['client'], [], 1]);
    expect([group.size, heartbeatCount()]).toEqual([0, 0]);
  });

  it.each<[string, (sink: OrderedSink, group: StreamGroup) => Partial<StreamMetrics>, CloseReason]>([
    [
      'its client leaves while the opened hook runs',
      (sink) => ({ opened: () => sink.disconnect() }),
      'client',
    ],
    ['the opened hook begins a shutdown', (_, group) => ({ opened: () => void group.close() }), 'shutdown'],
  ])('counts the message that opened it as dropped, before its close, when %s', (_, hooks, reason) => {
    const sink = new OrderedSink();
    const group = new StreamGroup();
    const source = new Observable<MessageEvent>((subscriber) => {
      subscriber.next({ data: 'a' });
    });
    const { stream, calls } = run(source, { group, metrics: hooks(sink, group) }, sink);
    // Sent by the source and taken by no client: lost, as a message in hand at any other end.
    expect(sink.text).toBe('');
    // (The hook given takes the place of the one that notes `opened`.)
    expect(calls).toEqual(['dropped 1', `closed ${reason}`]);
    expect(stream.stats.dropped).toBe(1);
  });

  it('ends a stream whose sink fails to open, counted once, its source torn down once', () => {
    const sink = new OrderedSink();
    sink.open = () => {
      throw new Error('no headers');
    };
    let tornDown = 0;
    const subject = new Subject<MessageEvent>();
    const source = new Observable<MessageEvent>((subscriber) => {
      const subscription = subject.subscribe(subscriber);
      subject.next({ data: 'a' });
      subscription.add(() => tornDown++);
      return subscription;
    });
    const { closes, calls } = run(source, {}, sink);
    expect([sink.order, sink.destroyed, closes, calls, tornDown]).toEqual([
      [],
      true,
      ['error'],
      // The message it opened with reached no client: dropped.
      ['opened', 'dropped 1', 'closed error'],
      1,
    ]);
    expect(subject.observed).toBe(false);
  });

  it('streams take(1), startWith, a shared Subject and a replay of a failed one', async () => {
    const one = run(new Subject<MessageEvent>().pipe(startWith({ data: 'a' }), take(1)));
    expect([one.sink.order, one.closes]).toEqual([['headers', 'data: a\n\n'], ['complete']]);
    const subject = new Subject<MessageEvent>();
    const shared = subject.pipe(share());
    const [x, y] = [run(shared), run(shared)];
    subject.next({ data: 's' });
    await Promise.resolve();
    expect([x.sink.text, y.sink.text]).toEqual(['data: s\n\n', 'data: s\n\n']);
    const replay = new ReplaySubject<MessageEvent>();
    replay.next({ data: 'r' });
    replay.error(new Error('gone'));
    const replayed = run(replay);
    expect([replayed.sink.order, replayed.closes]).toEqual([['headers', 'data: r\n\n'], ['error']]);
    // Without a message before it, the replayed failure refuses the stream.
    const failed = new ReplaySubject<MessageEvent>();
    failed.error(new Error('gone'));
    expect(() => run(failed)).toThrow('gone');
  });
});
