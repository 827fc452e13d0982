import { getEventListeners } from 'node:events';
import { from, map, NEVER, Observable, Subject, scan } from 'rxjs';
import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import { createChannel, memoryEngine } from '../channel/index.js';
import { SOURCE_GAP_EVENT, SUBSCRIBER_GAP_EVENT, type WithSubscriberGapEvent } from '../http/source-gap.js';
import {
  allStreams,
  answerHeadEventStream,
  type CloseReason,
  checkShutdownOptions,
  closeEach,
  type EventSourceLike,
  type EventStream,
  formatEvent,
  heartbeatCount,
  type MessageEvent,
  overStreamOptions,
  processWide,
  resolveStreamOptions,
  type ShutdownOptions,
  SOURCE_HEADERS,
  SOURCE_OPENS_FIRST,
  SseRangeError,
  StreamGroup,
  type StreamOptions,
  serverStreams,
  streamEvents,
  type TypedMessageEvent,
  turnAwayEventStream,
} from '../index.js';
import { MemorySink } from '../testing/index.js';

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function run(
  source: EventSourceLike<MessageEvent<unknown>>,
  options: Parameters<typeof streamEvents>[2] = {},
) {
  const sink = new MemorySink();
  const reasons: CloseReason[] = [];
  const stream: EventStream = streamEvents(source, sink, {
    heartbeat: false,
    ...options,
    onClose: (reason) => reasons.push(reason),
  });
  return { sink, stream, reasons };
}

/** `source` with a gap event of `event: gap` and `data: after <the client's last id>`. */
function withGapEvent(source: Observable<MessageEvent>) {
  return Object.assign(new Observable<MessageEvent>((subscriber) => source.subscribe(subscriber)), {
    [SOURCE_GAP_EVENT]: (lastEventId: string | null) => ({ type: 'gap', data: `after ${lastEventId}` }),
  });
}

/**
 * A gap event factory whose events carry 200 bytes of detail beside `lastEventId` and `reason`: larger
 * than the small queues of these tests, so the stream sends its small notice in their place.
 */
const largeGap =
  (reason: string, type = 'gap') =>
  (lastEventId: string | null): MessageEvent => ({
    type,
    data: { lastEventId, reason, detail: 'x'.repeat(200) },
  });

/** A gap event of a source's own, as a channel's for events its store lost: `event: own`. */
const own = (lastEventId: string | null): MessageEvent => ({ type: 'own', data: `own ${lastEventId}` });

/**
 * A Subject as a source with a gap event (see {@link withGapEvent}), and `ownGap()`, which hands its
 * stream a gap event of the source's own ({@link own}, or `event`) and says whether it was placed.
 */
function gapSource() {
  const subject = new Subject<MessageEvent>();
  let subscriber: WithSubscriberGapEvent | undefined;
  const source = withGapEvent(
    new Observable<MessageEvent>((s) => {
      subscriber = s as WithSubscriberGapEvent;
      return subject.subscribe(s);
    }),
  );
  const ownGap = (event = own) => subscriber?.[SUBSCRIBER_GAP_EVENT]?.(event);
  return { subject, source, ownGap };
}

/**
 * A Subject as a source whose gap event factory cannot make one: it throws, or returns nothing
 * against its type (`nothing`); `made()` counts its calls.
 */
function gapFactoryFails(nothing: boolean) {
  const subject = new Subject<MessageEvent>();
  let made = 0;
  const source = Object.assign(subject.asObservable(), {
    [SOURCE_GAP_EVENT]: () => {
      made++;
      if (nothing) return undefined as never;
      throw new Error('no gap event');
    },
  });
  return { subject, source, made: () => made };
}

/** Writes `w` to a transport that is full then: what `subject` sends next is queued. */
async function fullAfterW(sink: MemorySink, subject: Subject<MessageEvent>) {
  sink.full = true;
  subject.next({ id: 'w', data: '' });
  await Promise.resolve();
}

/**
 * A `drop-oldest` stream under `cap` with a gap event: `w` is written to a transport that is full
 * then, and e0..e6 follow, 13 bytes each but the last (25 bytes), whose room and the gap event's
 * (26) are taken from the oldest.
 */
async function oldestDropped(cap: number, options: StreamOptions = {}) {
  const subject = new Subject<MessageEvent>();
  const running = run(withGapEvent(subject), { onOverflow: 'drop-oldest', maxQueueBytes: cap, ...options });
  await fullAfterW(running.sink, subject);
  for (let i = 0; i < 6; i++) subject.next({ id: `e${i}`, data: '' });
  subject.next({ id: 'e6', data: 'x'.repeat(10) });
  return running;
}

/** The first `count` events `{ data: '00000' }`, `{ data: '00001' }`, ... as written: 13 bytes each. */
const events = (count: number) =>
  Array.from({ length: count }, (_, i) => `data: ${String(i).padStart(5, '0')}\n\n`).join('');

/** A sink whose transport throws on the chunk that starts with `text`, and takes every other. */
function throwingOn(text: string): MemorySink {
  const sink = new MemorySink();
  const write = sink.write.bind(sink);
  sink.write = (chunk) => {
    if (new TextDecoder().decode(chunk).startsWith(text)) throw new Error('socket gone');
    return write(chunk);
  };
  return sink;
}

/** Metrics hooks that note each call as a line: `wrote 1 9`, `closed client`. */
function recordMetrics() {
  const calls: string[] = [];
  const metrics = {
    opened: () => calls.push('opened'),
    wrote: (events: number, bytes: number) => calls.push(`wrote ${events} ${bytes}`),
    heartbeat: () => calls.push('heartbeat'),
    dropped: (count: number) => calls.push(`dropped ${count}`),
    closed: (reason: CloseReason) => calls.push(`closed ${reason}`),
  };
  return { calls, metrics };
}

