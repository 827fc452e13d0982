/**
 * A slow client on a route that drops events is told where, whatever the order of events, drains
 * and ticks: it receives the emitted events in order, each whole and once, and exactly one gap
 * event in each hole, carrying the id of the last event it received before the hole. Gap events the
 * source sends itself carry that id too, wherever drops leave them.
 */
import fc from 'fast-check';
import { Observable, Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { decodeChunks, parseWithLibrary } from '../../../test/wire/parsers.js';
import { formatEvent } from '../src/encode/format.js';
import { utf8Length } from '../src/encode/utf8.js';
import {
  SOURCE_GAP_EVENT,
  SUBSCRIBER_GAP_EVENT,
  type WithSubscriberGapEvent,
} from '../src/http/source-gap.js';
import { type MessageEvent, type OverflowPolicy, streamEvents } from '../src/index.js';
import { MemorySink } from '../src/testing/index.js';
import { dataOf, type SizedData, sizedData } from './sized-data.js';

type Step =
  | { emit: SizedData & { named: boolean } }
  | { sink: 'full' | 'drain once' | 'release' | 'tick' }
  | { read: number }
  | { own: true };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      emit: fc.record({
        ...sizedData,
        // Some events set no id: the client's last event id stays that of an earlier one.
        named: fc.oneof(
          { weight: 3, arbitrary: fc.constant(true) },
          { weight: 1, arbitrary: fc.constant(false) },
        ),
      }),
    }),
  },
  { weight: 2, arbitrary: fc.constantFrom('full', 'tick').map((sink) => ({ sink })) },
  { weight: 1, arbitrary: fc.constantFrom('drain once', 'release').map((sink) => ({ sink })) },
  { weight: 1, arbitrary: fc.record({ read: fc.integer({ min: 1, max: 200_000 }) }) },
);

/** With gap events of the source's own among the steps. */
const stepOrOwn: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: step },
  { weight: 1, arbitrary: fc.constant({ own: true as const }) },
);

const cap = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 40, max: 2000 }) },
  // Queues of more than one 64 KiB chunk, which a drain takes part of.
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 200_000 }) },
);

const gapEvent = (lastEventId: string | null): MessageEvent => ({ type: 'gap', data: String(lastEventId) });
const ownEvent = (lastEventId: string | null): MessageEvent => ({ type: 'own', data: String(lastEventId) });

interface Run {
  emitted: { id?: string; data: string }[];
  /** Where the source sent gap events of its own: after this many of the emitted events. */
  owned: number[];
  refused: number;
  received: { type: string; data: string; lastEventId: string }[];
  stats: { dropped: number; peakQueuedBytes: number; refused: number };
}

async function play(
  policy: OverflowPolicy,
  maxQueueBytes: number,
  steps: Step[],
  withGap = true,
): Promise<Run> {
  const subject = new Subject<MessageEvent>();
  let subscriber: WithSubscriberGapEvent | undefined;
  const observable = new Observable<MessageEvent>((s) => {
    subscriber = s as WithSubscriberGapEvent;
    return subject.subscribe(s);
  });
  const source = withGap ? Object.assign(observable, { [SOURCE_GAP_EVENT]: gapEvent }) : subject;
  const sink = new MemorySink();
  const stream = streamEvents(source, sink, {
    heartbeat: false,
    stallTimeout: false,
    onOverflow: policy,
    maxQueueBytes,
    onError: () => {},
  });
  const emitted: Run['emitted'] = [];
  const owned: number[] = [];
  let refused = 0;
  for (const s of steps) {
    if ('emit' in s) {
      const n = emitted.length + refused;
      const data = `${n}:${dataOf(s.emit, maxQueueBytes)}`;
      const message = s.emit.named ? { id: `e${n}`, data } : { data };
      if (utf8Length(formatEvent(message)) > maxQueueBytes) refused++;
      else emitted.push(message);
      subject.next(message);
    } else if ('own' in s) {
      owned.push(emitted.length);
      expect(subscriber?.[SUBSCRIBER_GAP_EVENT]?.(ownEvent)).toBe(true);
    } else if ('read' in s) sink.read(s.read);
    else if (s.sink === 'full') sink.full = true;
    else if (s.sink === 'drain once') sink.drainOnce();
    else if (s.sink === 'release') sink.release();
    else await Promise.resolve();
  }
  subject.complete();
  sink.release();
  const received = parseWithLibrary(decodeChunks(sink.chunks)).events;
  expect(stream.closeReason).toBe(policy === 'close' && stream.stats.dropped > 0 ? 'overflow' : 'complete');
  return { emitted, owned, refused, received, stats: stream.stats };
}

