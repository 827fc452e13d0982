/**
 * Whatever happens to a stream (a client that fills, drains, reads part or leaves; drops under each
 * overflow policy; messages the encoder or a serialize refuses; stall, lifetime, heartbeats; a
 * shutdown, destroy(), a source that completes or fails; a sink that throws; hooks that end the
 * stream or send into it), its accounting adds up: onClose and the metrics' closed hook are told
 * once, with the same stats, final from then on; the hooks sum to the stats; the sink got exactly
 * the bytes counted; and every message the source handed the open stream was sent, dropped or
 * refused, once.
 */
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeChunks, parseWithLibrary } from '../../../test/wire/parsers.js';
import { SOURCE_GAP_EVENT } from '../src/http/source-gap.js';
import {
  type CloseReason,
  type EventStream,
  type MessageEvent,
  StreamGroup,
  type StreamStats,
  streamEvents,
} from '../src/index.js';
import { MemorySink } from '../src/testing/index.js';
import { dataOf, type SizedData, sizedData } from './sized-data.js';

type Step =
  | { emit: SizedData & { invalid: boolean } }
  | { sink: 'full' | 'drain once' | 'release' | 'micro' | 'beat' }
  | { read: number }
  | { advance: number }
  | { end: 'complete' | 'error' | 'destroy' | 'disconnect' | 'group close' | 'close' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.record({
      emit: fc.record({
        ...sizedData,
        invalid: fc.oneof(
          { weight: 8, arbitrary: fc.constant(false) },
          { weight: 1, arbitrary: fc.constant(true) },
        ),
      }),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.constantFrom('full', 'drain once', 'release', 'micro', 'beat').map((sink) => ({ sink })),
  },
  { weight: 1, arbitrary: fc.record({ read: fc.integer({ min: 1, max: 5000 }) }) },
  { weight: 2, arbitrary: fc.record({ advance: fc.integer({ min: 0, max: 3000 }) }) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('complete', 'error', 'destroy', 'disconnect', 'group close', 'close')
      .map((end) => ({ end }) as Step),
  },
);

const config = fc.record({
  iterable: fc.boolean(),
  cap: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 30, max: 3000 }) },
    { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 200_000 }) },
  ),
  gap: fc.boolean(),
  throwsOn: fc.constantFrom(undefined, 'serialize', 'write'),
  hook: fc.option(
    fc.record({
      on: fc.constantFrom('opened', 'wrote', 'dropped', 'refused', 'heartbeat', 'serialize', 'onError'),
      at: fc.integer({ min: 1, max: 4 }),
      action: fc.constantFrom(
        'destroy',
        'group close',
        'disconnect',
        'close',
        'emit',
        'full',
        'complete',
        'error',
        'release',
      ),
    }),
    { nil: undefined },
  ),
  onOverflow: fc.constantFrom('close', 'drop-oldest', 'drop-newest'),
  onInvalidMessage: fc.constantFrom('skip', 'close'),
  stallTimeout: fc.constantFrom<number | false>(500, 2000, false),
  maxLifetime: fc.constantFrom(undefined, 3000),
  heartbeat: fc.constantFrom<number | false>(false, 1000),
  retry: fc.constantFrom(undefined, 1500),
  errorEvent: fc.boolean(),
});

class WatchedSink extends MemorySink {
  after = 0;
  writes = 0;
  throwAt = 0;
  override write(chunk: Uint8Array) {
    if (this.ended || this.destroyed) this.after++;
    if (++this.writes === this.throwAt) throw new Error('sink broke');
    return super.write(chunk);
  }
}