describe('streamEvents', () => {
  it('writes everything emitted in one tick as one chunk, in that same tick', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink } = run(subject);
    subject.next({ data: 'a' });
    subject.next({ data: 'b' });
    expect(sink.chunks).toHaveLength(0);
    await Promise.resolve();
    expect(sink.chunks).toHaveLength(1);
    expect(sink.text).toBe('data: a\n\ndata: b\n\n');
  });

  it('flushes every stream a shared source wrote to in one microtask per tick, not one per stream', async () => {
    // A Subject shared by thousands of streams must cost one microtask per emission, not thousands.
    const subject = new Subject<MessageEvent>();
    const runs = Array.from({ length: 5 }, () => run(subject));
    const microtasks = vi.spyOn(globalThis, 'queueMicrotask');
    try {
      subject.next({ data: 'a' });
      subject.next({ data: 'b' });
      // The encoder's cache queues one of its own to forget what it formatted: those are not flushes.
      const flushes = microtasks.mock.calls.filter(([callback]) => callback.name === 'flushPending');
      expect(flushes).toHaveLength(1);
    } finally {
      microtasks.mockRestore();
    }
    await Promise.resolve();
    for (const { sink } of runs)
      expect([sink.chunks.length, sink.text]).toEqual([1, 'data: a\n\ndata: b\n\n']);
    for (const { stream } of runs) stream.close();
  });

  it('writes a tick that emits more than 64 KiB as it goes, in chunks of about 64 KiB', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink } = run(subject, { maxQueueBytes: 1024 * 1024 });
    const data = 'x'.repeat(1000); // 1,008 bytes per event
    for (let i = 0; i < 200; i++) subject.next({ data });
    // Before the tick ends, the first 64 KiB chunks have gone out already...
    const sizes = sink.chunks.map((c) => c.length);
    expect(sizes).toEqual([66_528, 66_528, 66_528]);
    // ...and the rest follows in the same tick.
    await Promise.resolve();
    expect(sink.chunks).toHaveLength(4);
    expect(sink.text).toBe(`data: ${data}\n\n`.repeat(200));
  });

  it.each(['close', 'drop-newest', 'drop-oldest'] as const)(
    'hands a tick larger than a small cap to a transport with room before onOverflow %s meets it',
    async (onOverflow) => {
      const subject = new Subject<MessageEvent>();
      const { sink, stream, reasons } = run(subject, { onOverflow, maxQueueBytes: 100 });
      // 13 bytes each: 260 bytes in one tick, which the transport takes as the cap fills.
      for (let i = 0; i < 20; i++) subject.next({ data: String(i).padStart(5, '0') });
      await Promise.resolve();
      expect([stream.closeReason, reasons, stream.stats.dropped]).toEqual([undefined, [], 0]);
      expect(sink.text).toBe(events(20));
      expect(sink.chunks.every((chunk) => chunk.length <= 100)).toBe(true);
      expect(stream.stats.peakQueuedBytes).toBeLessThanOrEqual(100);
    },
  );

  it('meets onOverflow once the transport it handed a tick to is full', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream } = run(subject, { onOverflow: 'drop-newest', maxQueueBytes: 100 });
    for (let i = 0; i < 10; i++) subject.next({ data: String(i).padStart(5, '0') });
    // The transport took events 0-6 (91 bytes) as the cap filled, and is full now.
    sink.full = true;
    for (let i = 10; i < 30; i++) subject.next({ data: String(i).padStart(5, '0') });
    // The write of events 7-13 found it full: 14-20 fill the cap, and 21-29 are dropped.
    expect(stream.stats.dropped).toBe(9);
    await Promise.resolve();
    sink.release();
    expect(sink.text).toBe(events(21));
  });

  it('stops writing chunks when the transport is full, and queues the rest', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream } = run(subject, { maxQueueBytes: 1024 * 1024 });
    sink.full = true;
    const data = 'x'.repeat(1000);
    for (let i = 0; i < 200; i++) subject.next({ data });
    await Promise.resolve();
    expect(sink.chunks).toHaveLength(1);
    expect(stream.queuedBytes).toBe(200 * 1008 - 66_528);
    sink.release();
    expect(sink.text).toBe(`data: ${data}\n\n`.repeat(200));
  });

  it('registers its drain listener once, however often the transport fills', async () => {
    // A transport's onDrain() adds a listener each time it is called (a Node response's 'drain'):
    // one per fill would pile up for as long as a slow client stays connected.
    class CountingSink extends MemorySink {
      registered = 0;
      override onDrain(listener: () => void) {
        this.registered++;
        super.onDrain(listener);
      }
    }
    const sink = new CountingSink();
    const subject = new Subject<MessageEvent>();
    streamEvents(subject, sink, { heartbeat: false });
    for (let i = 0; i < 3; i++) {
      sink.full = true;
      subject.next({ data: String(i) });
      await Promise.resolve();
      sink.release();
    }
    expect(sink.text).toBe('data: 0\n\ndata: 1\n\ndata: 2\n\n');
    expect(sink.registered).toBe(1);
    subject.complete();
  });

  it('counts what a client that leaves left queued in its peak, though the queue stayed far below the cap', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream } = run(subject);
    sink.full = true;
    subject.next({ data: 'a' });
    await Promise.resolve();
    // 108 bytes each, queued behind the full transport: far below the cap, they are not measured yet.
    subject.next({ data: 'x'.repeat(100) });
    subject.next({ data: 'x'.repeat(100) });
    sink.disconnect();
    // The final stats tell what the slow client made the stream hold, the events it never got.
    expect([stream.closeReason, stream.stats.dropped, stream.stats.peakQueuedBytes]).toEqual([
      'client',
      2,
      216,
    ]);
  });

  it('hands a draining transport one chunk at a time, and keeps the rest queued and counted', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream, reasons } = run(subject, { maxQueueBytes: 1024 * 1024 });
    sink.full = true;
    const data = 'x'.repeat(1000); // 1,008 bytes per event, 66 per chunk
    for (let i = 0; i < 300; i++) subject.next({ data });
    await Promise.resolve();
    sink.drainOnce();
    expect(sink.chunks.map((c) => c.length)).toEqual([66_528, 66_528]);
    expect(stream.queuedBytes).toBe(300 * 1008 - 2 * 66_528);
    expect(stream.stats.events).toBe(2 * 66);
    expect(stream.stats.peakQueuedBytes).toBe(300 * 1008 - 66_528);
    // The end hands over everything, full transport or not.
    subject.complete();
    expect(reasons).toEqual(['complete']);
    expect(sink.chunks.map((c) => c.length)).toEqual([66_528, 66_528, 66_528, 66_528, 36_288]);
    expect(sink.text).toBe(`data: ${data}\n\n`.repeat(300));
    expect(stream.stats.events).toBe(300);
    expect(sink.ended).toBe(true);
  });

  it('encodes a message shared by many connections once', async () => {
    const subject = new Subject<MessageEvent>();
    // Adapters resolve options once per route; every connection of the route shares them.
    const options = resolveStreamOptions({ heartbeat: false });
    const [a, b] = [new MemorySink(), new MemorySink()];
    streamEvents(subject, a, options);
    streamEvents(subject, b, options);
    subject.next({ data: { shared: true } });
    await Promise.resolve();
    expect(a.chunks[0]).toBe(b.chunks[0]);
    expect(a.text).toBe('data: {"shared":true}\n\n');
  });

  it.each([
    ['data', 'one', 'two'],
    ['id', '1', '2'],
    ['type', 'p', 'q'],
    ['retry', 1, 2],
  ] as const)('encodes a shared message anew once its %s changed', async (field, before, after) => {
    const options = resolveStreamOptions({ heartbeat: false });
    const message: MessageEvent = { data: 'd' };
    const fields = message as unknown as Record<string, unknown>;
    fields[field] = before;
    const [first, second] = [new Subject<MessageEvent>(), new Subject<MessageEvent>()];
    const [a, b] = [new MemorySink(), new MemorySink()];
    streamEvents(first, a, options);
    streamEvents(second, b, options);
    first.next(message);
    fields[field] = after;
    second.next(message);
    await Promise.resolve();
    expect(b.text).toBe(formatEvent({ ...message }));
    expect(a.text).not.toBe(b.text);
  });

  it('encodes a message emitted again in the same tick anew, whatever changed inside its data', async () => {
    // An accumulator re-emitted as it grows: the same message and data objects every time.
    const { sink } = run(
      from([1, 2, 3]).pipe(
        scan(
          (message, n) => {
            message.data.items.push(n);
            return message;
          },
          { data: { items: [] as number[] } },
        ),
      ),
    );
    await Promise.resolve();
    expect(sink.text).toBe('data: {"items":[1]}\n\ndata: {"items":[1,2]}\n\ndata: {"items":[1,2,3]}\n\n');

    // A pooled message shared by many connections: each emission reaches all of them as it is then.
    const subject = new Subject<MessageEvent<{ n: number }>>();
    const options = resolveStreamOptions({ heartbeat: false });
    const [a, b] = [new MemorySink(), new MemorySink()];
    streamEvents(subject, a, options);
    streamEvents(subject, b, options);
    const pooled = { data: { n: 0 } };
    for (const n of [1, 2]) {
      pooled.data.n = n;
      subject.next(pooled);
    }
    await Promise.resolve();
    expect(a.text).toBe('data: {"n":1}\n\ndata: {"n":2}\n\n');
    expect(b.chunks[0]).toBe(a.chunks[0]);
  });

  it("serializes an event once for all the connections of a route it reaches, with the route's serialize", async () => {
    const subject = new Subject<MessageEvent>();
    let calls = 0;
    const serialize = (data: unknown) => {
      calls++;
      return JSON.stringify(data);
    };
    const options = resolveStreamOptions({ heartbeat: false, serialize });
    const sinks = [new MemorySink(), new MemorySink(), new MemorySink()];
    for (const sink of sinks) streamEvents(subject, sink, options);
    subject.next({ data: { n: 1 } });
    await Promise.resolve();
    expect(sinks.map((sink) => sink.text)).toEqual(Array(3).fill('data: {"n":1}\n\n'));
    expect(calls).toBe(1);
  });

  it("joins and encodes a tick's events once for all the connections they reach", async () => {
    const subject = new Subject<MessageEvent>();
    const options = resolveStreamOptions({ heartbeat: false });
    const [a, b, c] = [new MemorySink(), new MemorySink(), new MemorySink()];
    streamEvents(subject, a, options);
    streamEvents(subject, b, options);
    streamEvents(subject.pipe(map(({ data }) => ({ data: `c${JSON.stringify(data)}` }))), c, options);
    for (const n of [1, 2, 3]) subject.next({ data: { n } });
    await Promise.resolve();
    expect(a.chunks[0]).toBe(b.chunks[0]);
    expect(a.text).toBe('data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"n":3}\n\n');
    expect(c.text).toBe('data: c{"n":1}\n\ndata: c{"n":2}\n\ndata: c{"n":3}\n\n');
  });

  it('reports exactly one close reason, whatever happens after it', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream, reasons } = run(subject);
    sink.disconnect();
    subject.complete();
    stream.close();
    expect(reasons).toEqual(['client']);
    expect(stream.closeReason).toBe('client');
    expect(subject.observed).toBe(false);
    expect(sink.destroyed).toBe(true);
  });

  it('holds events while the transport is full and writes them on drain', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream } = run(subject);
    sink.full = true;
    subject.next({ data: '1' });
    await Promise.resolve();
    subject.next({ data: '2' });
    subject.next({ data: '3' });
    await Promise.resolve();
    expect(sink.chunks).toHaveLength(1);
    expect(stream.queuedBytes).toBe(18);
    sink.release();
    expect(sink.text).toBe('data: 1\n\ndata: 2\n\ndata: 3\n\n');
    expect(stream.queuedBytes).toBe(0);
  });

  it.each([
    ['close', 'overflow', ''],
    ['drop-newest', undefined, 'data: 2\n\n'],
    ['drop-oldest', undefined, 'data: 4\n\n'],
  ] as const)('applies onOverflow %s', async (onOverflow, reason, queued) => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream, reasons } = run(subject, { onOverflow, maxQueueBytes: 12 });
    sink.full = true;
    subject.next({ data: '1' });
    await Promise.resolve();
    for (const data of ['2', '3', '4']) subject.next({ data });
    expect(stream.closeReason).toBe(reason);
    if (reason) expect(reasons).toEqual([reason]);
    else expect(stream.stats.dropped).toBe(2);
    sink.chunks.length = 0;
    sink.release();
    expect(sink.text).toBe(queued);
  });

  it('counts as dropped, with onOverflow close, the event that passed the cap as well as the queued ones', async () => {
    const { calls, metrics } = recordMetrics();
    const subject = new Subject<MessageEvent>();
    const { sink, stream } = run(subject, { metrics, maxQueueBytes: 12 });
    sink.full = true;
    subject.next({ data: '1' });
    await Promise.resolve();
    subject.next({ data: '2' });
    subject.next({ data: '3' });
    expect(stream.closeReason).toBe('overflow');
    // Three events emitted: one handed to the transport, two the client never gets.
    expect([stream.stats.events, stream.stats.dropped]).toEqual([1, 2]);
    expect(calls.filter((call) => call.startsWith('dropped'))).toEqual(['dropped 1', 'dropped 1']);
  });

  it('drops with drop-oldest no more than the new event needs, and remembers the peak', async () => {
    const event = (bytes: number) => ({ data: 'x'.repeat(bytes - 8) }); // `data: `, text, two LFs
    const fill = async (sizes: number[]) => {
      const subject = new Subject<MessageEvent>();
      const { sink, stream } = run(subject, { onOverflow: 'drop-oldest', maxQueueBytes: 1000 });
      sink.full = true;
      subject.next({ data: 'first' });
      await Promise.resolve();
      for (const size of sizes) subject.next(event(size));
      return stream;
    };
    // 500 + 400 + 600 passes 1,000: dropping the 500 makes room, exactly.
    const exact = await fill([500, 400, 600]);
    expect([exact.stats.dropped, exact.queuedBytes]).toEqual([1, 1000]);
    // 500 + 400 reached 900; a 200 then drops the 500, but the peak was 900.
    const lowered = await fill([500, 400, 200]);
    expect([lowered.stats.dropped, lowered.queuedBytes, lowered.stats.peakQueuedBytes]).toEqual([
      1, 600, 900,
    ]);
  });

  it.each(['drop-oldest', 'drop-newest'] as const)(
    'sends the gap event a source carries after the events %s dropped: once, within the cap, not counted as dropped',
    async (onOverflow) => {
      const subject = new Subject<MessageEvent>();
      const source = withGapEvent(subject);
      const { sink, stream } = run(source, { onOverflow, maxQueueBytes: 1000 });
      sink.full = true;
      // 100 bytes each on the wire: the queue holds 10 of 40, and the policy keeps dropping.
      const ids = Array.from({ length: 40 }, (_, i) => String(i).padStart(2, '0'));
      for (const id of ids) subject.next({ id, data: 'x'.repeat(85) });
      await Promise.resolve();
      sink.release();
      const blocks = sink.text.split('\n\n').filter((block) => block !== '');
      const gaps = blocks.flatMap((block, i) => (block.startsWith('event: gap') ? [i] : []));
      expect(gaps).toHaveLength(1);
      const sent = blocks.map((block) => /^id: (.+)$/m.exec(block)?.[1]).filter((id) => id !== undefined);
      expect(blocks[gaps[0]!]).toBe(`event: gap\ndata: after ${sent[gaps[0]! - 1] ?? null}`);
      expect(sent).toEqual(ids.filter((id) => sent.includes(id)));
      expect(sent.length + stream.stats.dropped).toBe(ids.length);
      expect(stream.stats.peakQueuedBytes).toBeLessThanOrEqual(1000);
    },
  );

  it.each(['drop-oldest', 'drop-newest'] as const)(
    'sends the gap event after the events %s dropped last, when the source completes before the next tick',
    async (onOverflow) => {
      const subject = new Subject<MessageEvent>();
      const source = withGapEvent(subject);
      const { sink, stream } = run(source, { onOverflow, maxQueueBytes: 30 });
      await fullAfterW(sink, subject);
      // With the transport full, the second event (25 bytes) passes the cap, and the gap event
      // before it too: it is dropped.
      subject.next({ id: 'e0', data: '' });
      subject.next({ id: 'e1', data: 'x'.repeat(10) });
      subject.complete();
      expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\nevent: gap\ndata: after e0\n\n');
      expect(stream.stats.dropped).toBe(1);
    },
  );

  it('sends an owed gap event alone once the client has room, when it fills the cap exactly', async () => {
    const subject = new Subject<MessageEvent>();
    // 27 bytes: the gap event after e0 (`event: gap\ndata: after e0\n\n`) takes the whole queue.
    const { sink } = run(withGapEvent(subject), { onOverflow: 'drop-newest', maxQueueBytes: 27 });
    await fullAfterW(sink, subject);
    subject.next({ id: 'e0', data: '' });
    subject.next({ id: 'e1', data: 'x'.repeat(10) });
    sink.release();
    // The cap is an upper bound the gap event meets: it goes now, not only at the stream's end.
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\nevent: gap\ndata: after e0\n\n');
  });

  it("sends the source's own gap event that found no room, not the stream's, when a drop follows it", async () => {
    const { subject, source, ownGap } = gapSource();
    const { sink, stream } = run(source, { onOverflow: 'drop-newest', maxQueueBytes: 30 });
    await fullAfterW(sink, subject);
    subject.next({ id: 'e0', data: '' });
    // The source's own gap event (24 bytes) finds no room after e0: it is owed.
    expect(ownGap()).toBe(true);
    // Dropped: the hole is the same one the source's event tells of, which says more about it.
    subject.next({ id: 'e1', data: 'x'.repeat(10) });
    sink.release();
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\nevent: own\ndata: own e0\n\n');
    expect(stream.stats.dropped).toBe(1);
  });

  it("sends the source's own gap event in place of the stream's one owed for a drop before it", async () => {
    const { subject, source, ownGap } = gapSource();
    const { sink, stream } = run(source, { onOverflow: 'drop-newest', maxQueueBytes: 30 });
    await fullAfterW(sink, subject);
    subject.next({ id: 'e0', data: '' });
    // Dropped: the stream's gap event is owed after e0.
    subject.next({ id: 'e1', data: 'x'.repeat(10) });
    // The source's own gap event (24 bytes) finds no room after e0 either: it tells of the same hole.
    expect(ownGap()).toBe(true);
    sink.release();
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\nevent: own\ndata: own e0\n\n');
    expect(stream.stats.dropped).toBe(1);
  });

  it("refuses a source's own gap event that made nothing, and owes it no more: a drop after it is told by the stream's", async () => {
    const { subject, source, ownGap } = gapSource();
    const errors: unknown[] = [];
    const options = {
      onOverflow: 'drop-newest',
      maxQueueBytes: 30,
      onError: (e: unknown) => errors.push(e),
    } as const;
    const { sink, stream } = run(source, options);
    await fullAfterW(sink, subject);
    subject.next({ id: 'e0', data: '' });
    // A factory that returns nothing, against its type: refused as a message that is none.
    ownGap((() => undefined) as never);
    subject.next({ id: 'e1', data: 'x'.repeat(10) });
    sink.release();
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\nevent: gap\ndata: after e0\n\n');
    expect([stream.stats.refused, stream.stats.dropped]).toEqual([1, 1]);
    expect(errors.map(String)).toEqual([
      'SseFormatError: Invalid SSE data: a message must be an object like { data }, got undefined',
    ]);
  });

  it('tells a source that carries no gap event that its stream does not place its own ones', () => {
    let subscriber: WithSubscriberGapEvent | undefined;
    const source = new Observable<MessageEvent>((s) => {
      subscriber = s as WithSubscriberGapEvent;
    });
    const { sink } = run(source);
    // False: the source sends it as a message of its own instead, or its client never hears of the hole.
    expect(subscriber?.[SUBSCRIBER_GAP_EVENT]?.(own)).toBe(false);
    expect(sink.text).toBe('');
  });

  it('tells of a hole once where drop-oldest empties the queue behind a gap event the client got last', async () => {
    const { subject, source, ownGap } = gapSource();
    const { sink, stream } = run(source, { onOverflow: 'drop-oldest', maxQueueBytes: 35 });
    await fullAfterW(sink, subject);
    subject.next({ id: 'e0', data: '' });
    // No room for e1 (25 bytes) with the gap event before it: dropped, and told after e0.
    subject.next({ id: 'e1', data: 'x'.repeat(10) });
    sink.release();
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\nevent: gap\ndata: after e0\n\n');
    // The client's last event is that gap event. A heartbeat fills the transport again, so e2
    // waits in the queue, and the source's own gap event (24 bytes) finds no room after it.
    sink.full = true;
    stream.beat();
    subject.next({ id: 'e2', data: '' });
    ownGap();
    // Room for the next event drops e2: every event after the gap event the client has is gone, and
    // that gap event tells of this hole too. Another one after it would tell of it twice.
    subject.next({ data: '' });
    sink.release();
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\nevent: gap\ndata: after e0\n\n:\ndata:\n\n');
  });

  it('names the last id queued in a later gap event after drop-oldest dropped over a thousand events at once', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink } = run(withGapEvent(subject), { onOverflow: 'drop-oldest', maxQueueBytes: 7800 });
    await fullAfterW(sink, subject);
    // 1,100 events of 7 bytes that set no id, then a and b (13 bytes each).
    for (let i = 0; i < 1100; i++) subject.next({ data: '' });
    subject.next({ id: 'a', data: '' });
    subject.next({ id: 'b', data: '' });
    // Room for 7,398 bytes and the gap event before the queue (26) drops 1,050 of the oldest: the
    // ids kept are compacted as the gap event goes first.
    subject.next({ data: 'x'.repeat(7390) });
    // Too large to go with that gap event: dropped, and told after the last id queued, b.
    subject.next({ data: 'x'.repeat(7780) });
    subject.next({ id: 'c', data: '' });
    subject.complete();
    sink.release();
    const gaps = sink.text.split('\n\n').filter((block) => block.startsWith('event: gap'));
    expect(gaps.at(-1)).toBe('event: gap\ndata: after b');
  });

  it('holds the gap event owed after a drop while the transport a drain refilled is full, and sends it at the next drain', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream } = run(withGapEvent(subject), { onOverflow: 'drop-newest', maxQueueBytes: 30 });
    await fullAfterW(sink, subject);
    subject.next({ id: 'e0', data: '' });
    // Passes the cap with e0 queued: dropped, and a gap event is owed after e0.
    subject.next({ id: 'e1', data: 'x'.repeat(10) });
    // The client takes w, and e0 fills the transport again: nothing more goes until it drains.
    sink.drainOnce();
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\n');
    sink.release();
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\nevent: gap\ndata: after e0\n\n');
    expect([stream.stats.dropped, stream.closeReason]).toEqual([1, undefined]);
  });

  it.each([
    { cap: 100, kept: ['e3', 'e4', 'e5'], dropped: 3 },
    // The gap event (26 bytes) and e6 (25 bytes) fill this cap exactly: e6 still fits.
    { cap: 51, kept: [], dropped: 6 },
  ])(
    'sends the gap event of the oldest events dropped before the events left, after the last one written (cap $cap)',
    async ({ cap, kept, dropped }) => {
      const { sink, stream } = await oldestDropped(cap);
      sink.release();
      const left = kept.map((id) => `id: ${id}\ndata:\n\n`).join('');
      expect(sink.text).toBe(
        `id: w\ndata:\n\nevent: gap\ndata: after w\n\n${left}id: e6\ndata: xxxxxxxxxx\n\n`,
      );
      expect(stream.stats.dropped).toBe(dropped);
    },
  );

  it("counts only the source's events as dropped when a client leaves with a gap event queued", async () => {
    const { sink, stream, reasons } = await oldestDropped(51);
    sink.disconnect();
    expect(reasons).toEqual(['client']);
    // e0..e6, none of which reached the client; the queued gap event is the stream's own.
    expect(stream.stats.dropped).toBe(7);
  });

  it("counts only the source's events as dropped when its sink throws on a chunk that holds a gap event", async () => {
    const { calls, metrics } = recordMetrics();
    const { sink, stream, reasons } = await oldestDropped(51, { metrics, onError: () => {} });
    sink.write = () => {
      throw new Error('socket gone');
    };
    // The drain hands over the queue, the gap event first: the sink throws on it.
    sink.release();
    expect(reasons).toEqual(['error']);
    // e0..e6, as when its client leaves: the gap event in the chunk is the stream's own.
    expect(stream.stats.dropped).toBe(7);
    const dropped = calls.filter((call) => call.startsWith('dropped '));
    expect(dropped.reduce((sum, call) => sum + Number(call.slice(8)), 0)).toBe(7);
  });

  it('counts no dropped event when its sink throws on the gap event owed at the end', async () => {
    const subject = new Subject<MessageEvent>();
    const sink = throwingOn('event: gap');
    const stream = streamEvents(withGapEvent(subject), sink, {
      heartbeat: false,
      onOverflow: 'drop-newest',
      maxQueueBytes: 30,
      onError: () => {},
    });
    await fullAfterW(sink, subject);
    subject.next({ id: 'e0', data: '' });
    // Passes the cap with e0 queued: dropped, and a gap event is owed after e0, sent at the end.
    subject.next({ id: 'e1', data: 'x'.repeat(10) });
    subject.complete();
    expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\n');
    expect(stream.stats).toMatchObject({ events: 2, dropped: 1 });
  });

  it('counts no dropped event when its sink throws on the error event at the end', () => {
    const { calls, metrics } = recordMetrics();
    const subject = new Subject<MessageEvent>();
    const sink = throwingOn('event: failed');
    const stream = streamEvents(subject, sink, {
      metrics,
      heartbeat: false,
      errorEvent: () => ({ type: 'failed', data: 'bye' }),
      onError: () => {},
    });
    subject.next({ id: 'e0', data: '' });
    subject.error(new Error('source failed'));
    expect(sink.text).toBe('id: e0\ndata:\n\n');
    expect(sink.destroyed).toBe(true);
    // e0 was sent; the error event is the stream's own, not one of the source's that was lost.
    expect(stream.stats).toMatchObject({ events: 1, dropped: 0 });
    expect(calls).toEqual(['opened', 'wrote 1 14', 'closed error']);
  });

  it('writes no error event to a connection its errorEvent dropped', () => {
    const { calls, metrics } = recordMetrics();
    const subject = new Subject<MessageEvent>();
    const sink = new MemorySink();
    const stream: EventStream = streamEvents(subject, sink, {
      metrics,
      heartbeat: false,
      errorEvent: () => {
        stream.destroy();
        return { type: 'failed', data: 'bye' };
      },
      onError: () => {},
    });
    subject.next({ data: 'a' });
    subject.error(new Error('source failed'));
    expect([sink.text, sink.destroyed]).toEqual(['data: a\n\n', true]);
    expect(stream.stats).toMatchObject({ events: 1, dropped: 0 });
    expect(calls).toEqual(['opened', 'wrote 1 9', 'closed error']);
  });

  it.each([
    ['an object with unsubscribe()', (count: () => void) => ({ unsubscribe: count })],
    ['a teardown function', (count: () => void) => count],
  ])(
    'ends the subscription another Observable implementation returns, as %s, once its client leaves',
    (_, make) => {
      let observer: { next(message: MessageEvent): void } | undefined;
      let unsubscribed = 0;
      const source = {
        subscribe(subscriber: { next(message: MessageEvent): void }) {
          observer = subscriber;
          return make(() => unsubscribed++);
        },
      };
      const { sink, reasons } = run(source as EventSourceLike<MessageEvent<unknown>>);
      observer?.next({ data: 'a' });
      expect(unsubscribed).toBe(0);
      sink.disconnect();
      expect([reasons, unsubscribed]).toEqual([['client'], 1]);
    },
  );

  it('tells of a gap in a small notice where the gap event made is larger than the queue, reported, never refused', async () => {
    const subject = new Subject<MessageEvent>();
    let subscriber: WithSubscriberGapEvent | undefined;
    const source = Object.assign(
      new Observable<MessageEvent>((s) => {
        subscriber = s as WithSubscriberGapEvent;
        return subject.subscribe(s);
      }),
      // A reason none of a channel's: the notice says 'gap'.
      { [SOURCE_GAP_EVENT]: largeGap('overflowed') },
    );
    const errors: unknown[] = [];
    const { sink, stream } = run(source, {
      onOverflow: 'drop-newest',
      onInvalidMessage: 'close',
      maxQueueBytes: 100,
      onError: (error) => errors.push(error),
    });
    const long = (id: string) => `id: ${id}\ndata: ${'x'.repeat(60)}\n\n`;
    sink.full = true;
    subject.next({ id: 'a', data: 'x'.repeat(60) });
    await Promise.resolve();
    // 74, 13 and 13 bytes fill the queue: e does not fit.
    subject.next({ id: 'b', data: 'x'.repeat(60) });
    for (const id of ['c', 'd', 'e']) subject.next({ id, data: '' });
    sink.release();
    await Promise.resolve();
    subject.next({ id: 'f', data: '' });
    subscriber?.[SUBSCRIBER_GAP_EVENT]?.(largeGap('history'));
    await Promise.resolve();
    const notice = (id: string, reason: string) =>
      `event: gap\ndata: {"lastEventId":"${id}","reason":"${reason}"}\n\n`;
    expect(sink.text).toBe(
      `${long('a')}${long('b')}id: c\ndata:\n\nid: d\ndata:\n\n${notice('d', 'gap')}id: f\ndata:\n\n${notice('f', 'history')}`,
    );
    expect([stream.closeReason, stream.stats.refused, stream.stats.dropped]).toEqual([undefined, 0, 1]);
    expect(errors).toEqual([expect.any(SseRangeError), expect.any(SseRangeError)]);
  });

  it("names the last id the client got in the small notice drop-oldest puts before the events left, with the gap event's type and reason", async () => {
    const subject = new Subject<MessageEvent>();
    const source = Object.assign(subject.asObservable(), { [SOURCE_GAP_EVENT]: largeGap('limit', 'missed') });
    const errors: unknown[] = [];
    const { sink, stream } = run(source, {
      onOverflow: 'drop-oldest',
      maxQueueBytes: 100,
      onError: (error) => errors.push(error),
    });
    await fullAfterW(sink, subject);
    for (let i = 0; i < 6; i++) subject.next({ id: `e${i}`, data: '' });
    // 25 bytes, and the notice before the events left (55), fit once e0..e4 are dropped.
    subject.next({ id: 'e6', data: 'x'.repeat(10) });
    sink.release();
    expect(sink.text).toBe(
      'id: w\ndata:\n\nevent: missed\ndata: {"lastEventId":"w","reason":"limit"}\n\n' +
        'id: e5\ndata:\n\nid: e6\ndata: xxxxxxxxxx\n\n',
    );
    expect([stream.stats.dropped, stream.stats.refused]).toEqual([5, 0]);
    expect(errors).toEqual([expect.any(SseRangeError)]);
  });

  it('refuses a gap notice larger than the queue itself where it was to go alone, and streams on', async () => {
    const subject = new Subject<MessageEvent>();
    const source = Object.assign(subject.asObservable(), { [SOURCE_GAP_EVENT]: largeGap('overflowed') });
    const errors: unknown[] = [];
    // Room for three empty events (13 bytes each), not for the gap notice (55 bytes).
    const { sink, stream } = run(source, {
      onOverflow: 'drop-newest',
      maxQueueBytes: 40,
      onError: (error) => errors.push(error),
    });
    sink.full = true;
    subject.next({ id: 'a', data: '' });
    await Promise.resolve();
    for (const id of ['b', 'c', 'd', 'e']) subject.next({ id, data: '' });
    await Promise.resolve();
    // The queue went out; the gap event owed for e goes alone once the client has room, and cannot.
    const refused = stream.stats.refused;
    expect(() => sink.release()).not.toThrow();
    expect(stream.stats.refused).toBe(refused + 1);
    for (const id of ['f', 'g', 'h']) {
      subject.next({ id, data: '' });
      await Promise.resolve();
    }
    expect(sink.text.startsWith(['a', 'b', 'c', 'd'].map((id) => `id: ${id}\ndata:\n\n`).join(''))).toBe(
      true,
    );
    expect(sink.text.endsWith('id: g\ndata:\n\nid: h\ndata:\n\n')).toBe(true);
    expect(stream.closeReason).toBeUndefined();
    expect(errors.every((error) => error instanceof SseRangeError)).toBe(true);
  });

  describe.each([
    ['throws', false],
    ['returns nothing', true],
  ])('with a gap event factory that %s', (_, nothing) => {
    it('refuses a gap event its factory cannot make once, and owes it no more: the events after it are not refused again', async () => {
      const { subject, source, made } = gapFactoryFails(nothing);
      const errors: unknown[] = [];
      const { sink, stream } = run(source, {
        onOverflow: 'drop-newest',
        maxQueueBytes: 30,
        onError: (error) => errors.push(error),
      });
      await fullAfterW(sink, subject);
      subject.next({ id: 'e0', data: '' });
      // Passes the cap with e0 queued: dropped, and a gap event is owed after e0, which the next
      // event finds its factory cannot make.
      subject.next({ id: 'e1', data: 'x'.repeat(10) });
      sink.release();
      for (const id of ['e2', 'e3', 'e4']) {
        subject.next({ id, data: '' });
        await Promise.resolve();
      }
      subject.complete();
      expect(sink.text).toBe(
        'id: w\ndata:\n\nid: e0\ndata:\n\nid: e2\ndata:\n\nid: e3\ndata:\n\nid: e4\ndata:\n\n',
      );
      expect([made(), stream.stats.refused, stream.stats.dropped, errors.length]).toEqual([1, 1, 1, 1]);
    });

    it.each([
      // e1 passes the cap and is dropped: the gap event owed is made for e2, which is in hand.
      ['drop-newest', 2, ['dropped 1', 'refused', 'dropped 1', 'closed error']],
      // e1 needs the oldest dropped, and the gap event that would go first: e1 is in hand.
      ['drop-oldest', 1, ['refused', 'dropped 1', 'closed error']],
    ] as const)(
      "with onInvalidMessage 'close' and %s, counts a gap event its factory cannot make refused once, and the event in hand dropped",
      async (onOverflow, dropped, told) => {
        const { calls, metrics } = recordMetrics();
        const { subject, source, made } = gapFactoryFails(nothing);
        const { sink, stream, reasons } = run(source, {
          onOverflow,
          maxQueueBytes: 30,
          onInvalidMessage: 'close',
          metrics: { ...metrics, refused: () => calls.push('refused') },
          onError: () => {},
        });
        await fullAfterW(sink, subject);
        subject.next({ id: 'e0', data: '' });
        subject.next({ id: 'e1', data: 'x'.repeat(10) });
        subject.next({ id: 'e2', data: '' });
        expect(reasons).toEqual(['error']);
        // w and e0 reached the client; the event in hand when the refusal ended the stream did not.
        expect(sink.text).toBe('id: w\ndata:\n\nid: e0\ndata:\n\n');
        expect([made(), stream.stats.refused, stream.stats.dropped]).toEqual([1, 1, dropped]);
        expect(calls.filter((call) => !call.startsWith('wrote') && call !== 'opened')).toEqual(told);
      },
    );
  });

  it('never has a drop-oldest gap event name an id the client did not get, where events set no id', async () => {
    const subject = new Subject<MessageEvent>();
    const source = withGapEvent(subject);
    const { sink, stream } = run(source, { onOverflow: 'drop-oldest', maxQueueBytes: 99 });
    // The transport is full from its first chunk on.
    sink.full = true;
    subject.next({ data: 'w' });
    await Promise.resolve();
    subject.next({ id: 'e0', data: 'x'.repeat(34) });
    subject.next({ data: '1' });
    // Too large to go with a gap event: dropped, and told after `1`, as the client's last id there: e0.
    subject.next({ id: 'e2', data: 'x'.repeat(60) });
    subject.next({ id: 'e3', data: '' });
    // Room for e4 drops e0: the gap event after `1` would name an id the client never gets.
    subject.next({ id: 'e4', data: '' });
    subject.complete();
    expect(sink.text).toBe('data: w\n\nevent: gap\ndata: after null\n\nid: e3\ndata:\n\nid: e4\ndata:\n\n');
    expect(stream.stats.dropped).toBe(3);
  });

  it("tells of a hole once where drop-oldest leaves the source's own gap event first, naming the id the client has", async () => {
    const { subject, source, ownGap } = gapSource();
    const { sink, stream } = run(source, { onOverflow: 'drop-oldest', maxQueueBytes: 200 });
    await fullAfterW(sink, subject);
    // 100 bytes that set no id, then a gap event of the source's own (26 bytes) naming w, as a
    // channel's store tells of events it lost.
    subject.next({ data: 'x'.repeat(92) });
    expect(ownGap(source[SOURCE_GAP_EVENT])).toBe(true);
    // Room for e1 drops the oldest: the stream's gap event after w tells of the same hole.
    subject.next({ id: 'e1', data: 'x'.repeat(85) });
    subject.complete();
    sink.release();
    expect(sink.text).toBe(
      `id: w\ndata:\n\nevent: gap\ndata: after w\n\nid: e1\ndata: ${'x'.repeat(85)}\n\n`,
    );
    expect(stream.stats.dropped).toBe(1);
  });

  it("tells of a hole once where drop-oldest drops every event before the source's own gap event that found no room", async () => {
    const { subject, source, ownGap } = gapSource();
    const { sink, stream } = run(source, { onOverflow: 'drop-oldest', maxQueueBytes: 100 });
    await fullAfterW(sink, subject);
    // e0..e6 (91 bytes) leave no room for the source's own gap event after e6 (25 bytes): it is owed.
    for (let i = 0; i < 7; i++) subject.next({ id: `e${i}`, data: '' });
    expect(ownGap()).toBe(true);
    // 49 bytes, with the owed gap event and the one after w (26) that goes first: e0..e6 are all
    // dropped, and the gap event after w, the last queued, tells of the hole the owed one told of.
    subject.next({ id: 'e7', data: 'x'.repeat(34) });
    subject.complete();
    sink.release();
    expect(sink.text).toBe(
      `id: w\ndata:\n\nevent: gap\ndata: after w\n\nid: e7\ndata: ${'x'.repeat(34)}\n\n`,
    );
    expect(stream.stats.dropped).toBe(7);
  });

  it('keeps any cap with drop-oldest: above 64 KiB, and across drains that took unmeasured events', async () => {
    const data = 'x'.repeat(992); // 1,000 bytes an event
    const subject = new Subject<MessageEvent>();
    const { sink, stream } = run(subject, {
      onOverflow: 'drop-oldest',
      maxQueueBytes: 256 * 1024,
      stallTimeout: false,
    });
    sink.full = true;
    subject.next({ data: 'first' });
    await Promise.resolve();
    // Sizes are measured only once a third of the cap is queued (3 bytes a unit at most): the first
    // 100 events are, the next 40 are not, and the second drain (66 events) takes some of each.
    for (let i = 0; i < 100; i++) subject.next({ data });
    sink.drainOnce();
    for (let i = 0; i < 40; i++) subject.next({ data });
    sink.drainOnce();
    for (let i = 0; i < 400; i++) subject.next({ data });
    expect(stream.queuedBytes).toBe(262_000);
    expect(stream.stats.peakQueuedBytes).toBe(262_000);
    expect(stream.stats.dropped).toBe(540 - 2 * 66 - 262);
  });

  it('counts the cap in UTF-8 bytes, whatever the text', async () => {
    const subject = new Subject<MessageEvent>();
    const cap = 10_000;
    const { sink, stream } = run(subject, { onOverflow: 'drop-oldest', maxQueueBytes: cap });
    sink.full = true;
    subject.next({ data: 'first' });
    await Promise.resolve();
    // 1,008 UTF-16 units each: ASCII events are 1,008 bytes, euro signs 3 bytes a unit.
    const ascii = (n: number) => ({ data: `${n}`.padEnd(1000, '.') });
    const euros = (n: number) => ({ data: `${n}`.padEnd(1000, '€') });
    for (let n = 0; n < 4; n++) subject.next(ascii(n));
    expect(stream.queuedBytes).toBe(4 * 1008);
    for (let n = 4; n < 10; n++) subject.next(euros(n));
    // Only the newest three fit: each is 6 + 1 + 3 × 999 + 2 = 3,006 bytes.
    expect(stream.queuedBytes).toBe(3 * 3006);
    expect(stream.stats.dropped).toBe(7);
    expect(stream.stats.peakQueuedBytes).toBeLessThanOrEqual(cap);
    sink.chunks.length = 0;
    sink.release();
    expect(sink.text).toBe([7, 8, 9].map((n) => `data: ${euros(n).data}\n\n`).join(''));
    expect(sink.chunks[0]!.length).toBe(3 * 3006);
  });

  it('takes an event of exactly maxQueueBytes into a full queue: drop-oldest makes room, and it is sent', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream } = run(subject, { onOverflow: 'drop-oldest', maxQueueBytes: 100 });
    const exact = { data: 'x'.repeat(92) };
    expect(formatEvent(exact)).toHaveLength(100); // ASCII: as many bytes
    sink.full = true;
    subject.next({ data: 'first' });
    await Promise.resolve();
    subject.next({ data: 'queued' });
    subject.next(exact);
    sink.release();
    expect(sink.text).toBe(`data: first\n\n${formatEvent(exact)}`);
    expect(stream.stats.dropped).toBe(1);
  });

  it('sends an event of exactly maxQueueBytes pulled from an AsyncIterable, not refused as larger', async () => {
    async function* exact() {
      yield { data: 'x'.repeat(92) }; // 100 bytes
    }
    const { sink, stream, reasons } = run(exact(), { maxQueueBytes: 100 });
    for (let i = 0; i < 10; i++) await tick();
    expect(reasons).toEqual(['complete']);
    expect(stream.stats.refused).toBe(0);
    expect(sink.text).toBe(`data: ${'x'.repeat(92)}\n\n`);
  });

  it('counts no queue peak for what goes to a transport with room at once: messages pulled, the error event', async () => {
    async function* failing() {
      yield { data: 'a' };
      throw new Error('source failed');
    }
    const { sink, stream, reasons } = run(failing(), {
      errorEvent: () => ({ type: 'failed', data: 'bye' }),
      onError: () => {},
    });
    for (let i = 0; i < 10; i++) await tick();
    expect(reasons).toEqual(['error']);
    expect(sink.text).toBe('data: a\n\nevent: failed\ndata: bye\n\n');
    // Neither was ever queued: each went out as it came.
    expect(stream.stats).toMatchObject({ events: 2, peakQueuedBytes: 0 });
  });

  it('writes what is queued before ending on completion', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, reasons } = run(subject);
    sink.full = true;
    subject.next({ data: '1' });
    await Promise.resolve();
    subject.next({ data: '2' });
    subject.complete();
    expect(sink.text).toBe('data: 1\n\ndata: 2\n\n');
    expect(sink.ended).toBe(true);
    expect(reasons).toEqual(['complete']);
  });

  it('pulls an AsyncIterable only while the transport has room', async () => {
    let pulled = 0;
    async function* numbers() {
      for (;;) yield { data: String(++pulled) };
    }
    const { sink, stream } = run(numbers());
    sink.full = true;
    for (let i = 0; i < 10; i++) await tick();
    expect(pulled).toBe(1);
    sink.release();
    sink.full = true;
    for (let i = 0; i < 10; i++) await tick();
    expect(pulled).toBe(2);
    stream.close();
  });

  it('writes a message pulled while a heartbeat filled the transport only once it drains', async () => {
    vi.useFakeTimers();
    try {
      let release!: (result: IteratorResult<MessageEvent>) => void;
      const pending: AsyncIterable<MessageEvent> = {
        [Symbol.asyncIterator]: () => ({
          next: () => new Promise((resolve) => (release = resolve)),
          return: async () => ({ done: true, value: undefined }),
        }),
      };
      const { sink, stream } = run(pending, { heartbeat: 1000, stallTimeout: false });
      // The next() is pending when the heartbeat's write finds the transport full.
      sink.full = true;
      await vi.advanceTimersByTimeAsync(3000);
      const written = sink.text;
      expect(written).toMatch(/^:/);
      release({ done: false, value: { data: 'pulled' } });
      await vi.advanceTimersByTimeAsync(0);
      expect(sink.text).toBe(written);
      sink.release();
      expect(sink.text).toBe(`${written}data: pulled\n\n`);
      stream.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses an Observable that fails before its first message: it throws, and nothing opens or counts', () => {
    const { calls, metrics } = recordMetrics();
    const failure = new Error('not found');
    const group = new StreamGroup();
    const sink = new MemorySink();
    const errors: unknown[] = [];
    const closes: CloseReason[] = [];
    let tornDown = 0;
    const failing = new Observable<MessageEvent>((subscriber) => {
      subscriber.error(failure);
      return () => tornDown++;
    });
    const options = {
      metrics,
      group,
      retry: 1000,
      errorEvent: () => ({ data: 'failed' }),
      onError: (error: unknown) => errors.push(error),
      onClose: (reason: CloseReason) => closes.push(reason),
    };
    expect(() => streamEvents(failing, sink, options)).toThrow(failure);
    expect([sink.headers, sink.chunks, sink.ended, sink.destroyed]).toEqual([undefined, [], false, false]);
    expect([calls, closes, errors, tornDown, group.size]).toEqual([[], [], [], 1, 0]);
    // The same for a subscribe function that throws.
    const throwing = new Observable<MessageEvent>(() => {
      throw failure;
    });
    expect(() => streamEvents(throwing, sink, options)).toThrow(failure);
    expect([sink.headers, calls, closes, errors]).toEqual([undefined, [], [], []]);
  });

  it('counts the events of a chunk its sink threw on as dropped, not as sent', async () => {
    const { calls, metrics } = recordMetrics();
    const subject = new Subject<MessageEvent>();
    const sink = new MemorySink();
    const write = sink.write.bind(sink);
    let writes = 0;
    sink.write = (chunk) => {
      if (++writes === 2) throw new Error('socket gone');
      return write(chunk);
    };
    const stream = streamEvents(subject, sink, { metrics, heartbeat: false, onError: () => {} });
    subject.next({ data: 'a' });
    await tick();
    subject.next({ data: 'b' });
    subject.next({ data: 'c' });
    await tick();
    expect(calls).toEqual(['opened', 'wrote 1 9', 'dropped 2', 'closed error']);
    expect(stream.stats).toMatchObject({ events: 1, bytes: 9, dropped: 2 });
  });

  it('refuses an AsyncIterable whose iterator cannot be made: it throws, and nothing opens or counts', () => {
    const { calls, metrics } = recordMetrics();
    const failure = new Error('no such feed');
    const group = new StreamGroup();
    const sink = new MemorySink();
    const closes: CloseReason[] = [];
    const unmade: AsyncIterable<MessageEvent> = {
      [Symbol.asyncIterator]: () => {
        throw failure;
      },
    };
    const options = { metrics, group, retry: 1000, onClose: (reason: CloseReason) => closes.push(reason) };
    expect(() => streamEvents(unmade, sink, options)).toThrow(failure);
    expect([sink.headers, sink.chunks, sink.ended, sink.destroyed]).toEqual([undefined, [], false, false]);
    expect([calls, closes, group.size]).toEqual([[], [], 0]);
  });

  it('refuses an AsyncIterable whose [Symbol.asyncIterator]() gives no iterator, as for await does', () => {
    for (const [given, named] of [
      [undefined, 'undefined'],
      [null, 'null'],
      [5, 'number 5'],
    ] as const) {
      const sink = new MemorySink();
      const unmade = { [Symbol.asyncIterator]: () => given } as unknown as AsyncIterable<MessageEvent>;
      expect(() => streamEvents(unmade, sink, { heartbeat: false }), named).toThrow(
        new TypeError(`An AsyncIterable's [Symbol.asyncIterator]() gave ${named}, not an iterator`),
      );
      expect(sink.headers, named).toBeUndefined();
    }
  });

  it('streams an AsyncIterable whose iterator is a function, which for await takes as well', async () => {
    const messages = [{ data: 'a' }, { data: 'b' }];
    const iterator = Object.assign(() => {}, {
      next: async () => {
        const value = messages.shift();
        return value === undefined
          ? { done: true as const, value: undefined }
          : { done: false as const, value };
      },
    });
    const source = { [Symbol.asyncIterator]: () => iterator } as unknown as AsyncIterable<MessageEvent>;
    const { sink, stream } = run(source);
    for (let i = 0; i < 10 && !sink.ended; i++) await tick();
    expect(sink.text).toBe('data: a\n\ndata: b\n\n');
    expect(stream.closeReason).toBe('complete');
  });

  it('returns the iterator it made for an AsyncIterable when its stream is never fed', () => {
    for (const ending of ['client left first', 'sink closed at once'] as const) {
      let returned = 0;
      const iterator: AsyncIterator<MessageEvent> = {
        next: () => new Promise<never>(() => {}),
        return: async () => {
          returned++;
          return { done: true, value: undefined };
        },
      };
      const sink = new MemorySink();
      if (ending === 'client left first') sink.disconnect();
      // A transport whose close listener it calls at once, as a response already closed does.
      else
        Object.assign(sink, {
          onClose: (listener: () => void) => {
            listener();
            return true;
          },
        });
      const reasons: CloseReason[] = [];
      streamEvents({ [Symbol.asyncIterator]: () => iterator }, sink, { onClose: (r) => reasons.push(r) });
      expect([reasons, returned], ending).toEqual([['client'], 1]);
    }
  });

  it('opens before it subscribes a source that opens first, which ends it as it fails at once', () => {
    const { calls, metrics } = recordMetrics();
    const errors: unknown[] = [];
    const failure = new Error('engine down');
    const source = Object.assign(new Observable<MessageEvent>((subscriber) => subscriber.error(failure)), {
      [SOURCE_OPENS_FIRST]: true as const,
    });
    const { sink, reasons } = run(source, { metrics, retry: 1000, onError: (error) => errors.push(error) });
    expect([sink.text, sink.ended, reasons, errors]).toEqual(['retry: 1000\n\n', true, ['error'], [failure]]);
    expect(calls).toEqual(['opened', 'wrote 0 13', 'closed error']);
  });

  it('opens at the first message of a source that fails after it: retry hint, message, error event', async () => {
    const { calls, metrics } = recordMetrics();
    const headers = { 'x-feed': 'v1' };
    const source = Object.assign(
      new Observable<MessageEvent>((subscriber) => {
        subscriber.next({ data: 'a' });
        subscriber.error(new Error('later'));
      }),
      { [SOURCE_HEADERS]: headers },
    );
    const { sink, reasons } = run(source, {
      metrics,
      retry: 1000,
      errorEvent: () => ({ data: 'failed' }),
      onError: () => {},
    });
    expect(sink.headers).toMatchObject(headers);
    expect(sink.text).toBe('retry: 1000\n\ndata: a\n\ndata: failed\n\n');
    expect(reasons).toEqual(['error']);
    expect(calls).toEqual(['opened', 'wrote 0 13', 'wrote 1 9', 'wrote 1 14', 'closed error']);
  });

  it('opens a source that completes at once with nothing, and one whose first message is refused', () => {
    const empty = run(new Observable<MessageEvent>((subscriber) => subscriber.complete()), { retry: 5 });
    expect([empty.sink.text, empty.sink.ended, empty.reasons]).toEqual(['retry: 5\n\n', true, ['complete']]);
    // A message the encoder refuses was sent all the same: the failure after it is the stream's.
    const refused = run(
      new Observable<MessageEvent>((subscriber) => {
        subscriber.next({ data: 'x', id: 'a\nb' });
        subscriber.error(new Error('after a refused message'));
      }),
      { onError: () => {} },
    );
    expect([refused.sink.headers !== undefined, refused.sink.ended, refused.reasons]).toEqual([
      true,
      true,
      ['error'],
    ]);
  });

  it('stops at once when the source completes synchronously', () => {
    const { sink, reasons } = run(from([{ data: 'only' }]));
    expect(reasons).toEqual(['complete']);
    expect(sink.text).toBe('data: only\n\n');
  });

  it('applies headers the source carries over the route options', () => {
    const source = Object.assign(from([{ data: 'x' }]), {
      [SOURCE_HEADERS]: { 'SSE-History-Truncated': 'true' },
    });
    const { sink } = run(source, { headers: { 'X-Route': 'a' } });
    expect(sink.headers).toMatchObject({ 'sse-history-truncated': 'true', 'x-route': 'a' });
  });

  it('sends the value the source carries for a header the route options set too', () => {
    // The source knows its own stream (a channel's truncated history): its value is the true one.
    const source = Object.assign(from([{ data: 'x' }]), { [SOURCE_HEADERS]: { 'X-Feed': 'source' } });
    const { sink } = run(source, { headers: { 'X-Feed': 'route' } });
    expect(sink.headers?.['x-feed']).toBe('source');
  });

  it('takes its abort listener off the signal when it closes', () => {
    const { sink, stream } = run(NEVER);
    expect(getEventListeners(sink.signal, 'abort')).toHaveLength(1);
    stream.close();
    // The listener holds the stream: once ended, nothing of it may stay reachable from the
    // connection's signal, which lives as long as the transport keeps the request.
    expect(getEventListeners(sink.signal, 'abort')).toHaveLength(0);
  });

  it('leaves the heartbeat wheel when it closes', () => {
    const before = heartbeatCount();
    const { stream } = run(NEVER, { heartbeat: 5000 });
    expect(heartbeatCount()).toBe(before + 1);
    stream.close();
    expect(heartbeatCount()).toBe(before);
  });

  it('ends after maxLifetime, scaled by 80-100 %', async () => {
    const started = performance.now();
    const { sink, reasons } = run(NEVER, { maxLifetime: 100 });
    await new Promise<void>((resolve) => sink.signal.addEventListener('abort', () => resolve()));
    expect(reasons).toEqual(['lifetime']);
    expect(sink.ended).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(79);
  });

  it('reports opens, writes, heartbeats, drops and closes to metrics', async () => {
    const { calls, metrics } = recordMetrics();
    const subject = new Subject<MessageEvent>();
    const { sink, stream } = run(subject, { metrics, onOverflow: 'drop-newest', maxQueueBytes: 9 });
    subject.next({ data: 'a' });
    await Promise.resolve();
    sink.full = true;
    stream.beat();
    subject.next({ data: 'b' });
    subject.next({ data: 'c' });
    stream.close();
    expect(calls).toEqual([
      'opened',
      'wrote 1 9',
      // Told once it is out, after the write.
      'wrote 0 2',
      'heartbeat',
      'dropped 1',
      'wrote 1 9',
      'closed shutdown',
    ]);
  });

  it.each(['skip', 'close'] as const)(
    'counts as refused, and reports, an error event the encoder refuses (onInvalidMessage %s)',
    (onInvalidMessage) => {
      const { calls, metrics } = recordMetrics();
      const errors: unknown[] = [];
      const failing = new Subject<MessageEvent>();
      const { sink, stream } = run(failing, {
        metrics: { ...metrics, refused: () => calls.push('refused') },
        // The type browsers route to onerror: the encoder refuses it.
        errorEvent: () => ({ type: 'error', data: 'try again later' }),
        onError: (error) => errors.push(error),
        onInvalidMessage,
      });
      failing.error(new Error('source failed'));
      expect(sink.text).toBe('');
      expect(sink.ended).toBe(true);
      expect(stream.stats.refused).toBe(1);
      expect(calls).toEqual(['opened', 'refused', 'closed error']);
      expect(errors.map((error) => (error as Error).name)).toEqual(['Error', 'SseFormatError']);
    },
  );

  it("counts as refused, and reports, an error event given as a bare value under bareValues: 'data' that no data can carry", () => {
    const { calls, metrics } = recordMetrics();
    const errors: unknown[] = [];
    const failing = new Subject<MessageEvent>();
    const { sink, stream } = run(failing, {
      metrics: { ...metrics, refused: () => calls.push('refused') },
      bareValues: 'data',
      serialize: () => {
        throw new Error('cannot serialize');
      },
      errorEvent: () => 42 as unknown as MessageEvent,
      onError: (error) => errors.push(error),
    });
    failing.error(new Error('source failed'));
    expect(sink.text).toBe('');
    expect(stream.stats.refused).toBe(1);
    expect(calls).toEqual(['opened', 'refused', 'closed error']);
    expect(errors.map((error) => (error as Error).name)).toEqual(['Error', 'SseFormatError']);
  });

  it('tells metrics of no empty write, nor of a drop when nothing was dropped', async () => {
    const { calls, metrics } = recordMetrics();
    const subject = new Subject<MessageEvent>();
    const { sink } = run(subject, { metrics });
    // 66 events of 1,000 units pass 64 Ki units: written at once, leaving the tick's flush nothing.
    for (let i = 0; i < 66; i++) subject.next({ data: 'x'.repeat(992) });
    await Promise.resolve();
    sink.disconnect();
    expect(calls).toEqual(['opened', 'wrote 66 66000', 'closed client']);
  });

  it("lays a route's options over an app's: one set to undefined keeps the app's, as one left out does", () => {
    const group = new StreamGroup();
    const merged = overStreamOptions(
      { group, heartbeat: 5_000, retry: 1_000 },
      { group: undefined, heartbeat: undefined, retry: 2_000, maxLifetime: 60_000 },
    );
    expect(merged).toEqual({ group, heartbeat: 5_000, retry: 2_000, maxLifetime: 60_000 });
  });

  it('fills in the defaults the README gives, and takes every duration down to its least', () => {
    const { maxQueueBytes, stallTimeout, heartbeat, onOverflow } = resolveStreamOptions({});
    expect({ maxQueueBytes, stallTimeout, heartbeat, onOverflow }).toEqual({
      maxQueueBytes: 1024 * 1024,
      stallTimeout: 30_000,
      heartbeat: 15_000,
      onOverflow: 'close',
    });
    expect(() =>
      resolveStreamOptions({ heartbeat: 1, stallTimeout: 1, maxLifetime: 1, retry: 1 }),
    ).not.toThrow();
    expect(() => resolveStreamOptions({ maxQueueBytes: 0 })).toThrow(RangeError);
    expect(() => resolveStreamOptions({ retry: '3000' as unknown as number })).toThrow(/, got "3000"$/);
    expect(() => checkShutdownOptions({ retry: 1, spread: 0, deadline: 1 })).not.toThrow();
    expect(() => checkShutdownOptions({ retry: 2 ** 31 - 11, spread: 10 })).not.toThrow();
    expect(() => checkShutdownOptions({ retry: 2 ** 31 - 11, spread: 11 })).toThrow(RangeError);
  });

  it('refuses an option name it does not know when the route is set up, naming the one meant', () => {
    const bad = (options: unknown) => () => resolveStreamOptions(options as StreamOptions);
    expect(bad({ maxQueueByte: 1e6 })).toThrow(TypeError);
    expect(bad({ maxQueueByte: 1e6 })).toThrow(
      /^Unknown stream option "maxQueueByte" \(did you mean "maxQueueBytes"\?\)$/,
    );
    expect(bad({ stalltimeout: 5 })).toThrow(/\(did you mean "stallTimeout"\?\)$/);
    expect(bad({ compress: true })).toThrow(/^Unknown stream option "compress"$/);
    const shutdown = (options: unknown) => () => checkShutdownOptions(options as ShutdownOptions);
    expect(shutdown({ deadLine: 100 })).toThrow(TypeError);
    expect(shutdown({ deadLine: 100 })).toThrow(
      /^Unknown shutdown option "deadLine" \(did you mean "deadline"\?\)$/,
    );
  });

  it("sends a bare value as the data of an event under bareValues: 'data', and refuses it by default", async () => {
    const values = ['hello', 42, true, null, undefined, { data: 'object' }] as unknown as MessageEvent[];
    const refused: unknown[] = [];
    const data = run(from(values), { bareValues: 'data', onError: (error) => refused.push(error) });
    await Promise.resolve();
    expect(data.sink.text).toBe('data: hello\n\ndata: 42\n\ndata: true\n\ndata: object\n\n');
    expect(data.stream.stats.refused).toBe(2);
    expect(refused).toHaveLength(2);
    const refusing = run(from(values), { onError: () => {} });
    await Promise.resolve();
    expect(refusing.sink.text).toBe('data: object\n\n');
    expect(refusing.stream.stats.refused).toBe(5);
    expect(() => resolveStreamOptions({ bareValues: 'wrap' as never })).toThrow(
      /^bareValues must be 'refuse' or 'data', got string wrap$/,
    );
  });

  it('refuses encoder options it cannot apply when the route is set up, naming them', () => {
    const bad = (options: Record<string, unknown>) => () => resolveStreamOptions(options as StreamOptions);
    expect(bad({ maxDataLines: 1, ids: 'spec', serialize: String })).not.toThrow();
    expect(bad({ maxDataLines: 0 })).toThrow(/^maxDataLines must be a positive integer, got 0$/);
    expect(bad({ maxDataLines: Number.POSITIVE_INFINITY })).toThrow(RangeError);
    expect(bad({ maxDataLines: 2.5 })).toThrow(RangeError);
    expect(bad({ ids: 'Spec' })).toThrow(/^ids must be 'portable' or 'spec', got Spec$/);
    expect(bad({ serialize: 'json' })).toThrow(/^serialize must be a function, got string$/);
  });

  it('takes every duration up to 2^31-1 ms, and refuses a retry that is no whole number of ms, naming it', () => {
    const most = 2 ** 31 - 1;
    expect(() =>
      resolveStreamOptions({ heartbeat: most, stallTimeout: most, maxLifetime: most, retry: most }),
    ).not.toThrow();
    expect(() => checkShutdownOptions({ retry: most, deadline: most })).not.toThrow();
    // The wire takes only integers: a fractional retry fails where it is given, not at its first write.
    expect(() => resolveStreamOptions({ retry: 1.5 })).toThrow(/^retry must be an integer, got 1\.5$/);
    expect(() => checkShutdownOptions({ retry: 1.5 })).toThrow(/^retry must be an integer, got 1\.5$/);
    expect(() => resolveStreamOptions({ heartbeat: 1.5, stallTimeout: 1.5, maxLifetime: 1.5 })).not.toThrow();
  });

  it('refuses an onOverflow named after what every object inherits, as any policy it does not have', () => {
    for (const policy of ['toString', 'constructor', '__proto__']) {
      expect(() => resolveStreamOptions({ onOverflow: policy as never })).toThrow(
        new RegExp(`^onOverflow must be one of 'close', 'drop-newest', 'drop-oldest', got "${policy}"$`),
      );
    }
  });

  it('refuses an option of the wrong type when the route is set up, naming it and what it got', () => {
    const bad = (options: unknown) => () => resolveStreamOptions(options as StreamOptions);
    const { metrics } = recordMetrics();
    const callbacks = { errorEvent: () => undefined, onClose: () => {}, onError: () => {} };
    const fine = { group: new StreamGroup(), metrics, strict: true, allowReservedTypes: false };
    expect(bad({ ...fine, ...callbacks, headers: {} })).not.toThrow();
    expect(bad({ metrics: { ...metrics, refused: () => {} } })).not.toThrow();
    expect(bad({ group: {} })).toThrow(/^group must be a StreamGroup, got an object \(Object\)$/);
    // A Set has add() and delete(), but no close(): a shutdown could not end its streams.
    expect(bad({ group: new Set() })).toThrow(/^group must be a StreamGroup, got an object \(Set\)$/);
    expect(bad({ group: 'api' })).toThrow(TypeError);
    expect(bad({ metrics: 5 })).toThrow(
      /^metrics must be an object with the StreamMetrics hooks, got number 5$/,
    );
    expect(bad({ metrics: { ...metrics, wrote: 1 } })).toThrow(
      /^metrics\.wrote must be a function, got number$/,
    );
    expect(bad({ metrics: { ...metrics, refused: 'yes' } })).toThrow(/^metrics\.refused must be a function/);
    expect(bad({ metrics: { ...metrics, failed: () => {} } })).not.toThrow();
    expect(bad({ metrics: { ...metrics, failed: 42 } })).toThrow(/^metrics\.failed must be a function/);
    // Only `refused` and `failed` may be left out: a metrics object without another hook would count nothing of it.
    expect(bad({ metrics: { ...metrics, closed: undefined } })).toThrow(
      /^metrics\.closed must be a function, got undefined$/,
    );
    expect(bad({ onClose: 'log' })).toThrow(/^onClose must be a function, got string$/);
    expect(bad({ onError: console })).toThrow(/^onError must be a function, got object$/);
    expect(bad({ errorEvent: { type: 'oops' } })).toThrow(/^errorEvent must be a function, got object$/);
    expect(bad({ strict: 'false' })).toThrow(/^strict must be a boolean, got string$/);
    expect(bad({ onInvalidMessage: 'ignore' })).toThrow(
      /^onInvalidMessage must be 'skip' or 'close', got string ignore$/,
    );
    expect(bad({ onOverflow: 'drop' })).toThrow(
      /^onOverflow must be one of 'close', 'drop-newest', 'drop-oldest', got "drop"$/,
    );
    expect(bad({ allowReservedTypes: 1 })).toThrow(/^allowReservedTypes must be a boolean, got number$/);
    expect(bad({ headers: 'X-A: 1' })).toThrow(/^headers must be an object of names to values, got string/);
    expect(bad({ headers: null })).toThrow(/^headers must be an object of names to values, got null$/);
    expect(bad({ headers: [['X-A', '1']] })).toThrow(/^headers must be an object .*, got an array of 1$/);
    expect(bad('fast')).toThrow(/^options must be an object, got string fast$/);
    expect(bad(null)).toThrow(/^options must be an object, got null$/);
    // A collection passes `typeof`, and carries no option the checks would see.
    expect(bad([])).toThrow(/^options must be an object, got an array of 0$/);
    expect(bad(new Map([['retry', 1000]]))).toThrow(/^options must be an object, got an object \(Map\)$/);
    expect(bad(new Set(['retry']))).toThrow(/^options must be an object, got an object \(Set\)$/);
    expect(() => checkShutdownOptions([] as never)).toThrow(
      /^shutdown options must be an object, got an array/,
    );
    expect(() => createChannel(memoryEngine(), 'room', [] as never)).toThrow(/^options must be an object/);
    expect(() => memoryEngine(new Map() as never)).toThrow(/^options must be an object/);
    expect(() => checkShutdownOptions(5000 as never)).toThrow(
      /^shutdown options must be an object, got number 5000$/,
    );
    expect(() => checkShutdownOptions(null as never)).toThrow(
      /^shutdown options must be an object, got null$/,
    );
  });

  it('refuses a maxQueueBytes that is no finite positive number, a numeric string too', () => {
    for (const value of [Number.POSITIVE_INFINITY, Number.NaN, -1, '1000'])
      expect(() => resolveStreamOptions({ maxQueueBytes: value as number }), String(value)).toThrow(
        /^maxQueueBytes must be a positive number$/,
      );
    expect(() => resolveStreamOptions({ maxQueueBytes: 1 })).not.toThrow();
  });

  it('takes every value it names for bareValues and onInvalidMessage, the defaults set explicitly too', () => {
    for (const bareValues of ['refuse', 'data'] as const)
      expect(() => resolveStreamOptions({ bareValues }), bareValues).not.toThrow();
    for (const onInvalidMessage of ['skip', 'close'] as const)
      expect(() => resolveStreamOptions({ onInvalidMessage }), onInvalidMessage).not.toThrow();
  });

  it('refuses null for a callback or for metrics, and metrics missing any hook but refused and failed, naming it', () => {
    const bad = (options: unknown) => () => resolveStreamOptions(options as StreamOptions);
    for (const name of ['errorEvent', 'onClose', 'onError'])
      expect(bad({ [name]: null })).toThrow(new RegExp(`^${name} must be a function, got null$`));
    for (const value of [null, false, 0, ''])
      expect(bad({ metrics: value }), String(value)).toThrow(
        /^metrics must be an object with the StreamMetrics hooks, got /,
      );
    const { metrics } = recordMetrics();
    for (const hook of ['opened', 'wrote', 'heartbeat', 'dropped', 'closed'])
      expect(bad({ metrics: { ...metrics, [hook]: undefined } })).toThrow(
        new RegExp(`^metrics\\.${hook} must be a function, got undefined$`),
      );
  });

  it('refuses header overrides no response can carry when the route is set up, naming them', () => {
    const bad = (headers: Record<string, string | null>) => () => resolveStreamOptions({ headers });
    expect(bad({ 'X-Ok': 'a\tb é', 'X-Powered-By': null, "!#$%&'*+-.^_`|~09az": '' })).not.toThrow();
    expect(bad({ 'X-Split': 'a\r\nSet-Cookie: x=1' })).toThrow(/^headers\['X-Split'\]: the value/);
    expect(bad({ 'X-Nul': 'a\0' })).toThrow(TypeError);
    expect(bad({ 'X-Euro': '\u20ac' })).toThrow(TypeError);
    expect(bad({ 'Bad Name': 'x' })).toThrow(/^headers\['Bad Name'\]: the name/);
    expect(bad({ '': 'x' })).toThrow(TypeError);
    expect(bad({ 'X-Number': 1 as unknown as string })).toThrow(TypeError);
    expect(bad({ 'Transfer-Encoding': 1 as unknown as string })).toThrow(
      /^headers\['Transfer-Encoding'\]: the value must be null or a string/,
    );
  });

  it('refuses header overrides that would corrupt the stream when the route is set up, naming them', () => {
    const bad = (headers: Record<string, string | null>) => () => resolveStreamOptions({ headers });
    const fine = { 'Content-Type': 'text/event-stream; charset=utf-8', 'Transfer-Encoding': 'chunked' };
    expect(bad({ ...fine, 'Content-Length': null, 'Content-Encoding': null })).not.toThrow();
    // A coding's name is case-insensitive (RFC 9112): the transport's own framing still.
    expect(bad({ 'Transfer-Encoding': 'Chunked' })).not.toThrow();
    // A client reads only that many bytes, and the rest as the next response.
    expect(bad({ 'Content-Length': '12' })).toThrow(
      /^headers\['Content-Length'\]: the transport frames and encodes the stream, this cannot be set$/,
    );
    expect(bad({ 'transfer-encoding': 'identity' })).toThrow(TypeError);
    // The bytes are not encoded: a client would fail to decode them.
    expect(bad({ 'Content-Encoding': 'gzip' })).toThrow(/^headers\['Content-Encoding'\]: /);
    // EventSource fails the connection for good on any other type.
    expect(bad({ 'Content-Type': 'application/json' })).toThrow(
      /^headers\['Content-Type'\]: must be text\/event-stream in lowercase, with no parameter but charset=utf-8$/,
    );
    expect(bad({ 'content-type': null })).toThrow(/^headers\['content-type'\]: must be text\/event-stream/);
    expect(bad({ 'Content-Type': 'text/event-streams' })).toThrow(/^headers\['Content-Type'\]: must be/);
    // eventsource 4 compares the type case-sensitively, and every client decodes the stream as UTF-8.
    expect(bad({ 'Content-Type': 'TEXT/EVENT-STREAM' })).toThrow(/^headers\['Content-Type'\]: must be/);
    expect(bad({ 'Content-Type': 'Text/Event-Stream; charset=utf-8' })).toThrow(/must be/);
    expect(bad({ 'Content-Type': 'text/event-stream; charset=utf-16' })).toThrow(/must be/);
    expect(bad({ 'Content-Type': 'text/event-stream; charset=iso-8859-1' })).toThrow(/must be/);
    expect(bad({ 'Content-Type': 'text/event-stream; boundary=x' })).toThrow(/must be/);
    for (const type of [
      'text/event-stream',
      'text/event-stream;',
      'text/event-stream; charset=utf-8',
      'text/event-stream;charset=UTF-8',
      'text/event-stream; charset="utf-8"',
      // Whitespace may come before a parameter's semicolon (RFC 9110's OWS).
      'text/event-stream ; charset=utf-8',
      'text/event-stream\t;charset=utf-8',
    ])
      expect(bad({ 'Content-Type': type }), type).not.toThrow();
  });

  it('keeps the header overrides it checked when the route was set up, whatever changes in them later', () => {
    const headers: Record<string, string | null> = { 'X-Route': 'a' };
    const options = resolveStreamOptions({ heartbeat: false, headers });
    headers['Content-Length'] = '12';
    headers['X-Route'] = 'a\r\nSet-Cookie: x=1';
    const sink = new MemorySink();
    streamEvents(NEVER, sink, options).close();
    const sent = Object.fromEntries(Object.entries(sink.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    expect(sent['content-length']).toBeUndefined();
    expect(sent['x-route']).toBe('a');
  });

  it('closes a whole group with a spread retry hint and waits for the flush', async () => {
    const group = new StreamGroup();
    const options = resolveStreamOptions({ heartbeat: false, group });
    const sinks = [new MemorySink(), new MemorySink(), new MemorySink()];
    for (const sink of sinks) streamEvents(NEVER, sink, options);
    expect(group.size).toBe(3);
    await group.close({ retry: 1000, spread: 500 });
    expect(group.size).toBe(0);
    for (const sink of sinks) {
      expect(sink.ended).toBe(true);
      const retry = Number(/^retry: (\d+)\n\n$/.exec(sink.text)?.[1]);
      expect(retry).toBeGreaterThanOrEqual(1000);
      expect(retry).toBeLessThanOrEqual(1500);
    }
  });

  it('refuses a retry hint the wire cannot carry before close touches the stream', () => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream, reasons } = run(subject);
    for (const hint of [1.5, -1, 2 ** 31, Number.NaN]) {
      expect(() => stream.close('shutdown', hint)).toThrow(SseRangeError);
    }
    expect(stream.closeReason).toBeUndefined();
    subject.next({ data: 'still open' });
    stream.close('shutdown', 1000);
    expect(reasons).toEqual(['shutdown']);
    expect(sink.ended).toBe(true);
    expect(sink.text).toBe('data: still open\n\nretry: 1000\n\n');
  });

  it('destroys what has not flushed when the shutdown deadline passes', async () => {
    const group = new StreamGroup();
    const stuck = new MemorySink();
    stuck.end = () => {
      stuck.ended = true; // never flushes
    };
    streamEvents(NEVER, stuck, { heartbeat: false, group });
    await group.close({ deadline: 20 });
    expect(stuck.ended).toBe(true);
    expect(stuck.destroyed).toBe(true);
  });

  it('destroys what has not flushed only once the deadline passed, 5 s by default', async () => {
    vi.useFakeTimers();
    try {
      for (const [options, deadline] of [
        [{ deadline: 1000 }, 1000],
        [{}, 5000],
      ] as const) {
        const group = new StreamGroup();
        const stuck = new MemorySink();
        stuck.end = () => {
          stuck.ended = true; // never flushes
        };
        streamEvents(NEVER, stuck, { heartbeat: false, group });
        let closed = false;
        const closing = group.close(options).then(() => {
          closed = true;
        });
        await vi.advanceTimersByTimeAsync(deadline - 1);
        expect(stuck.ended).toBe(true);
        expect(stuck.destroyed).toBe(false);
        expect(closed).toBe(false);
        await vi.advanceTimersByTimeAsync(1);
        await closing;
        expect(stuck.destroyed).toBe(true);
      }
    } finally {
      vi.useRealTimers();
    }
  });

  it('counts each open stream of a group in allStreams, until its last one ends', () => {
    const group = new StreamGroup();
    const before = allStreams.size;
    const first = run(NEVER, { group });
    const second = run(NEVER, { group });
    expect(allStreams.size).toBe(before + 2);
    first.sink.disconnect();
    expect(allStreams.size).toBe(before + 1);
    second.sink.disconnect();
    expect(allStreams.size).toBe(before);
  });

  it("counts a stream once in allStreams, though its server's group holds it too", () => {
    const group = new StreamGroup();
    const server = serverStreams({});
    const before = allStreams.size;
    const sink = new MemorySink();
    streamEvents(NEVER, sink, { heartbeat: false, group }, undefined, server);
    expect(group.size).toBe(1);
    expect(server.size).toBe(1);
    expect(allStreams.size).toBe(before + 1);
    sink.disconnect();
    expect(server.size).toBe(0);
    expect(allStreams.size).toBe(before);
  });

  it('keeps one value per name for the whole process: a copy of rxsse that made it first is found', () => {
    const key = Symbol.for('rxsse.test.processWide');
    const shared = globalThis as Record<symbol, unknown>;
    const first = { copy: 'first' };
    shared[key] = first;
    try {
      const make = vi.fn(() => ({ copy: 'second' }));
      expect(processWide('test.processWide', make)).toBe(first);
      expect(processWide('test.processWide', make)).toBe(first);
      expect(make).not.toHaveBeenCalled();
    } finally {
      delete shared[key];
    }
  });

  it("closes every group though one group's close throws at once, then rejects with that failure", async () => {
    const failure = new Error('close failed');
    class Broken extends StreamGroup {
      override close(): Promise<void> {
        throw failure;
      }
    }
    const group = new StreamGroup();
    const { reasons } = run(NEVER, { group });
    await expect(closeEach([new Broken(), group], {})).rejects.toBe(failure);
    expect(reasons).toEqual(['shutdown']);
  });

  it('adds up the bytes queued in every group in allStreams', async () => {
    const before = allStreams.queuedBytes;
    const subjects = [new Subject<MessageEvent>(), new Subject<MessageEvent>()];
    const runs = subjects.map((subject) => run(subject, { group: new StreamGroup() }));
    for (const { sink } of runs) sink.full = true;
    // The first event fills each transport; the next waits in its queue.
    for (const subject of subjects) subject.next({ data: 'first' });
    await Promise.resolve();
    subjects[0]!.next({ data: 'x'.repeat(10) });
    subjects[1]!.next({ data: 'x'.repeat(20) });
    expect(allStreams.queuedBytes - before).toBe(18 + 28);
    for (const { sink } of runs) sink.disconnect();
    expect(allStreams.queuedBytes).toBe(before);
  });

  it('turns away a stream that begins while its group closes, its source never subscribed', async () => {
    const group = new StreamGroup();
    const stuck = new MemorySink();
    stuck.end = () => {
      stuck.ended = true; // never flushes: the close waits for its deadline
    };
    streamEvents(NEVER, stuck, { heartbeat: false, group });
    const closed = group.close({ retry: 3000, deadline: 20 });
    let subscribed = false;
    const late = run(
      new Observable<MessageEvent>(() => {
        subscribed = true;
      }),
      { group },
    );
    expect(late.reasons).toEqual(['shutdown']);
    expect(subscribed).toBe(false);
    expect(late.sink.headers?.connection).toBe('close');
    expect(late.sink.text).toBe('retry: 3000\n\n');
    expect(group.size).toBe(0);
    await closed;
  });

  it("turns away a stream that begins while its server closes, though its route's group does not", () => {
    const server = new StreamGroup();
    let stopped!: () => void;
    // The server stopped listening and is closing its connections: its group says so until then.
    server.closeUntil(
      new Promise<void>((resolve) => {
        stopped = resolve;
      }),
    );
    const group = new StreamGroup();
    let subscribed = false;
    const sink = new MemorySink();
    const reasons: CloseReason[] = [];
    const source = new Observable<MessageEvent>(() => {
      subscribed = true;
    });
    streamEvents(
      source,
      sink,
      { heartbeat: false, group, onClose: (reason) => reasons.push(reason) },
      undefined,
      server,
    );
    // A stream begun now would escape the server's shutdown and hold it open.
    expect([reasons, subscribed, sink.headers?.connection]).toEqual([['shutdown'], false, 'close']);
    expect([group.size, server.size]).toEqual([0, 0]);
    stopped();
  });

  it('no longer turns streams away once the server close it waited for failed', async () => {
    const server = new StreamGroup();
    let failed!: (error: Error) => void;
    server.closeUntil(
      new Promise<void>((_, reject) => {
        failed = reject;
      }),
    );
    expect(server.closing).toBe(true);
    // The server's close() failed (it was not listening): its streams must not be turned away for good.
    failed(new Error('server is not running'));
    await tick();
    expect(server.closing).toBe(false);
  });

  it("answers a HEAD with its GET's headers and no body, counted as a stream that completed, while nothing closes", () => {
    const sink = new MemorySink();
    const reasons: CloseReason[] = [];
    answerHeadEventStream(sink, { group: new StreamGroup(), onClose: (reason) => reasons.push(reason) });
    expect(reasons).toEqual(['complete']);
    expect(sink.headers?.['content-type']).toBe('text/event-stream');
    expect(sink.headers?.connection).not.toBe('close');
    expect(sink.text).toBe('');
  });

  it('counts a HEAD whose client is gone as its GET is then, closed by the client', () => {
    const group = new StreamGroup();
    const reasons: CloseReason[] = [];
    for (const sink of [new MemorySink(), new MemorySink()]) {
      sink.disconnect();
      if (reasons.length === 0)
        answerHeadEventStream(sink, { group, onClose: (reason) => reasons.push(reason) });
      else streamEvents(NEVER, sink, { group, onClose: (reason) => reasons.push(reason) });
      expect(sink.text).toBe('');
    }
    expect(reasons).toEqual(['client', 'client']);
  });

  it('answers a HEAD while its group closes as the GET turned away then: Connection: close, counted as a shutdown', async () => {
    const group = new StreamGroup();
    const stuck = new MemorySink();
    stuck.end = () => {
      stuck.ended = true;
    };
    streamEvents(NEVER, stuck, { heartbeat: false, group });
    const closed = group.close({ retry: 3000, deadline: 20 });
    const sink = new MemorySink();
    const reasons: CloseReason[] = [];
    answerHeadEventStream(sink, { group, onClose: (reason) => reasons.push(reason) });
    expect(reasons).toEqual(['shutdown']);
    expect(sink.headers?.connection).toBe('close');
    expect(sink.text).toBe('');
    await closed;
  });

  it.each([
    ['an Observable', () => NEVER],
    [
      'an AsyncIterable',
      () => ({ [Symbol.asyncIterator]: () => ({ next: () => new Promise<never>(() => {}) }) }),
    ],
  ])(
    "holds a stream of %s in its server's group as in its route's, so the server's close ends it",
    async (_, make) => {
      const server = new StreamGroup();
      const own = new StreamGroup();
      const sink = new MemorySink();
      const reasons: CloseReason[] = [];
      const onClose = (reason: CloseReason) => reasons.push(reason);
      streamEvents(
        make() as EventSourceLike<MessageEvent>,
        sink,
        { heartbeat: false, group: own, onClose },
        undefined,
        server,
      );
      expect([server.size, own.size]).toEqual([1, 1]);
      await server.close({ deadline: 1000 });
      expect(reasons).toEqual(['shutdown']);
      expect([server.size, own.size]).toEqual([0, 0]);
    },
  );

  it("turns a request away with the hint of its server's shutdown, over its route's retry", async () => {
    const server = new StreamGroup();
    const stuck = new MemorySink();
    stuck.end = () => {
      stuck.ended = true;
    };
    streamEvents(NEVER, stuck, { heartbeat: false }, undefined, server);
    const closed = server.close({ retry: 7000, deadline: 20 });
    const sink = new MemorySink();
    turnAwayEventStream(sink, { retry: 1000, group: new StreamGroup() }, undefined, undefined, server);
    expect(sink.text).toBe('retry: 7000\n\n');
    await closed;
  });

  it("turns a request away with its route's retry when the shutdown sets none, and with no hint when neither does", async () => {
    const group = new StreamGroup();
    const stuck = new MemorySink();
    stuck.end = () => {
      stuck.ended = true;
    };
    streamEvents(NEVER, stuck, { heartbeat: false, group });
    const closed = group.close({ deadline: 20 });
    const hinted = run(NEVER, { group, retry: 1000 });
    expect(hinted.reasons).toEqual(['shutdown']);
    expect(hinted.sink.text).toBe('retry: 1000\n\n');
    const bare = run(NEVER, { group });
    expect(bare.reasons).toEqual(['shutdown']);
    expect(bare.sink.text).toBe('');
    await closed;
  });

  it('types routes by their event map', () => {
    type Events = { tick: { n: number }; message: string };
    expectTypeOf<{ type: 'tick'; data: { n: number } }>().toExtend<TypedMessageEvent<Events>>();
    expectTypeOf<{ data: string }>().toExtend<TypedMessageEvent<Events>>();
    expectTypeOf<{ type: 'tick'; data: string }>().not.toExtend<TypedMessageEvent<Events>>();
    expectTypeOf<{ type: 'other'; data: string }>().not.toExtend<TypedMessageEvent<Events>>();
  });
});