/** Checks what a client relies on; returns the number of gap events received. */
function check({ emitted, owned, refused, received, stats }: Run, maxQueueBytes: number): number {
  // A gap event of the stream's may stand for the source's own ones it dropped, which told a hole.
  const told = (from: number, to: number) => to > from + 1 || owned.some((at) => at > from && at <= to);
  const index = new Map(emitted.map((message, i) => [message.data, i]));
  let last = -1;
  // Since the last event: a gap event of the stream's, or any (the source's own too).
  let gapBefore = false;
  let toldBefore = false;
  let gaps = 0;
  let sent = 0;
  for (const event of received) {
    if (event.type === 'gap' || event.type === 'own') {
      if (event.type === 'gap') expect(toldBefore, 'two gap events with no event between').toBe(false);
      // The client's last event id here: that of the last event received with one, if any.
      expect(event.data, 'the gap event names the last event id received').toBe(event.lastEventId || 'null');
      gapBefore ||= event.type === 'gap';
      toldBefore = true;
      gaps++;
      continue;
    }
    const i = index.get(event.data);
    expect(i, `${event.data.slice(0, 9)} was emitted, and received once, in order`).toBeGreaterThan(last);
    const missing = i! > last + 1;
    expect(gapBefore && !told(last, i!), `a gap event before ${event.data.slice(0, 9)}, no hole`).toBe(false);
    expect(missing && !toldBefore, `events missing before ${event.data.slice(0, 9)}, untold`).toBe(false);
    gapBefore = toldBefore = false;
    last = i!;
    sent++;
  }
  const missing = last < emitted.length - 1;
  expect(gapBefore && !told(last, emitted.length), 'a gap event at the end, no hole').toBe(false);
  expect(missing && !toldBefore, 'events missing at the end, untold').toBe(false);
  expect(stats.dropped).toBe(emitted.length - sent);
  expect(stats.refused).toBe(refused);
  expect(stats.peakQueuedBytes).toBeLessThanOrEqual(maxQueueBytes);
  return gaps;
}

describe('the gap event of a route that drops events', () => {
  it.each(['drop-oldest', 'drop-newest'] as const)(
    'tells a %s client of each hole once, after the last event before it, with its id',
    async (policy) => {
      await fc.assert(
        fc.asyncProperty(
          cap,
          fc.array(stepOrOwn, { minLength: 10, maxLength: 80, size: 'max' }),
          async (maxQueueBytes, steps) => {
            check(await play(policy, maxQueueBytes, steps), maxQueueBytes);
          },
        ),
        { numRuns: 500 },
      );
    },
  );

  it('sends no gap event with the close policy, nor for a source without one', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<OverflowPolicy>('close', 'drop-oldest', 'drop-newest'),
        cap,
        fc.array(step, { maxLength: 40 }),
        async (policy, maxQueueBytes, steps) => {
          const run = await play(policy, maxQueueBytes, steps, policy === 'close');
          expect(run.received.filter((event) => event.type === 'gap')).toEqual([]);
          const received = run.received.map((event) => event.data);
          const order = received.map((data) => run.emitted.findIndex((message) => message.data === data));
          expect(order).toEqual([...order].sort((a, b) => a - b));
          expect(new Set(order).size).toBe(order.length);
          expect(order).not.toContain(-1);
          if (policy !== 'close') expect(run.stats.dropped).toBe(run.emitted.length - received.length);
          expect(run.stats.peakQueuedBytes).toBeLessThanOrEqual(maxQueueBytes);
        },
      ),
      { numRuns: 300 },
    );
  });
});
