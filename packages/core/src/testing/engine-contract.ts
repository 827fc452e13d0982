import { afterEach, describe, expect, it } from 'vitest';
import {
  type ChannelEngine,
  type ChannelEvent,
  type ChannelSource,
  ChannelUnavailableError,
  createChannel,
  HISTORY_TRUNCATED_HEADER,
  type HistoryTruncatedEvent,
  type LiveListener,
  messageSize,
  parseStreamId,
  type StoredMessage,
  UnknownFieldError,
} from '../channel/index.js';
import type { MessageEvent } from '../encode/index.js';
import { SOURCE_HEADERS } from '../http/index.js';

/** How the shared suite gets engines of one kind. Each call is a fresh engine; the suite closes it. */
export interface EngineFixture {
  name: string;
  /** An engine keeping about `retain` events per topic (exactly, or at least, for approximate trimming). */
  create(options: { retain: number }): Promise<ChannelEngine> | ChannelEngine;
  /** Events to publish so that, with `retain: 10`, the first one is surely no longer kept. */
  overflow: number;
}

/** Subscribes to a channel's source and keeps what it emits, for assertions. */
export function recordSource(source: ChannelSource) {
  const received: ChannelEvent[] = [];
  let error: unknown;
  let completed = false;
  const subscription = source.subscribe({
    next: (event) => received.push(event),
    error: (e) => {
      error = e;
    },
    complete: () => {
      completed = true;
    },
  });
  return {
    received,
    get error() {
      return error;
    },
    /** Whether the source completed (as a channel's does when its engine closes). */
    get completed() {
      return completed;
    },
    ids: () => received.map((event) => ('id' in event ? (event as StoredMessage).id : `<${event.type}>`)),
    unsubscribe: () => subscription.unsubscribe(),
  };
}

/**
 * Polls `check` every 5 ms until it holds; rejects naming `what` after `timeout` ms. For deliveries
 * that cross a network (a real Redis), which fake timers cannot hurry.
 */