/** An AsyncIterable the test feeds: it counts the messages it handed to a stream that was open. */
function feedable(open: () => boolean) {
  const buffer: MessageEvent[] = [];
  let waiting:
    | { resolve: (r: IteratorResult<MessageEvent>) => void; reject: (e: unknown) => void }
    | undefined;
  let done: { error?: unknown } | undefined;
  let handed = 0;
  // Counted as the stream gets it: this reaction runs just before the stream's own.
  const counted = (p: Promise<IteratorResult<MessageEvent>>) => {
    p.then(
      (r) => {
        if (!r.done && open()) handed++;
      },
      () => {},
    );
    return p;
  };
  const iterator: AsyncIterator<MessageEvent> & AsyncIterable<MessageEvent> = {
    next() {
      if (buffer.length > 0) return counted(Promise.resolve({ value: buffer.shift()!, done: false }));
      if (done)
        return done.error ? Promise.reject(done.error) : Promise.resolve({ value: undefined, done: true });
      return counted(
        new Promise((resolve, reject) => {
          waiting = { resolve, reject };
        }),
      );
    },
    return() {
      done = {};
      const w = waiting;
      waiting = undefined;
      w?.resolve({ value: undefined, done: true });
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return {
    iterator,
    handed: () => handed,
    push(message: MessageEvent) {
      if (done) return;
      const w = waiting;
      if (w) {
        waiting = undefined;
        w.resolve({ value: message, done: false });
      } else buffer.push(message);
    },
    end(error?: unknown) {
      if (done) return;
      done = { error };
      const w = waiting;
      waiting = undefined;
      if (!w) return;
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    },
  };
}

type Config = typeof config extends fc.Arbitrary<infer T> ? T : never;

async function runOnce(c: Config, steps: Step[]) {
  const sink = new WatchedSink();
  const group = new StreamGroup();
  const calls: string[] = [];
  const closes: { reason: CloseReason; stats: StreamStats }[] = [];
  const closedHook: { reason: CloseReason; stats: StreamStats }[] = [];
  let wroteEvents = 0;
  let wroteBytes = 0;
  let heartbeats = 0;
  let dropped = 0;
  let refused = 0;
  let stream: EventStream | undefined;
  const open = () => stream === undefined || stream.closeReason === undefined;
  const subject = new Subject<MessageEvent>();
  const iterable = feedable(open);
  let handedObs = 0;
  if (c.throwsOn === 'write') sink.throwAt = 3;
  const emitted: string[] = [];
  let n = 0;
  const emit = (data: string, invalid: boolean) => {
    const id = `m${n++}`;
    const bad = invalid && c.throwsOn === 'serialize';
    const message: MessageEvent =
      invalid && !bad ? { id, type: 'bad\ntype', data: { v: data } } : { id, data: { v: data, bad } };
    emitted.push(data);
    if (c.iterable) iterable.push(message);
    else {
      if (open()) handedObs++;
      subject.next(message);
    }
  };
  const fired = new Map<string, number>();
  const fire = (on: string) => {
    const hook = c.hook;
    if (hook === undefined || hook.on !== on) return;
    const count = (fired.get(on) ?? 0) + 1;
    fired.set(on, count);
    if (count !== hook.at) return;
    act(hook.action);
  };
  const act = (action: string) => {
    if (action === 'destroy') stream?.destroy();
    else if (action === 'group close') void group.close({ deadline: 1000 });
    else if (action === 'disconnect') sink.disconnect();
    else if (action === 'close') stream?.close();
    else if (action === 'emit') emit('hooked', false);
    else if (action === 'full') sink.full = true;
    else if (action === 'release') sink.release();
    else if (action === 'complete') c.iterable ? iterable.end() : subject.complete();
    else if (action === 'error')
      c.iterable ? iterable.end(new Error('boom')) : subject.error(new Error('boom'));
  };
  const source = c.iterable
    ? iterable.iterator
    : c.gap
      ? Object.assign(subject.asObservable(), {
          [SOURCE_GAP_EVENT]: (lastEventId: string | null) => ({ type: 'gap', data: String(lastEventId) }),
        })
      : subject;
  stream = streamEvents(source, sink, {
    serialize: (data: unknown) => {
      fire('serialize');
      const d = data as { v: string; bad?: boolean };
      if (d.bad) throw new Error('cannot serialize');
      return d.v;
    },
    group,
    maxQueueBytes: c.cap,
    onOverflow: c.onOverflow,
    onInvalidMessage: c.onInvalidMessage,
    stallTimeout: c.stallTimeout,
    maxLifetime: c.maxLifetime,
    heartbeat: c.heartbeat,
    retry: c.retry,
    errorEvent: c.errorEvent ? () => ({ type: 'failed', data: 'bye' }) : undefined,
    onError: () => fire('onError'),
    onClose: (reason, stats) => closes.push({ reason, stats: { ...stats } }),
    metrics: {
      opened: () => {
        calls.push('opened');
        fire('opened');
      },
      wrote: (events, bytes) => {
        calls.push('wrote');
        wroteEvents += events;
        wroteBytes += bytes;
        fire('wrote');
      },
      heartbeat: () => {
        calls.push('heartbeat');
        heartbeats++;
        fire('heartbeat');
      },
      dropped: (count) => {
        calls.push('dropped');
        dropped += count;
        fire('dropped');
      },
      refused: () => {
        calls.push('refused');
        refused++;
        fire('refused');
      },
      closed: (reason, stats) => {
        calls.push('closed');
        closedHook.push({ reason, stats: { ...stats } });
      },
    },
  });
  for (const s of steps) {
    if ('emit' in s) {
      emit(dataOf(s.emit, c.cap), s.emit.invalid);
    } else if ('sink' in s) {
      if (s.sink === 'full') sink.full = true;
      else if (s.sink === 'drain once') sink.drainOnce();
      else if (s.sink === 'release') sink.release();
      else if (s.sink === 'beat') stream.beat();
      else for (let i = 0; i < 5; i++) await Promise.resolve();
    } else if ('read' in s) sink.read(s.read);
    else if ('advance' in s) await vi.advanceTimersByTimeAsync(s.advance);
    else act(s.end);
  }
  for (let i = 0; i < 5; i++) await Promise.resolve();
  // Whatever is still open ends: the client leaves, and every timer runs out.
  sink.disconnect();
  await vi.advanceTimersByTimeAsync(10_000);

  const stats = stream.stats;
  expect(closes.length).toBe(1);
  expect(closedHook.length).toBe(1);
  expect(closedHook[0]!.reason).toBe(closes[0]!.reason);
  expect(closedHook[0]!.stats).toEqual(closes[0]!.stats);
  expect({ ...stats }).toEqual(closes[0]!.stats);
  expect(calls[0]).toBe('opened');
  expect(calls.filter((x) => x === 'opened').length).toBe(1);
  expect(calls.filter((x) => x === 'closed').length).toBe(1);
  expect(wroteEvents).toBe(stats.events);
  expect(wroteBytes).toBe(stats.bytes);
  expect(sink.chunks.reduce((a, b) => a + b.length, 0)).toBe(stats.bytes);
  expect(heartbeats).toBe(stats.heartbeats);
  expect(dropped).toBe(stats.dropped);
  expect(refused).toBe(stats.refused);
  expect(stats.peakQueuedBytes).toBeLessThanOrEqual(c.cap);
  expect(sink.after).toBe(0);
  expect(group.size).toBe(0);
  expect(group.queuedBytes).toBe(0);
  const parsed = parseWithLibrary(decodeChunks(sink.chunks));
  // The stream's own events (error and gap events) count as sent, never as the source's.
  const own = parsed.events.filter((e) => e.type === 'failed' || e.type === 'gap').length;
  const sent = parsed.events.filter((e) => e.type === 'message');
  expect(sent.length + own).toBe(stats.events);
  const handed = c.iterable ? iterable.handed() : handedObs;
  expect(handed).toBe(sent.length + stats.dropped + stats.refused);
  // Sent in order, each once.
  let at = 0;
  for (const e of sent) {
    const idx = Number(e.lastEventId.slice(1));
    expect(idx).toBeGreaterThanOrEqual(at);
    expect(e.data).toBe(emitted[idx]);
    at = idx + 1;
  }
}

describe('a stream, whatever its source, client, hooks and end', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  it('counts every message sent, dropped or refused once, and tells metrics and onClose the same final stats', async () => {
    await fc.assert(
      fc.asyncProperty(config, fc.array(step, { maxLength: 40, size: 'max' }), async (c, steps) => {
        await runOnce(c, steps);
      }),
      { numRuns: 300, seed: 1 },
    );
  });
});