export async function until(check: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const isTruncation = (event: ChannelEvent): event is HistoryTruncatedEvent => !('id' in event);

let topicCounter = 0;
const freshTopic = () => `contract-${process.pid}-${Date.now()}-${topicCounter++}`;

/**
 * The behaviour every channel engine must have, at the engine contract and through a channel.
 * `@rxsse/core` runs it on `memoryEngine()`, `@rxsse/redis` on `redisEngine()` with a real Redis.
 */
export function describeEngineContract(fixture: EngineFixture): void {
  describe(`channel contract: ${fixture.name}`, () => {
    const engines: ChannelEngine[] = [];
    const engine = async (retain = 1000) => {
      const created = await fixture.create({ retain });
      engines.push(created);
      return created;
    };
    afterEach(async () => {
      await Promise.all(engines.splice(0).map((e) => e.close()));
    });

    const publishAll = async (store: ChannelEngine, topic: string, count: number, from = 0) => {
      const ids: string[] = [];
      for (let i = from; i < from + count; i++) ids.push(await store.append(topic, { data: `event ${i}` }));
      return ids;
    };

    describe('store', () => {
      it('assigns printable, strictly increasing stream ids', async () => {
        const store = await engine();
        const topic = freshTopic();
        const ids = await publishAll(store, topic, 50);
        for (const id of ids) expect(id).toMatch(/^\d+-\d+$/);
        for (let i = 1; i < ids.length; i++) {
          const a = parseStreamId(ids[i - 1]!)!;
          const b = parseStreamId(ids[i]!)!;
          expect(a.ms < b.ms || (a.ms === b.ms && a.seq < b.seq)).toBe(true);
        }
      });

      it('keeps a caller id after the last one, and refuses others', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const { ms } = parseStreamId(first!)!;
        const own = `${ms + 1000n}-7`;
        await expect(store.append(topic, { data: 'mine', id: own })).resolves.toBe(own);
        // A RangeError for each, whatever the store: a caller can tell an id it must change from a
        // store that is down.
        await expect(store.append(topic, { data: 'again', id: own })).rejects.toThrow(RangeError);
        await expect(store.append(topic, { data: 'older', id: first! })).rejects.toThrow(RangeError);
        await expect(store.append(topic, { data: 'bad', id: 'not-an-id' })).rejects.toThrow(RangeError);
        const page = await store.read(topic, first!, { count: 10, bytes: 1 << 20 });
        expect(page.events.map((e) => e.id)).toEqual([own]);
      });

      it('assigns an id above a caller id that is ahead of its clock, and none after the largest', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        // Days ahead: a store that takes its ids from the clock alone would hand out lower ones,
        // which every subscriber drops as duplicates of the caller's.
        const ahead = `${parseStreamId(first!)!.ms + 1_000_000_000n}-5`;
        await store.append(topic, { data: 'mine', id: ahead });
        const [next] = await publishAll(store, topic, 1);
        const [a, b] = [parseStreamId(ahead)!, parseStreamId(next!)!];
        expect(b.ms > a.ms || (b.ms === a.ms && b.seq > a.seq)).toBe(true);
        const page = await store.read(topic, ahead, { count: 10, bytes: 1 << 20 });
        expect(page.events.map((e) => e.id)).toEqual([next]);
        // No id follows the largest: an append rejects rather than store one below it.
        const full = freshTopic();
        const largest = '18446744073709551615-18446744073709551615';
        await expect(store.append(full, { data: 'last', id: largest })).resolves.toBe(largest);
        await expect(store.append(full, { data: 'past it' })).rejects.toThrow();
        expect(await store.read(full, largest, { count: 10, bytes: 1 << 20 })).toEqual({
          events: [],
          bytes: 0,
          truncated: false,
          more: false,
        });
      });

      it('refuses an own id that is no stream id, also one Redis would read otherwise, and stores nothing', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const { ms } = parseStreamId(first!)!;
        // `5` and `5-*` are ids Redis takes (as 5-0, and 5 with a sequence of its choice), a part
        // past 64 bits one it refuses as a failed command: a RangeError for each all the same.
        for (const id of [`${ms + 1000n}`, `${ms + 1000n}-*`, `18446744073709551616-0`, `${ms + 1000n}-`, ''])
          await expect(store.append(topic, { data: 'bad', id }), id).rejects.toThrow(RangeError);
        expect(await store.read(topic, first!, { count: 10, bytes: 1 << 20 })).toEqual({
          events: [],
          bytes: 0,
          truncated: false,
          more: false,
        });
      });

      it('stores an own id written with leading zeros in its plain form, as Redis does', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const { ms } = parseStreamId(first!)!;
        const plain = `${ms + 1000n}-7`;
        await expect(store.append(topic, { data: 'mine', id: `000${ms + 1000n}-007` })).resolves.toBe(plain);
        const page = await store.read(topic, first!, { count: 10, bytes: 1 << 20 });
        expect(page.events.map((e) => e.id)).toEqual([plain]);
        // A client resumes from the id it was sent: the plain one.
        expect((await store.read(topic, plain, { count: 10, bytes: 1 << 20 })).truncated).toBe(false);
      });

      it('reads after an id written with leading zeros as after its plain form, as Redis does', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first, ...rest] = await publishAll(store, topic, 3);
        const [ms, seq] = first!.split('-');
        const page = await store.read(topic, `00${ms}-00${seq}`, { count: 10, bytes: 1 << 20 });
        expect(page).toMatchObject({ truncated: false, more: false });
        expect(page.events.map((e) => e.id)).toEqual(rest);
      });

      it('refuses the own id 0-0, the one no stream id is above (Redis refuses it in XADD)', async () => {
        const store = await engine();
        const topic = freshTopic();
        // A RangeError, as for an id that is no stream id: the id alone is wrong, whatever is stored.
        await expect(store.append(topic, { data: 'zero', id: '0-0' })).rejects.toThrow(RangeError);
        // Nothing was stored: 0-0 stays an id the topic never had, and the first id is the next one.
        await expect(store.append(topic, { data: 'first', id: '0-1' })).resolves.toBe('0-1');
        expect(await store.read(topic, '0-0', { count: 10, bytes: 1 << 20 })).toMatchObject({
          truncated: true,
        });
      });

      it('reads the events after an id, in order, with their data and type', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const second = await store.append(topic, { data: 'two\nlines', type: 'note' });
        const third = await store.append(topic, { data: { user: 'ann', text: 'hé 😀' } });
        const page = await store.read(topic, first!, { count: 10, bytes: 1 << 20 });
        expect(page).toMatchObject({ truncated: false, more: false });
        expect(page.events).toEqual([
          { id: second, data: 'two\nlines', type: 'note' },
          { id: third, data: { user: 'ann', text: 'hé 😀' } },
        ]);
        expect(page.bytes).toBe(
          ['two\nlines', second, 'note', JSON.stringify({ user: 'ann', text: 'hé 😀' }), third]
            .map((s) => Buffer.byteLength(s))
            .reduce((a, b) => a + b),
        );
        const last = await store.read(topic, third, { count: 10, bytes: 1 << 20 });
        expect(last).toEqual({ events: [], bytes: 0, truncated: false, more: false });
      });

      it("keeps an event's retry, and data of every JSON kind, in history and live", async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const live: StoredMessage[] = [];
        const stop = await store.listen(topic, { event: (m) => live.push(m), gap: () => {} });
        // A replayed event without its retry would leave a resumed client on the wrong delay.
        const sent: MessageEvent<unknown>[] = [
          { data: 'wait', retry: 2500 },
          { data: '', type: 'empty', retry: 0 },
          { data: 'a\r\nb\rc' },
          { data: null },
          { data: [1, 'two', { three: false }] },
          { data: 0 },
        ];
        const ids: string[] = [];
        for (const message of sent) ids.push(await store.append(topic, message));
        const expected = sent.map((message, i) => ({ ...message, id: ids[i] }));
        const page = await store.read(topic, first!, { count: 10, bytes: 1 << 20 });
        expect(page.events).toEqual(expected);
        await until(() => live.length === sent.length, 'the live events');
        expect(live).toEqual(expected);
        stop();
      });

      it('hands out data other than a string as the JSON it was stored as, in history and live: not the object appended', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const live: StoredMessage[] = [];
        const stop = await store.listen(topic, { event: (m) => live.push(m), gap: () => {} });
        // What Redis gives back: one engine handing out the object itself would have a filter that
        // passes in development (a Date's methods, a Set's members) fail in production.
        const data = { at: new Date(0), tags: new Set(['a']), note: undefined, list: [1] };
        const id = await store.append(topic, { data });
        // With an own id in its plain form too, which an engine may store without a copy.
        const own = `${parseStreamId(id)!.ms + 1000n}-1`;
        await store.append(topic, { data, id: own });
        data.list.push(2);
        const json = { at: '1970-01-01T00:00:00.000Z', tags: {}, list: [1] };
        const expected = [
          { id, data: json },
          { id: own, data: json },
        ];
        const page = await store.read(topic, first!, { count: 10, bytes: 1 << 20 });
        expect(page.events).toEqual(expected);
        await until(() => live.length === 2, 'the live events');
        expect(live).toEqual(expected);
        stop();
      });

      it('hands out data whose JSON is a string (a Date) as a String object, whose JSON is the same', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const live: StoredMessage[] = [];
        const stop = await store.listen(topic, { event: (m) => live.push(m), gap: () => {} });
        // Streamed without a channel, each goes out as its JSON, quotes and all: a string read back
        // from that JSON would go out as it is, without them, and a client's JSON.parse would fail.
        const sent = [new Date(0), new String('a "b"'), { toJSON: () => 'c' }];
        const ids: string[] = [];
        for (const data of sent) ids.push(await store.append(topic, { data }));
        const page = await store.read(topic, first!, { count: 10, bytes: 1 << 20 });
        await until(() => live.length === sent.length, 'the live events');
        for (const events of [page.events, live]) {
          expect(events.map((event) => event.id)).toEqual(ids);
          for (const [i, event] of events.entries()) {
            expect(event.data).toBeInstanceOf(String);
            expect(JSON.stringify(event.data)).toBe(JSON.stringify(sent[i]));
          }
        }
        stop();
      });

      it("keeps an event's data, id, type and retry alone, in history and live: no other field", async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const live: StoredMessage[] = [];
        const stop = await store.listen(topic, { event: (m) => live.push(m), gap: () => {} });
        // What a channel's publish refuses, appended to the engine itself. Kept by one engine and not
        // by another, a field a filter reads would pass in development and fail in production.
        const own = `${parseStreamId(first!)!.ms + 1000n}-1`;
        const later = `${parseStreamId(first!)!.ms + 1000n}-2`;
        const sent: (MessageEvent<unknown> & Record<string, unknown>)[] = [
          { data: 'x', userId: 7 },
          // With an own id in its plain form, which an engine may store without a copy.
          { data: { to: 'ann' }, type: 'note', retry: 10, id: own, room: 'lobby' },
          // String data with an own plain id: the field is all there is to leave out.
          { data: 'y', id: later, room: 'lobby' },
        ];
        const ids: string[] = [];
        for (const message of sent) ids.push(await store.append(topic, message));
        const expected = [
          { id: ids[0], data: 'x' },
          { id: own, data: { to: 'ann' }, type: 'note', retry: 10 },
          { id: later, data: 'y' },
        ];
        const page = await store.read(topic, first!, { count: 10, bytes: 1 << 20 });
        expect(page.events).toEqual(expected);
        await until(() => live.length === sent.length, 'the live events');
        expect(live).toEqual(expected);
        stop();
      });

      it('cuts a page at the count and byte limits, saying more follows', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first, ...rest] = await publishAll(store, topic, 6);
        const byCount = await store.read(topic, first!, { count: 2, bytes: 1 << 20 });
        expect(byCount.events.map((e) => e.id)).toEqual(rest.slice(0, 2));
        expect(byCount.more).toBe(true);
        // Read on from where a page was cut, as a replay does: no event repeated, none skipped.
        const next = await store.read(topic, byCount.events.at(-1)!.id, { count: 2, bytes: 1 << 20 });
        expect(next.events.map((e) => e.id)).toEqual(rest.slice(2, 4));
        expect(next.more).toBe(true);
        const size = 'event 1'.length + rest[0]!.length;
        const byBytes = await store.read(topic, first!, { count: 10, bytes: size * 2 + 1 });
        expect(byBytes.events.length).toBeGreaterThanOrEqual(1);
        expect(byBytes.bytes).toBeLessThanOrEqual(size * 2 + 1);
        expect(byBytes.more).toBe(true);
        const afterBytes = await store.read(topic, byBytes.events.at(-1)!.id, { count: 10, bytes: 1 << 20 });
        expect(afterBytes.events.map((e) => e.id)).toEqual(rest.slice(byBytes.events.length));
        const tooSmall = await store.read(topic, first!, { count: 10, bytes: 3 });
        expect(tooSmall).toEqual({ events: [], bytes: 0, truncated: false, more: true });
        const exact = await store.read(topic, first!, { count: 5, bytes: 1 << 20 });
        expect(exact.events.map((e) => e.id)).toEqual(rest);
        expect(exact.more).toBe(false);
      });

      it('says truncated for an unknown id, a malformed id, and an id older than what is kept', async () => {
        const store = await engine(10);
        const topic = freshTopic();
        const ids = await publishAll(store, topic, fixture.overflow);
        const limit = { count: 10, bytes: 1 << 20 };
        const truncated = { events: [], bytes: 0, truncated: true, more: false };
        expect(await store.read(topic, ids[0]!, limit)).toEqual(truncated);
        expect(await store.read(topic, '1-1', limit)).toEqual(truncated);
        expect(await store.read(topic, '99999999999999-0', limit)).toEqual(truncated);
        expect(await store.read(topic, 'hello', limit)).toEqual(truncated);
        expect(await store.read(freshTopic(), ids.at(-1)!, limit)).toEqual(truncated);
        const recent = await store.read(topic, ids.at(-3)!, limit);
        expect(recent.events.map((e) => e.id)).toEqual(ids.slice(-2));
      });

      it('says truncated, and never fails, for any id a client may send as its Last-Event-ID', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const { ms } = parseStreamId(first!)!;
        // Two ids with room between them: an id there was never stored, and is unknown as well.
        const [low, high] = [`${ms + 1000n}-1`, `${ms + 1000n}-5`];
        await store.append(topic, { data: 'low', id: low });
        await store.append(topic, { data: 'high', id: high });
        const limit = { count: 10, bytes: 1 << 20 };
        const truncated = { events: [], bytes: 0, truncated: true, more: false };
        // A read that failed instead would fail the subscription, and its client would come back
        // with the same id for good.
        const hostile = [
          '',
          `${ms + 1000n}-3`,
          `${ms + 1000n}`,
          ` ${low}`,
          `${low} `,
          `+${low}`,
          `${low}-0`,
          `(${low}`,
          '-',
          '+',
          '*',
          '18446744073709551615-18446744073709551615',
          '18446744073709551616-0',
          '0-18446744073709551616',
          '１-１',
          'é-1',
          '1'.repeat(100_000),
          `${'9'.repeat(30)}-0`,
        ];
        for (const id of hostile) expect(await store.read(topic, id, limit), id).toEqual(truncated);
        expect((await store.read(topic, low, limit)).events.map((e) => e.id)).toEqual([high]);
      });

      it('reads after every id it keeps with no hole, and says truncated for the older ones, after long trimming too', async () => {
        const store = await engine(10);
        const topic = freshTopic();
        // Enough events that the store has trimmed many times over (and reorganized what it keeps),
        // each read after a recent id right away: however the store keeps them, it finds each one.
        const ids: string[] = [];
        const limit = { count: fixture.overflow * 4, bytes: 1 << 20 };
        // Data of many lengths: a page counts the bytes of the events it holds, not of others.
        for (let i = 0; i < fixture.overflow * 4; i++) {
          ids.push(await store.append(topic, { data: 'x'.repeat(i % 13) }));
          if (i < 2) continue;
          const recent = await store.read(topic, ids.at(-3)!, limit);
          expect(recent.events.map((e) => e.id)).toEqual(ids.slice(-2));
          expect(recent.bytes).toBe(messageSize(recent.events[0]!) + messageSize(recent.events[1]!));
        }
        const truncated = { events: [], bytes: 0, truncated: true, more: false };
        let kept = 0;
        for (const [i, id] of ids.entries()) {
          const page = await store.read(topic, id, limit);
          // What a store trims is its oldest events: once an id is kept, every later one is too.
          if (page.truncated && kept === 0) expect(page, id).toEqual(truncated);
          else {
            // A replay is the page as it is: an event missing from it is one its client never gets.
            expect(page.truncated, id).toBe(false);
            expect(
              page.events.map((e) => e.id),
              id,
            ).toEqual(ids.slice(i + 1));
            expect(page.more, id).toBe(false);
            kept++;
          }
        }
        expect(kept).toBeGreaterThanOrEqual(10);
      });

      it('hands every listener of a topic the same message object, in order, and stops on unlisten', async () => {
        const store = await engine();
        const topic = freshTopic();
        await publishAll(store, topic, 2);
        const seen: [StoredMessage[], StoredMessage[]] = [[], []];
        const listener = (into: StoredMessage[]): LiveListener => ({
          event: (m) => into.push(m),
          gap: () => {},
        });
        const stopA = await store.listen(topic, listener(seen[0]));
        const stopB = await store.listen(topic, listener(seen[1]));
        const ids = await publishAll(store, topic, 5, 2);
        await until(() => seen[0].length === 5 && seen[1].length === 5, 'live events');
        expect(seen[0].map((m) => m.id)).toEqual(ids);
        expect(seen[0].map((m) => m.data)).toEqual(['event 2', 'event 3', 'event 4', 'event 5', 'event 6']);
        for (let i = 0; i < 5; i++) expect(seen[1][i]).toBe(seen[0][i]);
        stopA();
        const [late] = await publishAll(store, topic, 1, 7);
        await until(() => seen[1].length === 6, 'the event after unlisten');
        expect(seen[1][5]!.id).toBe(late);
        expect(seen[0]).toHaveLength(5);
        stopB();
      });

      it('hands a listener events appended at once in id order, each once, as a read returns them', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const seen: string[] = [];
        const stop = await store.listen(topic, { event: (m) => seen.push(m.id), gap: () => {} });
        // Many publishers at once: a bus that hands events on as their appends complete may reorder
        // them, and a channel drops an event below one it sent as a duplicate.
        const ids = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.append(topic, { data: `at once ${i}` })),
        );
        await until(() => seen.length >= ids.length, 'the events appended at once');
        const stored = await store.read(topic, first!, { count: 100, bytes: 1 << 20 });
        expect(seen).toEqual(stored.events.map((e) => e.id));
        expect([...seen].sort()).toEqual([...ids].sort());
        stop();
      });

      it('hands every listener an event published while one is handed another after that one, in id order', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [first] = await publishAll(store, topic, 1);
        const seen: [string[], string[]] = [[], []];
        let answering: Promise<string> | undefined;
        // A bot answering in its room: it publishes as it is handed the event it answers. A bus that
        // hands the answer to the listeners after it first has them drop the event before it as a
        // duplicate.
        const stopBot = await store.listen(topic, {
          event: (m) => {
            seen[0].push(m.id);
            answering ??= store.append(topic, { data: `re: ${m.data}` });
          },
          gap: () => {},
        });
        const stop = await store.listen(topic, { event: (m) => seen[1].push(m.id), gap: () => {} });
        const question = await store.append(topic, { data: 'question' });
        await until(() => answering !== undefined, 'the answer');
        const answer = await answering!;
        await until(() => seen[0].length >= 2 && seen[1].length >= 2, 'both events');
        const stored = await store.read(topic, first!, { count: 10, bytes: 1 << 20 });
        expect(stored.events.map((e) => e.id)).toEqual([question, answer]);
        expect(seen).toEqual([
          [question, answer],
          [question, answer],
        ]);
        stopBot();
        stop();
      });

      it('keeps topics apart', async () => {
        const store = await engine();
        const [a, b] = [freshTopic(), freshTopic()];
        const seen: string[] = [];
        const stop = await store.listen(a, { event: (m) => seen.push(m.data as string), gap: () => {} });
        const [firstB] = await publishAll(store, b, 1, 100);
        await publishAll(store, a, 1, 1);
        await until(() => seen.length === 1, 'the event of topic a');
        expect(seen).toEqual(['event 1']);
        expect((await store.read(b, firstB!, { count: 10, bytes: 1000 })).events).toEqual([]);
        stop();
      });

      it('on close, ends the listeners it had, once, stops delivering to them, and refuses appends and new listeners', async () => {
        const store = await engine();
        const topic = freshTopic();
        const seen: string[] = [];
        let ended = 0;
        await store.listen(topic, { event: (m) => seen.push(m.id), gap: () => {}, end: () => ended++ });
        // One that registered and left is not told: it is no longer listening.
        const stopLeft = await store.listen(topic, { event: () => {}, gap: () => {}, end: () => ended++ });
        stopLeft();
        // One without `end` cannot be told: it is dropped all the same.
        await store.listen(topic, { event: (m) => seen.push(m.id), gap: () => {} });
        // Two that leave together (the streams of one client): the one told first unregisters the
        // other, which is then not told.
        let pairEnded = 0;
        const stops: (() => void)[] = [];
        const leaveTogether = (): LiveListener => ({
          event: () => {},
          gap: () => {},
          end: () => {
            pairEnded++;
            for (const stop of stops) stop();
          },
        });
        stops.push(await store.listen(topic, leaveTogether()), await store.listen(topic, leaveTogether()));
        await store.close();
        expect(ended).toBe(1);
        expect(pairEnded).toBe(1);
        await store.close();
        expect(ended).toBe(1);
        // No subscriber could receive it: stored and acknowledged, it would be dropped silently.
        await expect(store.append(topic, { data: 'after close' })).rejects.toThrow();
        // Another engine of the kind publishes to the topic too (with a shared store, the closed one
        // would read it): once its own listener has the event, the closed one has had its chance.
        const other = await engine();
        const control: string[] = [];
        const stop = await other.listen(topic, { event: (m) => control.push(m.id), gap: () => {} });
        await publishAll(other, topic, 1);
        await until(() => control.length === 1, 'the event on the open engine');
        expect(seen).toEqual([]);
        await expect(store.listen(topic, { event: () => {}, gap: () => {} })).rejects.toThrow();
        stop();
      });

      it('on close, ends the listeners of every topic, not of one alone', async () => {
        const store = await engine();
        const topics = [freshTopic(), freshTopic(), freshTopic()];
        // One topic with events, one without, one with two listeners: each stream must end.
        await publishAll(store, topics[0]!, 1);
        const ended: string[] = [];
        for (const [i, topic] of [...topics, topics[2]!].entries())
          await store.listen(topic, { event: () => {}, gap: () => {}, end: () => ended.push(`${i}`) });
        await store.close();
        expect(ended.sort()).toEqual(['0', '1', '2', '3']);
      });

      it('hands a listener registered after events were stored each event once, in increasing id order', async () => {
        const store = await engine();
        const topic = freshTopic();
        const before = await publishAll(store, topic, 3);
        const seen: string[] = [];
        const stop = await store.listen(topic, { event: (m) => seen.push(m.id), gap: () => {} });
        // An event from before it registered may come first (a bus still catching up), never later:
        // one below an id already handed out is dropped by a channel as a duplicate.
        const after = await publishAll(store, topic, 5, 3);
        await until(() => seen.includes(after.at(-1)!), 'the live events');
        await new Promise((resolve) => setTimeout(resolve, 20));
        const [last] = await publishAll(store, topic, 1, 8);
        await until(() => seen.includes(last!), 'the last event');
        for (let i = 1; i < seen.length; i++) {
          const [a, b] = [parseStreamId(seen[i - 1]!)!, parseStreamId(seen[i]!)!];
          expect(a.ms < b.ms || (a.ms === b.ms && a.seq < b.seq), seen.join()).toBe(true);
        }
        expect(seen.filter((id) => !before.includes(id))).toEqual([...after, last]);
        stop();
      });

      it('tells a listener where it starts at most once, before listen resolves, with an id it handed out', async () => {
        const store = await engine();
        const topic = freshTopic();
        const ids = await publishAll(store, topic, 3);
        const told: string[] = [];
        const seen: string[] = [];
        const stop = await store.listen(topic, {
          event: (m) => seen.push(m.id),
          gap: () => {},
          startsAfter: (id) => told.push(id),
        });
        // Told later, a channel has already read history past it: a resume would replay an event
        // twice, or a store that trimmed meanwhile would cost the client a false truncation signal.
        const atListen = [...told];
        expect(atListen.length).toBeLessThanOrEqual(1);
        const after = await publishAll(store, topic, 3, 3);
        await until(() => seen.includes(after.at(-1)!), 'the live events');
        await new Promise((resolve) => setTimeout(resolve, 60));
        expect(told).toEqual(atListen);
        // Every event after it reaches the listener: the id is one of the topic's, and none after it
        // is missing live.
        for (const id of told) {
          expect(ids).toContain(id);
          expect(seen.filter((s) => !ids.includes(s))).toEqual(after);
          expect(ids.slice(ids.indexOf(id) + 1).every((s) => seen.includes(s))).toBe(true);
        }
        stop();
      });
    });

    describe('channel', () => {
      it('completes the sources still open when the engine closes, after what they were sent', async () => {
        const store = await engine();
        const chat = createChannel(store, freshTopic());
        const live = recordSource(await chat.subscribe());
        const [first] = await publishAll(store, chat.topic, 1);
        await until(() => live.received.length === 1, 'the live event');
        await store.close();
        expect(live.completed).toBe(true);
        expect(live.error).toBeUndefined();
        expect(live.ids()).toEqual([first]);
        // A client that comes back meets the closed engine: its source fails, and it tries again.
        const again = recordSource(await chat.subscribe({ lastEventId: first }));
        expect(again.error).toBeInstanceOf(ChannelUnavailableError);
      });

      it('sends a fresh subscriber live events only, each once', async () => {
        const chat = createChannel(await engine(), freshTopic());
        await chat.publish({ data: 'before' });
        const source = await chat.subscribe();
        expect(source[SOURCE_HEADERS]).toBeUndefined();
        const client = recordSource(source);
        const ids = [await chat.publish({ data: 'a' }), await chat.publish({ data: 'b', type: 'note' })];
        await until(() => client.received.length === 2, 'two live events');
        expect(client.ids()).toEqual(ids);
        expect(client.received.map((e) => e.data)).toEqual(['a', 'b']);
        client.unsubscribe();
      });

      it('replays exactly what a reconnecting client missed, in order, then goes live', async () => {
        const chat = createChannel(await engine(), freshTopic());
        const first = recordSource(await chat.subscribe());
        const seen = [await chat.publish({ data: '1' }), await chat.publish({ data: '2' })];
        await until(() => first.received.length === 2, 'the first events');
        first.unsubscribe();
        const missed: string[] = [];
        for (let i = 3; i <= 7; i++) missed.push(await chat.publish({ data: String(i) }));
        const source = await chat.subscribe({ lastEventId: seen[1] });
        expect(source[SOURCE_HEADERS]).toBeUndefined();
        const again = recordSource(source);
        const live = await chat.publish({ data: '8' });
        await until(() => again.received.length === 6, 'replay and live');
        expect(again.ids()).toEqual([...missed, live]);
        again.unsubscribe();
      });

      it('loses nothing and repeats nothing when events are published while clients resume', async () => {
        const chat = createChannel(await engine(), freshTopic());
        const published: string[] = [await chat.publish({ data: 'seed' })];
        let publishing = true;
        const publisher = (async () => {
          for (let i = 0; publishing && i < 400; i++) published.push(await chat.publish({ data: `p${i}` }));
        })();
        const clients: { from: string; client: ReturnType<typeof recordSource> }[] = [];
        for (let i = 0; i < 8; i++) {
          await until(() => published.length > i * 10 + 2, 'more events');
          const from = published[Math.max(0, published.length - 1 - (i % 4) * 3)]!;
          clients.push({ from, client: recordSource(await chat.subscribe({ lastEventId: from })) });
        }
        publishing = false;
        await publisher;
        for (const { from, client } of clients) {
          const expected = published.slice(published.indexOf(from) + 1);
          await until(() => client.received.length >= expected.length, 'every event after the resume point');
          expect(client.ids()).toEqual(expected);
          client.unsubscribe();
        }
      });

      it('signals truncation for an unknown id (event and header), then continues live', async () => {
        const chat = createChannel(await engine(), freshTopic());
        await chat.publish({ data: 'x' });
        const source = await chat.subscribe({ lastEventId: '1-0' });
        expect(source[SOURCE_HEADERS]).toEqual({ [HISTORY_TRUNCATED_HEADER]: 'true' });
        const client = recordSource(source);
        const live = await chat.publish({ data: 'after' });
        await until(() => client.received.length === 2, 'signal and live event');
        expect(client.received[0]).toEqual({
          type: 'history-truncated',
          data: { lastEventId: '1-0', reason: 'history' },
        });
        expect(client.ids()).toEqual(['<history-truncated>', live]);
        client.unsubscribe();
      });

      it('signals truncation for an id older than what is kept', async () => {
        const store = await engine(10);
        const topic = freshTopic();
        const chat = createChannel(store, topic, { truncationEventType: 'reset' });
        const [oldest] = await publishAll(store, topic, fixture.overflow);
        const client = recordSource(await chat.subscribe({ lastEventId: oldest }));
        expect(client.received).toEqual([
          { type: 'reset', data: { lastEventId: oldest, reason: 'history' } },
        ]);
        client.unsubscribe();
      });

      it('replays all or nothing: past maxReplay it signals truncation instead of a partial replay', async () => {
        const store = await engine();
        const topic = freshTopic();
        const [from, ...rest] = await publishAll(store, topic, 8);
        const byCount = createChannel(store, topic, { maxReplay: { events: 5 } });
        const over = await byCount.subscribe({ lastEventId: from });
        expect(over[SOURCE_HEADERS]).toEqual({ [HISTORY_TRUNCATED_HEADER]: 'true' });
        const client = recordSource(over);
        expect(client.received).toEqual([
          { type: 'history-truncated', data: { lastEventId: from, reason: 'limit' } },
        ]);
        client.unsubscribe();
        const exact = recordSource(await byCount.subscribe({ lastEventId: rest[1] }));
        expect(exact.ids()).toEqual(rest.slice(2));
        exact.unsubscribe();
        const lastTwo = rest.slice(5).reduce((sum, id) => sum + 'event 0'.length + id.length, 0);
        const byBytes = createChannel(store, topic, { maxReplay: { bytes: lastTwo } });
        const small = recordSource(await byBytes.subscribe({ lastEventId: from }));
        expect(small.ids()).toEqual(['<history-truncated>']);
        small.unsubscribe();
        const fits = recordSource(await byBytes.subscribe({ lastEventId: rest[4] }));
        expect(fits.ids()).toEqual(rest.slice(5));
        fits.unsubscribe();
      });

      it('pages through a long replay', async () => {
        const store = await engine(5000);
        const topic = freshTopic();
        const ids = await publishAll(store, topic, 1300);
        const chat = createChannel(store, topic, { maxReplay: { events: 2000 } });
        const client = recordSource(await chat.subscribe({ lastEventId: ids[0] }));
        expect(client.ids()).toEqual(ids.slice(1));
        client.unsubscribe();
      });

      it('filters per subscriber without copying: kept events are the same objects', async () => {
        type Chat = MessageEvent<{ to: string; text: string }>;
        const chat = createChannel<Chat>(await engine(), freshTopic());
        const ann = recordSource(
          (await chat.subscribe({ filter: (m) => m.data.to === 'ann' })) as unknown as ChannelSource,
        );
        const everyone = recordSource((await chat.subscribe()) as unknown as ChannelSource);
        await chat.publish({ data: { to: 'bob', text: 'hi bob' } });
        const forAnn = await chat.publish({ data: { to: 'ann', text: 'hi ann' } });
        await until(() => everyone.received.length === 2 && ann.received.length === 1, 'filtered events');
        expect(ann.ids()).toEqual([forAnn]);
        expect(ann.received[0]).toBe(everyone.received[1]);
        ann.unsubscribe();
        everyone.unsubscribe();
      });

      it('refuses a message no client could receive, without storing it', async () => {
        const store = await engine();
        const topic = freshTopic();
        const chat = createChannel(store, topic);
        const first = await chat.publish({ data: 'ok' });
        await expect(chat.publish({ data: 'x', type: 'error' })).rejects.toThrow(/type/);
        await expect(chat.publish({ data: 'x', type: 'a\nb' })).rejects.toThrow(/type/);
        expect((await store.read(topic, first, { count: 10, bytes: 1000 })).events).toEqual([]);
      });

      it('refuses a field beyond data, id, type and retry, naming it, without storing it', async () => {
        const store = await engine();
        const topic = freshTopic();
        const chat = createChannel(store, topic);
        const first = await chat.publish({ data: 'ok' });
        // A filter reading it would see it on one engine and not on another; the wire never carries
        // it. Refused when undefined too: whether a publish fails must not depend on a value.
        const refused: [MessageEvent, string][] = [
          [{ data: 'x', userId: 7 } as MessageEvent, 'userId'],
          [{ data: 'x', type: 'note', room: undefined } as MessageEvent, 'room'],
        ];
        for (const [message, field] of refused) {
          const publishing = chat.publish(message);
          await expect(publishing).rejects.toMatchObject({ name: 'UnknownFieldError', field, topic });
          await expect(publishing).rejects.toBeInstanceOf(UnknownFieldError);
        }
        expect((await store.read(topic, first, { count: 10, bytes: 1000 })).events).toEqual([]);
      });

      it('delivers the gap a store reports to live subscribers as a truncation event', async () => {
        const store = await engine();
        const chat = createChannel(store, freshTopic());
        const listeners: LiveListener[] = [];
        const spy: ChannelEngine = {
          ...store,
          append: store.append.bind(store),
          read: store.read.bind(store),
          close: store.close.bind(store),
          listen: async (topic, listener) => {
            listeners.push(listener);
            return store.listen(topic, listener);
          },
        };
        const spied = createChannel(spy, chat.topic);
        const client = recordSource(await spied.subscribe());
        const before = await chat.publish({ data: 'before' });
        await until(() => client.received.length === 1, 'first event');
        for (const listener of listeners) listener.gap();
        const after = await chat.publish({ data: 'after' });
        await until(() => client.received.length === 3, 'signal and next event');
        expect(client.received[1]).toEqual({
          type: 'history-truncated',
          data: { lastEventId: before, reason: 'gap' },
        });
        expect(client.ids()).toEqual([before, '<history-truncated>', after]);
        expect(client.received.filter(isTruncation)).toHaveLength(1);
        client.unsubscribe();
      });
    });
  });
}
