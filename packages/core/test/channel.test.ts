import { getEventListeners } from 'node:events';
import { map, of, share, take } from 'rxjs';
import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import { gc } from '../../../test/support/gc.js';
import { recordUnhandledRejections } from '../../../test/support/warnings.js';
import { unlessAborted } from '../src/channel/aborted.js';
import {
  type Channel,
  type ChannelEngine,
  type ChannelOptions,
  ChannelUnavailableError,
  createChannel,
  EngineContractError,
  type HistoryPage,
  type HistoryTruncatedEvent,
  type LiveListener,
  type MemoryEngineOptions,
  memoryEngine,
  messageSize,
  parseStreamId,
  type ReadLimit,
  type StoredMessage,
  type TruncationReason,
  UnknownFieldError,
} from '../src/channel/index.js';
import { formatEvent } from '../src/encode/format.js';
import { utf8Length } from '../src/encode/utf8.js';
import {
  answerHeadEventStream,
  type EventSourceLike,
  letGoSource,
  type MessageEvent,
  resolveStreamOptions,
  SOURCE_HEADERS,
  SseFormatError,
  SseRangeError,
  type StreamOptions,
  streamEvents,
  type TypedMessageEvent,
  turnAwayEventStream,
} from '../src/index.js';
import { MemorySink, recordSource as record, until } from '../src/testing/index.js';

/** An engine whose reads wait until the test answers them, and whose live feed the test drives. */
/** An engine whose reads wait for the test's answer; `onListen` is what its bus tells a new listener. */
function scriptedEngine(onListen?: (listener: LiveListener) => void) {
  const listeners = new Set<LiveListener>();
  const reads: { afterId: string; limit: ReadLimit; answer: (page: HistoryPage) => void }[] = [];
  let failRead: Error | undefined;
  let unlistened = 0;
  const engine: ChannelEngine = {
    append: async () => {
      throw new Error('not used');
    },
    read: (_topic, afterId, limit) =>
      failRead
        ? Promise.reject(failRead)
        : new Promise((answer) => {
            reads.push({ afterId, limit, answer });
          }),
    listen: async (_topic, listener) => {
      listeners.add(listener);
      onListen?.(listener);
      return () => {
        unlistened++;
        listeners.delete(listener);
      };
    },
    close: async () => {},
  };
  return {
    engine,
    listeners,
    reads,
    get unlistened() {
      return unlistened;
    },
    failReads(error: Error) {
      failRead = error;
    },
    live(...ids: string[]) {
      for (const id of ids) for (const listener of listeners) listener.event(event(id));
    },
    end() {
      for (const listener of listeners) listener.end?.();
    },
  };
}

/** `engine` with reads that wait until the test opens them (each read waiting then). */
function gatedReads(engine: ChannelEngine) {
  let gates: (() => void)[] = [];
  let count = 0;
  return {
    engine: {
      ...engine,
      read: async (...args: Parameters<ChannelEngine['read']>) => {
        count++;
        await new Promise<void>((open) => gates.push(open));
        return engine.read(...args);
      },
    } satisfies ChannelEngine,
    get count() {
      return count;
    },
    get waiting() {
      return gates.length;
    },
    open() {
      for (const open of gates) open();
      gates = [];
    },
  };
}

/** `engine`, its `listen` registering the listener but resolving to `garbage`, not an unlisten. */
function listenResolvingTo(engine: ChannelEngine, garbage: unknown): ChannelEngine {
  return {
    ...engine,
    listen: async (topic, listener) => {
      await engine.listen(topic, listener);
      return garbage as () => void;
    },
  };
}

const events = new Map<string, StoredMessage>();
/** One message object per id, as an engine hands out. */
function event(id: string): StoredMessage {
  let message = events.get(id);
  if (!message) {
    message = { id, data: `data of ${id}` };
    events.set(id, message);
  }
  return message;
}
const page = (...ids: string[]): HistoryPage => ({
  events: ids.map(event),
  bytes: ids.length,
  truncated: false,
  more: false,
});

/** A page telling that what followed the id read after was trimmed from the store. */
const trimmed = (): HistoryPage => ({ events: [], bytes: 0, truncated: true, more: false });

describe('Channel', () => {
  it('sends each live event to every route as the same bytes: encoded once', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const options = resolveStreamOptions({ heartbeat: false });
    const sinks = [new MemorySink(), new MemorySink(), new MemorySink()];
    for (const sink of sinks) streamEvents(await chat.subscribe({ signal: sink.signal }), sink, options);
    await chat.publish({ data: { text: 'hello' }, type: 'chat' });
    await until(() => sinks.every((s) => s.chunks.length === 1), 'one chunk per sink');
    expect(sinks[1]!.chunks[0]).toBe(sinks[0]!.chunks[0]);
    expect(sinks[2]!.chunks[0]).toBe(sinks[0]!.chunks[0]);
    expect(sinks[0]!.text).toMatch(/^event: chat\nid: \d+-0\ndata: \{"text":"hello"\}\n\n$/);
  });

  it('reports each resume as a replay hit, miss or truncation', async () => {
    const outcomes: string[] = [];
    const chat = createChannel(memoryEngine(), 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    const first = await chat.publish({ data: 'a' });
    const last = await chat.publish({ data: 'b' });
    const sources = [
      await chat.subscribe({}),
      await chat.subscribe({ lastEventId: first }),
      await chat.subscribe({ lastEventId: last }),
      await chat.subscribe({ lastEventId: 'nope' }),
    ];
    // Told as each stream starts: a client that leaves before is no resume.
    expect(outcomes).toEqual([]);
    for (const source of sources) record(source);
    expect(outcomes).toEqual(['hit', 'miss', 'truncated']);
  });

  it('reports a first connection that lost live events while its handler went on as truncated', async () => {
    const outcomes: string[] = [];
    const chat = createChannel(memoryEngine(), 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    const source = await chat.subscribe({});
    // More than a subscription holds (1000) before its stream starts.
    for (let i = 0; i < 1001; i++) await chat.publish({ data: String(i) });
    expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
    record(source);
    expect(outcomes).toEqual(['truncated']);
  });

  it('puts SSE-History-Truncated on the response of a truncated subscription', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    await chat.publish({ data: 'x' });
    const sink = new MemorySink();
    streamEvents(
      await chat.subscribe({ lastEventId: 'nope' }),
      sink,
      resolveStreamOptions({ heartbeat: false }),
    );
    expect(sink.headers?.['sse-history-truncated']).toBe('true');
    await until(() => sink.chunks.length === 1, 'the signal');
    // `nope` can be no id of the channel: named as none, not echoed.
    expect(sink.text).toBe('event: history-truncated\ndata: {"lastEventId":null,"reason":"history"}\n\n');
  });

  it('sends a default-size replay whole to a client that reads nothing at first, once it reads', async () => {
    const chat = createChannel(memoryEngine({ maxBytes: 1 << 24 }), 'room');
    const first = await chat.publish({ data: 'start' });
    // The most the defaults replay: 1,000 events, just under 512 KiB as messageSize counts them.
    for (let i = 0; i < 1000; i++) await chat.publish({ data: 'x'.repeat(500), type: 'tick' });
    const sink = new MemorySink();
    sink.full = true;
    const closes: string[] = [];
    const source = await chat.subscribe({ lastEventId: first });
    expect(source[SOURCE_HEADERS]).toBeUndefined();
    const stream = streamEvents(source, sink, { heartbeat: false, onClose: (reason) => closes.push(reason) });
    await until(() => stream.stats.events + stream.queuedBytes > 0, 'the replay queued');
    sink.release();
    await until(() => stream.stats.events === 1000, 'the whole replay');
    expect(stream.stats.bytes).toBeGreaterThan(524_288);
    expect(closes).toEqual([]);
    expect(stream.stats.dropped).toBe(0);
  });

  it('keeps a default-size replay of many-line events within a default stream queue too', async () => {
    const chat = createChannel(memoryEngine({ maxBytes: 1 << 24 }), 'room');
    const first = await chat.publish({ data: 'start' });
    // Short lines: each costs `data: ` and a line end on the wire, 4 times what messageSize counts.
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await chat.publish({ data: 'a\n'.repeat(21_000) }));
    const sink = new MemorySink();
    sink.full = true;
    const closes: string[] = [];
    const source = await chat.subscribe({ lastEventId: first });
    const stream = streamEvents(source, sink, { heartbeat: false, onClose: (reason) => closes.push(reason) });
    await until(() => stream.stats.events + stream.queuedBytes > 0, 'the replay queued');
    expect(closes).toEqual([]);
    expect(stream.stats.dropped).toBe(0);
    // More than maxReplay.bytes on the wire: the client is told, as of a replay over the limit.
    expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
    expect(sink.text).toBe(`event: history-truncated\ndata: {"lastEventId":"${first}","reason":"limit"}\n\n`);
    // Three of them (504 KiB on the wire) fit, and are replayed.
    const fits = record(await chat.subscribe({ lastEventId: ids[8] }));
    expect(fits.ids()).toEqual(ids.slice(9));
  });

  it('replays data that is no string as it was published, a line break in it counted as no extra line', async () => {
    const engine = memoryEngine();
    const chat = createChannel(engine, 'room');
    const first = await chat.publish({ data: 'start' });
    const id = await chat.publish({ type: 'chat', data: { text: 'a\nb' } });
    // JSON writes the break as `\n`: one line on the wire, as messageSize counts it.
    const limit = messageSize({ id, type: 'chat', data: { text: 'a\nb' } });
    const replay = record(
      await createChannel(engine, 'room', { maxReplay: { bytes: limit } }).subscribe({ lastEventId: first }),
    );
    expect(replay.error).toBeUndefined();
    expect(replay.received).toEqual([{ id, type: 'chat', data: { text: 'a\nb' } }]);
  });

  it.each([
    ['a CRLF', 'a\r\nb'],
    ['a lone CR', 'a\rb'],
  ])(
    'counts %s in string data as the one line break it is on the wire, against maxReplay.bytes',
    async (_, data) => {
      const engine = memoryEngine();
      const chat = createChannel(engine, 'room');
      const first = await chat.publish({ data: 'start' });
      const id = await chat.publish({ data });
      // Its data and its id, and one more `data: ` line on the wire (6 bytes).
      const bytes = data.length + id.length + 6;
      const resume = async (limit: number) =>
        record(
          await createChannel(engine, 'room', { maxReplay: { bytes: limit } }).subscribe({
            lastEventId: first,
          }),
        );
      expect((await resume(bytes)).ids()).toEqual([id]);
      expect((await resume(bytes - 1)).ids()).toEqual(['<history-truncated>']);
    },
  );

  it('counts the line breaks of missed events against maxReplay.bytes in a page that reaches held live events too', async () => {
    const reads = gatedReads(memoryEngine());
    const chat = createChannel(reads.engine, 'room');
    const first = await chat.publish({ data: 'start' });
    const data = 'a\n'.repeat(10);
    const missed = await chat.publish({ data });
    const resume = (limit: number) =>
      createChannel(reads.engine, 'room', { maxReplay: { bytes: limit } }).subscribe({ lastEventId: first });
    // The page holds the missed event and the live one published while it is read: the store counts
    // both, as their data, ids and types; the wire has 10 more `data: ` lines (60 bytes) of the first.
    const onWire = data.length + missed.length + 60;
    const over = resume(onWire - 1);
    const fits = resume(onWire);
    await until(() => reads.waiting === 2, 'the history reads');
    const live = await chat.publish({ data: 'x' });
    reads.open();
    expect(record(await over).ids()).toEqual(['<history-truncated>', live]);
    expect(record(await fits).ids()).toEqual([missed, live]);
  });

  it.each(['close', 'drop-oldest', 'drop-newest'] as const)(
    'paces a replay larger than its queue to a client that reads nothing yet on a %s route: every event once, in order, then live, nothing dropped',
    async (onOverflow) => {
      const chat = createChannel(memoryEngine(), 'room');
      const first = await chat.publish({ data: 'start' });
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push(await chat.publish({ data: 'x'.repeat(100) }));
      const sink = new MemorySink();
      // A client that reads nothing yet (a Web body before its runtime's first read, a slow one):
      // the route's queue holds ~7 of the 20. Queued all at once, the replay would overflow it, and
      // under `close` the client would come back with the same id, to the same overflow, for ever.
      sink.full = true;
      const source = await chat.subscribe({ lastEventId: first, signal: sink.signal });
      const reasons: string[] = [];
      const stream = streamEvents(source, sink, {
        heartbeat: false,
        onOverflow,
        maxQueueBytes: 1000,
        onClose: (reason) => reasons.push(reason),
      });
      // Live events published meanwhile wait behind the replay.
      const during = await chat.publish({ data: 'during' });
      expect(stream.queuedBytes).toBeLessThanOrEqual(1000);
      sink.release();
      const live = await chat.publish({ data: 'live' });
      await until(() => sink.text.includes(`id: ${live}\n`), 'the live event');
      const sent = [...sink.text.matchAll(/^id: (.+)$/gm)].map((match) => match[1]);
      expect(sent).toEqual([...ids, during, live]);
      expect(sink.text).not.toContain('history-truncated');
      expect([stream.stats.dropped, reasons]).toEqual([0, []]);
      stream.close();
    },
  );

  describe('a truncation event on a route that drops or refuses events', () => {
    const big = (id: string, size = 300): StoredMessage => ({ id, data: `${id} ${'x'.repeat(size)}` });
    const wire = (message: StoredMessage) => utf8Length(formatEvent(message));
    const truncationSize = utf8Length(
      formatEvent({ type: 'history-truncated', data: { lastEventId: '1-0', reason: 'gap' } }),
    );
    /** Room for one event and two truncation events. */
    const cap = wire(big('2-0')) + 2 * truncationSize + 8;

    /** What the client parsed: ids, and each truncation event with the id the client had there. */
    function received(sink: MemorySink) {
      let had: string | null = null;
      const seen: string[] = [];
      for (const block of sink.text.split('\n\n').filter((b) => b !== '')) {
        const id = /^id: (.+)$/m.exec(block)?.[1];
        if (id !== undefined) {
          had = id;
          seen.push(id);
          continue;
        }
        const data = JSON.parse(/^data: (.+)$/m.exec(block)![1]!) as HistoryTruncatedEvent['data'];
        seen.push(`<${data.reason} after ${data.lastEventId}, had ${had}>`);
      }
      return seen;
    }

    /** A live subscriber on a route with `options`, whose client has 1-0 and, if `slow`, reads nothing more. */
    async function liveStream(options: StreamOptions, slow = true) {
      const script = scriptedEngine();
      const chat = createChannel(script.engine, 'room');
      const sink = new MemorySink();
      const stream = streamEvents(await chat.subscribe(), sink, { heartbeat: false, ...options });
      const live = (...messages: StoredMessage[]) => {
        for (const message of messages) for (const listener of script.listeners) listener.event(message);
      };
      const gap = () => {
        for (const listener of script.listeners) listener.gap();
      };
      sink.full = slow;
      live(big('1-0'));
      await until(() => sink.text.includes('id: 1-0\n'), 'the first event written');
      return { sink, stream, live, gap };
    }

    it('drop-oldest: dropping the events before it leaves no truncation event naming one of them', async () => {
      const { sink, stream, live, gap } = await liveStream({ onOverflow: 'drop-oldest', maxQueueBytes: cap });
      live(big('2-0'));
      gap();
      // No room for 3-0 unless 2-0 goes: the client never gets 2-0.
      live(big('3-0'));
      sink.release();
      await until(() => sink.text.includes('id: 3-0\n'), 'the last event');
      expect(stream.stats.dropped).toBe(1);
      expect(received(sink)).toEqual(['1-0', '<gap after 1-0, had 1-0>', '3-0']);
      stream.close();
    });

    it('drop-newest: a truncation event after events it dropped names the last id the client got', async () => {
      const { sink, stream, live, gap } = await liveStream({ onOverflow: 'drop-newest', maxQueueBytes: cap });
      // No room for 3-0: dropped, then the truncation event fits.
      live(big('2-0'), big('3-0'));
      gap();
      sink.release();
      await until(() => sink.text.includes('event: history-truncated'), 'the truncation event');
      live(big('4-0'));
      await until(() => sink.text.includes('id: 4-0\n'), 'the last event');
      expect(stream.stats.dropped).toBe(1);
      expect(received(sink)).toEqual(['1-0', '2-0', '<gap after 2-0, had 2-0>', '4-0']);
      stream.close();
    });

    it('drop-newest: tells of the events it dropped, as JSON, on a route whose serialize refuses the truncation event', async () => {
      const { sink, stream, live, gap } = await liveStream({
        onOverflow: 'drop-newest',
        maxQueueBytes: cap,
        onInvalidMessage: 'close',
        serialize: refusingSerialize,
      });
      live(big('2-0'), big('3-0'));
      gap();
      sink.release();
      live(big('4-0'));
      await until(() => sink.text.includes('id: 4-0\n'), 'the last event');
      expect(received(sink)).toEqual(['1-0', '2-0', '<gap after 2-0, had 2-0>', '4-0']);
      expect(stream.stats).toMatchObject({ dropped: 1, refused: 0 });
      expect(stream.closeReason).toBeUndefined();
      stream.close();
    });

    it('a truncation event after an event the route refused names the last id the client got', async () => {
      const refused: unknown[] = [];
      const { sink, stream, live, gap } = await liveStream(
        { maxQueueBytes: cap, onError: (error) => refused.push(error) },
        false,
      );
      // Larger than the route's queue can ever hold: refused, never sent.
      live(big('2-0', cap));
      gap();
      live(big('3-0'));
      await until(() => sink.text.includes('id: 3-0\n'), 'the last event');
      expect(refused).toEqual([expect.any(SseRangeError)]);
      expect(received(sink)).toEqual(['1-0', '<gap after 1-0, had 1-0>', '3-0']);
      stream.close();
    });
  });

  it('sends the replay, then held live events it did not contain, never an id twice or backwards', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the history read');
    expect(script.reads[0]!.afterId).toBe('5-0');
    // Live events arrive while history is read: one the client had, two the replay also has, one new.
    script.live('4-0', '6-0', '7-0', '8-0');
    script.reads[0]!.answer(page('6-0', '7-0'));
    const client = record(await subscribing);
    script.live('7-0', '9-0');
    expect(client.ids()).toEqual(['6-0', '7-0', '8-0', '9-0']);
    expect(client.received[0]).toBe(event('6-0'));
  });

  describe('live events published while history is read, which the client did not miss', () => {
    it('are not counted against maxReplay: a page that reaches them ends the replay, untruncated', async () => {
      const script = scriptedEngine();
      const replays: string[] = [];
      const chat = createChannel(script.engine, 'room', {
        maxReplay: { events: 2 },
        onReplay: (outcome) => void replays.push(outcome),
      });
      const subscribing = chat.subscribe({ lastEventId: '5-0' });
      await until(() => script.reads.length === 1, 'the history read');
      // The client missed 6-0; 7-0 and 8-0 come while the store is read, which hands back 2.
      script.live('7-0', '8-0');
      script.reads[0]!.answer({ ...page('6-0', '7-0'), more: true });
      const source = await subscribing;
      expect(source[SOURCE_HEADERS]).toBeUndefined();
      const client = record(source);
      expect(client.ids()).toEqual(['6-0', '7-0', '8-0']);
      expect(replays).toEqual(['hit']);
      expect(script.reads).toHaveLength(1);
    });

    it('are not counted when the missed events fill maxReplay exactly: one more read finds the held one next', async () => {
      const script = scriptedEngine();
      const chat = createChannel(script.engine, 'room', { maxReplay: { events: 2 } });
      const subscribing = chat.subscribe({ lastEventId: '5-0' });
      await until(() => script.reads.length === 1, 'the history read');
      script.live('8-0', '9-0');
      script.reads[0]!.answer({ ...page('6-0', '7-0'), more: true });
      await until(() => script.reads.length === 2, 'the read of the next event');
      expect(script.reads[1]).toMatchObject({ afterId: '7-0', limit: { count: 1 } });
      script.reads[1]!.answer({ ...page('8-0'), more: true });
      const source = await subscribing;
      expect(source[SOURCE_HEADERS]).toBeUndefined();
      expect(record(source).ids()).toEqual(['6-0', '7-0', '8-0', '9-0']);
    });

    it('cover nothing once some of them were lost while held: the replay reads on, and the client is told', async () => {
      const script = scriptedEngine();
      const chat = createChannel(script.engine, 'room', { maxReplay: { events: 2 } });
      const subscribing = chat.subscribe({ lastEventId: '5-0' });
      await until(() => script.reads.length === 1, 'the history read');
      for (const listener of script.listeners) listener.gap?.('continue');
      script.live('7-0');
      script.reads[0]!.answer({ ...page('6-0', '7-0'), more: true });
      const source = await subscribing;
      expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
      expect(record(source).ids()[0]).toBe('<history-truncated>');
    });

    it.each<[string, HistoryPage]>([
      // 8-0 was missed too: three events, over the limit of two.
      ['missed too', { ...page('8-0'), more: true }],
      // Whether 8-0 was missed is unknown: the client is told, not handed a replay with a hole.
      ['trimmed while read', trimmed()],
      ['an empty page with more', { events: [], bytes: 0, truncated: false, more: true }],
    ])(
      'do not hide the next event past maxReplay, missed or unknown (%s): the client is told',
      async (_, next) => {
        const script = scriptedEngine();
        const chat = createChannel(script.engine, 'room', { maxReplay: { events: 2 } });
        const subscribing = chat.subscribe({ lastEventId: '5-0' });
        await until(() => script.reads.length === 1, 'the history read');
        script.live('9-0');
        script.reads[0]!.answer({ ...page('6-0', '7-0'), more: true });
        await until(() => script.reads.length === 2, 'the read of the next event');
        script.reads[1]!.answer(next);
        const source = await subscribing;
        expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
        const client = record(source);
        expect(client.ids()).toEqual(['<history-truncated>', '9-0']);
        expect(client.received[0]).toMatchObject({ data: { lastEventId: '5-0', reason: 'limit' } });
      },
    );
  });

  it('asks the store page by page within what is left of maxReplay', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room', { maxReplay: { events: 700, bytes: 10_000 } });
    const subscribing = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'first read');
    expect(script.reads[0]!.limit).toEqual({ count: 500, bytes: 10_000 });
    const first = Array.from({ length: 500 }, (_, i) => `2-${i}`);
    script.reads[0]!.answer({ ...page(...first), bytes: 4000, more: true });
    await until(() => script.reads.length === 2, 'second read');
    expect(script.reads[1]).toMatchObject({ afterId: '2-499', limit: { count: 200, bytes: 6000 } });
    script.reads[1]!.answer(page('3-0'));
    const client = record(await subscribing);
    expect(client.ids()).toEqual([...first, '3-0']);
  });

  it('asks the store for no more pages once the client left', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room', { maxReplay: { events: 700, bytes: 10_000 } });
    const left = new AbortController();
    let settled = false;
    const subscribing = chat.subscribe({ lastEventId: '1-0', signal: left.signal });
    subscribing.then(
      () => (settled = true),
      () => (settled = true),
    );
    await until(() => script.reads.length === 1, 'first read');
    left.abort();
    const first = Array.from({ length: 500 }, (_, i) => `2-${i}`);
    script.reads[0]!.answer({ ...page(...first), bytes: 4000, more: true });
    await until(() => settled || script.reads.length > 1, 'the subscription to settle, or read on');
    expect(script.reads).toHaveLength(1);
  });

  it('asks the store for no more pages once the client left while a page was handed back', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room', { maxReplay: { events: 700, bytes: 10_000 } });
    const left = new AbortController();
    const subscribing = chat.subscribe({ lastEventId: '1-0', signal: left.signal });
    await until(() => script.reads.length === 1, 'first read');
    const first = Array.from({ length: 500 }, (_, i) => `2-${i}`);
    // Gone as the page came back, once no read is waited for: the next page is for no one.
    script.reads[0]!.answer({
      ...page(...first),
      bytes: 4000,
      get more() {
        left.abort();
        return true;
      },
    });
    const failure = await subscribing.then(undefined, (error: unknown) => error);
    expect(failure).toBe(left.signal.reason);
    expect(script.reads).toHaveLength(1);
    expect(script.listeners.size).toBe(0);
  });

  it("rejects with the signal's reason when the client leaves while history is read, and lets go of the listener", async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const left = new AbortController();
    const subscribing = chat.subscribe({ lastEventId: '1-0', signal: left.signal });
    await until(() => script.reads.length === 1, 'the history read');
    left.abort();
    // Not a source that fails as unavailable: the stream would answer a client that left.
    await expect(subscribing).rejects.toBe(left.signal.reason);
    expect(script.listeners.size).toBe(0);
    expect(script.unlistened).toBe(1);
  });

  it('holds a bounded number of live events during replay, then says what it dropped', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room', { maxReplay: { events: 10 } });
    const subscribing = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the history read');
    script.live(...Array.from({ length: 1001 }, (_, i) => `2-${i}`));
    script.live('3-0');
    script.reads[0]!.answer(page('1-1'));
    const source = await subscribing;
    expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
    const client = record(source);
    expect(client.ids()).toEqual(['1-1', '<history-truncated>', '2-1000', '3-0']);
    expect(client.received[1]).toMatchObject({ data: { lastEventId: '1-1', reason: 'limit' } });
  });

  it('reports a resume as truncated when its held live events overflowed or had a gap, as its header says', async () => {
    const script = scriptedEngine();
    const outcomes: string[] = [];
    const chat = createChannel(script.engine, 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    const overflowing = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the first history read');
    script.live(...Array.from({ length: 1001 }, (_, i) => `2-${i}`));
    script.reads[0]!.answer(page('1-1'));
    expect((await overflowing)[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
    const gapped = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 2, 'the second history read');
    for (const listener of script.listeners) listener.gap();
    script.reads[1]!.answer(page());
    const source = await gapped;
    expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
    const overflowed = record(await overflowing);
    record(source);
    // The overflowing one was held the gap too, after an event: it is told of two holes.
    expect(overflowed.ids()).toEqual(['1-1', '<history-truncated>', '2-1000', '<history-truncated>']);
    expect(outcomes).toEqual(['truncated', 'truncated', 'truncated']);
  });

  it('decides a resume and its header as its stream starts: live events that overflow before then truncate it', async () => {
    const script = scriptedEngine();
    const outcomes: string[] = [];
    const chat = createChannel(script.engine, 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    const subscribing = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the history read');
    script.reads[0]!.answer(page('1-1'));
    const source = await subscribing;
    // The handler awaits something else before it returns the source: live events pile up.
    script.live(...Array.from({ length: 1001 }, (_, i) => `2-${i}`));
    const sink = new MemorySink();
    const stream = streamEvents(source, sink, { heartbeat: false, maxQueueBytes: 1 << 20 });
    expect(sink.headers).toMatchObject({ 'sse-history-truncated': 'true' });
    expect(outcomes).toEqual(['truncated']);
    await until(() => sink.text.includes('id: 2-1000\n'), 'the last live event');
    expect(sink.text).toBe(
      'id: 1-1\ndata: data of 1-1\n\n' +
        'event: history-truncated\ndata: {"lastEventId":"1-1","reason":"limit"}\n\n' +
        'id: 2-1000\ndata: data of 2-1000\n\n',
    );
    stream.close();
  });

  it('accepts lower ids after a store restart among held events, even when it holds too many', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the history read');
    // The store lost its data and numbers from a clock behind the old one, faster than history reads.
    for (const listener of script.listeners) listener.gap();
    script.live(...Array.from({ length: 1000 }, (_, i) => `2-${i}`));
    script.reads[0]!.answer(page('6-0'));
    const client = record(await subscribing);
    script.live('3-0');
    expect(client.ids()).toEqual(['6-0', '<history-truncated>', '2-999', '3-0']);
    expect(client.received[1]).toMatchObject({ data: { lastEventId: '6-0', reason: 'gap' } });
  });

  it('tells a live subscriber about a gap, and accepts lower ids after it', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const client = record(await chat.subscribe());
    script.live('10-0');
    for (const listener of script.listeners) listener.gap();
    script.live('2-0');
    expect(client.ids()).toEqual(['10-0', '<history-truncated>', '2-0']);
  });

  it('tells onReplay of every truncation sent once live, one per hole, for a first connection too', async () => {
    const script = scriptedEngine();
    const outcomes: string[] = [];
    const chat = createChannel(script.engine, 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    const resuming = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the history read');
    // Lost while history was read: the outcome tells of it, not once more.
    for (const listener of script.listeners) listener.gap('continue');
    script.reads[0]!.answer(page('2-0'));
    const resumed = record(await resuming);
    const first = record(await chat.subscribe());
    expect(outcomes).toEqual(['truncated']);
    script.live('3-0');
    for (const listener of script.listeners) listener.gap('continue');
    expect(outcomes).toEqual(['truncated', 'truncated', 'truncated']);
    // A second hole before any event is news too: the client may have reloaded.
    for (const listener of script.listeners) listener.gap();
    expect(outcomes).toHaveLength(5);
    expect(resumed.ids().filter((id) => id === '<history-truncated>')).toHaveLength(3);
    expect(first.ids().filter((id) => id === '<history-truncated>')).toHaveLength(2);
  });

  it('fails the subscription with what onReplay throws for a truncation once live', async () => {
    const script = scriptedEngine();
    const bug = new Error('counter gone');
    const chat = createChannel(script.engine, 'room', {
      onReplay: (outcome) => {
        if (outcome === 'truncated') throw bug;
      },
    });
    const seen = record(await chat.subscribe());
    script.live('3-0');
    for (const listener of script.listeners) listener.gap();
    expect(seen.error).toBe(bug);
    expect(seen.ids()).toEqual(['3-0']);
    expect(script.listeners.size).toBe(0);
  });

  it('tells onReplay of no hole found among the held events after its filter failed the subscription', async () => {
    const script = scriptedEngine();
    const outcomes: string[] = [];
    const bug = new Error('filter broke');
    const chat = createChannel(script.engine, 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    const subscribing = chat.subscribe({
      lastEventId: '1-0',
      filter: (message) => {
        if (message.id === '3-0') throw bug;
        return true;
      },
    });
    await until(() => script.reads.length === 1, 'the history read');
    script.live('2-0', '3-0');
    for (const listener of script.listeners) listener.gap('continue');
    // Trimmed while read: told first, then the held events, which reset what was told.
    script.reads[0]!.answer(trimmed());
    const client = record(await subscribing);
    expect(client.error).toBe(bug);
    expect(client.ids()).toEqual(['<history-truncated>', '2-0']);
    // The hole after 3-0 reaches no client: counted, it would be a truncation no one was told of.
    expect(outcomes).toEqual(['truncated']);
  });

  it('after a gap whose ids continue, still sends no event the replay sent, even at a resume', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the history read');
    // The bus fell behind the store's trimming while history was read: it says so and goes on from
    // where the store is, with events the replay has too.
    for (const listener of script.listeners) listener.gap('continue');
    script.live('7-0', '8-0', '9-0');
    script.reads[0]!.answer(page('6-0', '7-0', '8-0'));
    const source = await subscribing;
    expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
    const client = record(source);
    script.live('10-0');
    for (const listener of script.listeners) listener.gap('continue');
    script.live('9-0', '11-0');
    expect(client.ids()).toEqual([
      '6-0',
      '7-0',
      '8-0',
      '<history-truncated>',
      '9-0',
      '10-0',
      '<history-truncated>',
      '11-0',
    ]);
  });

  it('fails a publish and a subscriber, not the stream, when the engine breaks the id rule', async () => {
    // Ids that are not <ms>-<seq> cannot be compared where replay and live meet: a duplicate or a
    // reordered event would reach the client without an error.
    const script = scriptedEngine();
    script.engine.append = async () => 'event-7';
    const chat = createChannel(script.engine, 'room');
    await expect(chat.publish({ data: 'x' })).rejects.toThrow(EngineContractError);
    await expect(chat.publish({ data: 'x' })).rejects.toThrow(/"event-7".*<ms>-<seq>/);
    await expect(chat.publish({ data: 'x' })).rejects.toMatchObject({ name: 'EngineContractError' });
    const client = record(await chat.subscribe());
    const other = record(await chat.subscribe());
    script.live('5-0');
    for (const listener of script.listeners) listener.event({ id: 'b', data: 'b' });
    expect(client.ids()).toEqual(['5-0']);
    expect(client.error).toBeInstanceOf(EngineContractError);
    expect(other.error).toBeInstanceOf(EngineContractError);
    expect(script.listeners.size).toBe(0);
  });

  it('fails the subscriber when a history page holds more than it asked for', async () => {
    // Trusted, a page over its count or bytes would replay past maxReplay, into the client's queue.
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room', { maxReplay: { events: 2, bytes: 100 } });
    const byCount = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the first history read');
    expect(script.reads[0]!.limit).toEqual({ count: 2, bytes: 100 });
    script.reads[0]!.answer(page('2-0', '3-0', '4-0'));
    const overCount = record(await byCount);
    expect(overCount.received).toEqual([]);
    expect(overCount.error).toBeInstanceOf(EngineContractError);
    expect(overCount.error).toMatchObject({ message: expect.stringMatching(/3 events.*2/) });
    const byBytes = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 2, 'the second history read');
    script.reads[1]!.answer({ ...page('2-0'), bytes: 101 });
    const overBytes = record(await byBytes);
    expect(overBytes.received).toEqual([]);
    expect(overBytes.error).toBeInstanceOf(EngineContractError);
    expect(overBytes.error).toMatchObject({ message: expect.stringMatching(/101 bytes.*100/) });
    expect(script.listeners.size).toBe(0);
  });

  it.each([
    ['no bytes', { bytes: undefined }],
    ['NaN bytes', { bytes: Number.NaN }],
    ['negative bytes', { bytes: -1_000_000 }],
    ['no events', { events: undefined }],
    ['an event that is null', { events: [null] }],
    ['no more', { more: undefined }],
    ['a truncated that is a string', { truncated: 'false' }],
  ])(
    'fails the subscriber when a history page has %s, rather than replay what it cannot trust',
    async (_, garbage) => {
      // Counted as is, a page without a byte count lifts the byte limit off every page after it;
      // one without `more` would end the replay before the rest, which no client would be told of.
      const script = scriptedEngine();
      const chat = createChannel(script.engine, 'room', { maxReplay: { events: 10, bytes: 100 } });
      const subscribing = chat.subscribe({ lastEventId: '1-0' });
      await until(() => script.reads.length === 1, 'the history read');
      let settled = false;
      subscribing.finally(() => {
        settled = true;
      });
      script.reads[0]!.answer({ ...page('2-0'), more: true, ...garbage } as unknown as HistoryPage);
      await until(() => settled || script.reads.length > 1, 'the subscription to settle, or read on');
      expect(script.reads).toHaveLength(1);
      const client = record(await subscribing);
      expect(client.received).toEqual([]);
      expect(client.error).toBeInstanceOf(EngineContractError);
      expect(script.listeners.size).toBe(0);
    },
  );

  it.each([
    ['null', null],
    ['undefined', undefined],
  ])(
    'fails the subscriber with EngineContractError when a history read resolves to %s',
    async (_, garbage) => {
      // A bug in the engine, not an outage: not to be told as an unavailable channel.
      const engine: ChannelEngine = {
        ...memoryEngine(),
        read: async () => garbage as unknown as HistoryPage,
      };
      const client = record(await createChannel(engine, 'room').subscribe({ lastEventId: '1-0' }));
      expect(client.received).toEqual([]);
      expect(client.error).toBeInstanceOf(EngineContractError);
      expect(client.error).toMatchObject({ message: expect.stringMatching(/read of topic "room"/) });
    },
  );

  it.each([
    ['newest first', ['4-0', '3-0', '2-0']],
    ['with the id it was read after', ['1-0', '2-0']],
    ['out of order across pages', ['3-0'], ['2-0']],
  ])('fails the subscriber when history comes %s, rather than drop events unsaid', async (_, ...pages) => {
    // Sent in that order, every event below one sent before it would pass for a duplicate.
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const subscribing = chat.subscribe({ lastEventId: '1-0' });
    for (const [i, ids] of pages.entries()) {
      await until(() => script.reads.length === i + 1, 'a history read');
      script.reads[i]!.answer({ ...page(...ids), more: i < pages.length - 1 });
    }
    const client = record(await subscribing);
    expect(client.received).toEqual([]);
    expect(client.error).toBeInstanceOf(EngineContractError);
    expect(script.listeners.size).toBe(0);
  });

  it('releases the live listener when the source is unsubscribed or the client left first', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const client = record(await chat.subscribe());
    expect(script.listeners.size).toBe(1);
    client.unsubscribe();
    expect(script.listeners.size).toBe(0);
    const abort = new AbortController();
    await chat.subscribe({ signal: abort.signal });
    expect(script.listeners.size).toBe(1);
    abort.abort();
    expect(script.listeners.size).toBe(0);
    const gone = new AbortController();
    gone.abort();
    await expect(chat.subscribe({ signal: gone.signal })).rejects.toBe(gone.signal.reason);
    expect(script.listeners.size).toBe(0);
  });

  it('lets a client go at once when it leaves before the engine listens, and releases the late listener', async () => {
    let answer: (unlisten: () => void) => void = () => {};
    let unlistened = 0;
    const engine: ChannelEngine = {
      ...memoryEngine(),
      listen: () =>
        new Promise((resolve) => {
          answer = resolve;
        }),
    };
    const chat = createChannel(engine, 'room');
    const abort = new AbortController();
    const subscribing = chat.subscribe({ lastEventId: '1-0', signal: abort.signal });
    let settled: unknown = 'waiting';
    subscribing.then(
      () => {
        settled = 'resolved';
      },
      (error: unknown) => {
        settled = error;
      },
    );
    abort.abort();
    await until(() => settled !== 'waiting', 'subscribe to settle', 1000);
    expect(settled).toBe(abort.signal.reason);
    answer(() => unlistened++);
    await until(() => unlistened === 1, 'the late listener to be released', 1000);
  });

  it('lets go of the listener at once for a client that leaves as its last history page is read', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const abort = new AbortController();
    const subscribing = chat.subscribe({ lastEventId: '1-0', signal: abort.signal });
    await until(() => script.reads.length === 1, 'the history read');
    // Gone after the read came back, before the source was built: no abort event is left to hear.
    script.reads[0]!.answer({
      ...page('2-0'),
      get more() {
        abort.abort();
        return false;
      },
    });
    await subscribing;
    expect(abort.signal.aborted).toBe(true);
    expect(script.unlistened).toBe(1);
  });

  describe('a subscription no stream subscribes to, made without the request signal', () => {
    const cases: [
      string,
      (source: EventSourceLike<MessageEvent>, report: (error: unknown) => void) => void,
    ][] = [
      ['a HEAD', (source, report) => answerHeadEventStream(new MemorySink(), {}, report, false, source)],
      [
        'a request turned away',
        (source, report) => turnAwayEventStream(new MemorySink(), {}, report, source),
      ],
      [
        'a client gone before the stream began',
        (source, report) => {
          const sink = new MemorySink();
          sink.disconnect();
          streamEvents(source, sink, { heartbeat: false }, report);
        },
      ],
      ['a late result a transport lets go of', (source, report) => letGoSource(source, report)],
    ];
    for (const [label, dropped] of cases) {
      it(`releases its place on the engine's live bus: ${label}`, async () => {
        const script = scriptedEngine();
        const chat = createChannel(script.engine, 'room');
        const source = await chat.subscribe();
        expect(script.listeners.size).toBe(1);
        const errors: unknown[] = [];
        dropped(source, (error) => errors.push(error));
        expect(script.listeners.size).toBe(0);
        expect(script.unlistened).toBe(1);
        expect(errors).toEqual([]);
        // Subscribed after all, it releases nothing twice.
        record(source);
        expect(script.unlistened).toBe(1);
      });
    }
  });

  it("keeps a share()d subscription's listener for its other streams when one ends, and through a HEAD", async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const shared = (await chat.subscribe()).pipe(share());
    const [a, b] = [new MemorySink(), new MemorySink()];
    streamEvents(shared, a, { heartbeat: false }, () => {});
    streamEvents(shared, b, { heartbeat: false }, () => {});
    script.live('1-0');
    answerHeadEventStream(new MemorySink(), {}, () => {}, false, shared);
    a.disconnect();
    script.live('2-0');
    await until(() => b.text.includes('id: 2-0\n'), 'the event after');
    expect(script.listeners.size).toBe(1);
  });

  it('hands the engine the signal of the subscription its history reads are for', async () => {
    const store = memoryEngine();
    const first = await store.append('room', { data: 'a' });
    await store.append('room', { data: 'b' });
    const signals: (AbortSignal | undefined)[] = [];
    const engine: ChannelEngine = {
      ...store,
      read: (topic, afterId, limit, signal) => {
        signals.push(signal);
        return store.read(topic, afterId, limit);
      },
    };
    const abort = new AbortController();
    await createChannel(engine, 'room').subscribe({ lastEventId: first, signal: abort.signal });
    expect(signals).toEqual([abort.signal]);
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'unlisten'],
  ])('fails the subscriber with EngineContractError when listen resolves to %s', async (_, garbage) => {
    // No function to let go of the listener with: a bug in the engine, told as the source's
    // error, not as a TypeError once the stream has run.
    const chat = createChannel(listenResolvingTo(memoryEngine(), garbage), 'room');
    const client = record(await chat.subscribe());
    expect(client.error).toBeInstanceOf(EngineContractError);
    expect(client.error).toMatchObject({ message: expect.stringMatching(/listen.*topic "room"/) });
    await chat.publish({ data: 'x' });
    expect(client.received).toEqual([]);
  });

  it('holds none of the live events an engine hands a listener its listen gave no unlisten for', async () => {
    const memory = memoryEngine({ maxEvents: 1 });
    const handed: WeakRef<object>[] = [];
    await memory.listen('room', {
      event: (message) => void handed.push(new WeakRef(message)),
      gap: () => {},
    });
    const chat = createChannel(listenResolvingTo(memory, undefined), 'room');
    expect(record(await chat.subscribe()).error).toBeInstanceOf(EngineContractError);
    // Nothing can unregister its listener: held, up to 1000 events would stay in memory for good.
    await chat.publish({ data: 'x'.repeat(1000) });
    await chat.publish({ data: 'evicts the first' });
    // A WeakRef keeps its target until the job that made it ends.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(handed.map((ref) => ref.deref() !== undefined)).toEqual([false, true]);
  });

  it("reports an engine's throwing unlisten through the stream, or the console, and never throws it", async () => {
    const memory = memoryEngine();
    const failing = new Error('unlisten failed');
    const engine: ChannelEngine = {
      ...memory,
      listen: async (topic, listener) => {
        const stop = await memory.listen(topic, listener);
        return () => {
          stop();
          throw failing;
        };
      },
    };
    const chat = createChannel(engine, 'room');
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      // The client of a stream leaves: the stream's teardown releases the subscription.
      const sink = new MemorySink();
      const errors: unknown[] = [];
      const source = await chat.subscribe({ signal: sink.signal });
      streamEvents(source, sink, { heartbeat: false, onError: (error) => errors.push(error) });
      sink.disconnect();
      expect(errors).toEqual([failing]);
      expect(logged).not.toHaveBeenCalled();
      // It leaves before anything subscribed to the source: nothing else can report it.
      const abort = new AbortController();
      await chat.subscribe({ signal: abort.signal });
      abort.abort();
      expect(logged).toHaveBeenCalledWith(expect.stringMatching(/^rxsse: /), failing);
      // History cannot be read: the source still fails as unavailable, for the client to come back.
      const unreadable = createChannel({ ...engine, read: () => Promise.reject(new Error('down')) }, 'room');
      const client = record(await unreadable.subscribe({ lastEventId: '1-0' }));
      expect(client.error).toBeInstanceOf(ChannelUnavailableError);
      expect(logged).toHaveBeenCalledTimes(2);
    } finally {
      logged.mockRestore();
    }
  });

  it('replays from an engine whose read answers at once, with or without a signal', async () => {
    // Awaited, a page that is no promise works; a signal must not turn it into an outage.
    const engine: ChannelEngine = {
      ...memoryEngine(),
      read: () => page('2-0') as unknown as Promise<HistoryPage>,
    };
    const chat = createChannel(engine, 'room');
    const plain = record(await chat.subscribe({ lastEventId: '1-0' }));
    const signalled = record(
      await chat.subscribe({ lastEventId: '1-0', signal: new AbortController().signal }),
    );
    expect(plain.error).toBeUndefined();
    expect(signalled.error).toBeUndefined();
    expect(signalled.ids()).toEqual(['2-0']);
  });

  it('fails its source, and stops listening, when history cannot be read', async () => {
    const script = scriptedEngine();
    const cause = new Error('store down');
    script.failReads(cause);
    const chat = createChannel(script.engine, 'room');
    const seen = record(await chat.subscribe({ lastEventId: '1-0' }));
    expect(seen.error).toBeInstanceOf(ChannelUnavailableError);
    expect(seen.error).toMatchObject({
      topic: 'room',
      cause,
      message: 'Channel "room" is unavailable: store down',
    });
    expect(seen.received).toEqual([]);
    expect(script.listeners.size).toBe(0);
  });

  it('fails its source with what onReplay threw, and stops listening', async () => {
    const script = scriptedEngine();
    const bug = new Error('counter gone');
    const chat = createChannel(script.engine, 'room', {
      onReplay: () => {
        throw bug;
      },
    });
    const subscribing = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the history read');
    script.reads[0]!.answer(page('2-0'));
    const seen = record(await subscribing);
    expect(seen.error).toBe(bug);
    expect(seen.received).toEqual([]);
    expect(script.listeners.size).toBe(0);
  });

  const replayBug = new Error('counter gone');
  /** Streams the replay after `1-0` of a channel with `onReplay`: what its stream closed with. */
  const streamedWith = async (onReplay: () => unknown) => {
    const script = scriptedEngine();
    const subscribing = createChannel(script.engine, 'room', { onReplay }).subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the history read');
    script.reads[0]!.answer(page('2-0'));
    const sink = new MemorySink();
    const closes: string[] = [];
    const errors: unknown[] = [];
    streamEvents(await subscribing, sink, {
      heartbeat: false,
      onClose: (reason) => closes.push(reason),
      onError: (error) => errors.push(error),
    });
    await until(() => closes.length === 1, 'the close', 1000);
    return { script, sink, closes, errors };
  };

  it.each([
    [
      'throws',
      () => {
        throw replayBug;
      },
    ],
    [
      'rejects',
      async () => {
        throw replayBug;
      },
    ],
  ])(
    'opens the stream of a source whose onReplay %s, then fails it and stops listening: a refused request would keep its client from coming back',
    async (_, onReplay) => {
      const { script, sink, closes, errors } = await streamedWith(onReplay);
      expect(sink.headers).toBeDefined();
      expect(closes).toEqual(['error']);
      expect(errors).toEqual([replayBug]);
      expect(script.listeners.size).toBe(0);
    },
  );

  it('fails its stream when an async onReplay rejects once the stream runs, after what it was sent, and reports one that rejects after the end', async () => {
    const script = scriptedEngine();
    const closes: string[] = [];
    let reject: (error: unknown) => void = () => {};
    const late = createChannel(script.engine, 'room', {
      onReplay: () =>
        new Promise<void>((_resolve, fail) => {
          reject = fail;
        }),
    });
    const subscribing = late.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the history read');
    script.reads[0]!.answer(page('2-0'));
    const sink = new MemorySink();
    const errors: unknown[] = [];
    streamEvents(await subscribing, sink, {
      heartbeat: false,
      onClose: (reason) => closes.push(reason),
      onError: (error) => errors.push(error),
    });
    await until(() => sink.chunks.length === 1, 'the replay', 1000);
    reject(replayBug);
    await until(() => closes.length === 1, 'the close', 1000);
    expect(closes).toEqual(['error']);
    expect(errors).toEqual([replayBug]);
    expect(sink.text).toMatch(/^id: 2-0\n/);
    expect(script.listeners.size).toBe(0);
    // One that rejects once the stream has ended: nothing else can report it.
    const afterEnd = late.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 2, 'the second history read');
    script.reads[1]!.answer(page('2-0'));
    const goneSink = new MemorySink();
    streamEvents(await afterEnd, goneSink, { heartbeat: false });
    goneSink.disconnect();
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      reject(replayBug);
      await until(() => logged.mock.calls.length === 1, 'the report', 1000);
      expect(logged).toHaveBeenCalledWith(expect.stringMatching(/^rxsse: /), replayBug);
    } finally {
      logged.mockRestore();
    }
  });

  it('lets go of the events it held for a client that left before its stream started', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const client = new AbortController();
    const subscribing = chat.subscribe({ lastEventId: '1-0', signal: client.signal });
    await until(() => script.reads.length === 1, 'the history read');
    for (const listener of script.listeners) listener.gap();
    script.reads[0]!.answer(page('2-0'));
    const source = await subscribing;
    // Held: a gap among the live events, which the header tells.
    expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
    client.abort();
    expect(source[SOURCE_HEADERS]).toBeUndefined();
    expect(script.listeners.size).toBe(0);
  });

  it('tells onReplay nothing of a client that left before its stream started, and stops listening', async () => {
    const script = scriptedEngine();
    const outcomes: string[] = [];
    const chat = createChannel(script.engine, 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    const client = new AbortController();
    const subscribing = chat.subscribe({ lastEventId: '1-0', signal: client.signal });
    await until(() => script.reads.length === 1, 'the history read');
    script.reads[0]!.answer(page('2-0'));
    // The handler returned it, but the client left before the stream subscribed to it.
    const source = await subscribing;
    client.abort();
    expect(script.listeners.size).toBe(0);
    expect(outcomes).toEqual([]);
    expect(source[SOURCE_HEADERS]).toBeUndefined();
  });

  it('fails its source when the engine cannot listen', async () => {
    const cause = new Error('no connection');
    const engine: ChannelEngine = Object.assign(memoryEngine(), { listen: () => Promise.reject(cause) });
    const seen = record(await createChannel(engine, 'room').subscribe());
    expect(seen.error).toMatchObject({ name: 'ChannelUnavailableError', cause });
  });

  it('can be subscribed to once', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const source = await chat.subscribe();
    record(source);
    const second = record(source);
    expect(second.error).toBeInstanceOf(Error);
  });

  it('errors only the subscriber whose filter throws', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const bad = record(
      await chat.subscribe({
        filter: () => {
          throw new Error('bad filter');
        },
      }),
    );
    const good = record(await chat.subscribe());
    await chat.publish({ data: 'x' });
    expect((bad.error as Error).message).toBe('bad filter');
    expect(good.received).toHaveLength(1);
  });

  it('takes a null lastEventId, as Headers.get() gives for none, as no resume, and refuses one that is no string', async () => {
    const outcomes: string[] = [];
    const chat = createChannel(memoryEngine(), 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    await chat.publish({ data: 'before' });
    const first = record(await chat.subscribe({ lastEventId: new Headers().get('last-event-id') }));
    await chat.publish({ data: 'live' });
    expect(first.received).toEqual([expect.objectContaining({ data: 'live' })]);
    expect(outcomes).toEqual([]);
    const numeric = 1000 as unknown as string;
    await expect(chat.subscribe({ lastEventId: numeric })).rejects.toThrow(
      new TypeError('lastEventId must be a string, got number 1000'),
    );
  });

  it('refuses a filter that is no function when subscribe() is called, not at the first event', async () => {
    const engine = memoryEngine();
    const chat = createChannel(engine, 'room');
    const filter = 'mine' as unknown as (m: StoredMessage) => boolean;
    await expect(chat.subscribe({ filter })).rejects.toThrow(/^filter must be a function, got string mine$/);
    await expect(chat.subscribe({ filter })).rejects.toBeInstanceOf(TypeError);
    expect(await chat.publish({ data: 'x' })).toBeTypeOf('string');
  });

  it('errors the subscriber whose filter is async, instead of taking its Promise for a yes', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    // Plain JavaScript allows it: every Promise is truthy, so another user's events would pass.
    const filter = (async (m: StoredMessage) => m.data === 'mine') as unknown as (
      m: StoredMessage,
    ) => boolean;
    const bad = record(await chat.subscribe({ filter }));
    const good = record(await chat.subscribe());
    await chat.publish({ data: 'theirs' });
    expect(bad.received).toEqual([]);
    expect(bad.error).toBeInstanceOf(TypeError);
    expect((bad.error as Error).message).toMatch(/filter returned a Promise/);
    expect(good.received).toHaveLength(1);
  });

  it('delivers an event whose filter answers with a truthy value that is no boolean, as plain JavaScript may', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    // A count, say: `(m) => m.data.length`.
    const filter = ((m: StoredMessage) => String(m.data).length) as unknown as (m: StoredMessage) => boolean;
    const counting = record(await chat.subscribe({ filter }));
    await chat.publish({ data: 'x' });
    await chat.publish({ data: '' });
    expect(counting.error).toBeUndefined();
    expect(counting.received.map((m) => m.data)).toEqual(['x']);
  });

  it('gives a typed channel typed sources that any route accepts', async () => {
    type Events = { chat: { text: string } };
    const chat = createChannel<TypedMessageEvent<Events>>(memoryEngine(), 'typed');
    const source = await chat.subscribe({ filter: (m) => m.data.text !== '' });
    expectTypeOf(source).toExtend<EventSourceLike<TypedMessageEvent<Events> | HistoryTruncatedEvent>>();
    // @ts-expect-error: a chat event carries { text }, not a string
    await chat.publish({ type: 'chat', data: 'hello' }).catch(() => {});
    expectTypeOf(await chat.publish({ type: 'chat', data: { text: 'hi' } })).toEqualTypeOf<string>();
  });

  it('refuses truncation event types a client could not tell apart, and bad limits', () => {
    const engine = memoryEngine();
    for (const type of ['', 'message', 'error', 'open', 'a\nb'])
      expect(() => createChannel(engine, 't', { truncationEventType: type }), type).toThrow(RangeError);
    expect(() => createChannel(engine, 't', { maxReplay: { events: 0 } })).toThrow(RangeError);
    expect(() => createChannel(engine, 't', { maxReplay: { bytes: 1.5 } })).toThrow(RangeError);
    expect(() => memoryEngine({ maxEvents: -1 })).toThrow(RangeError);
    expect(() => createChannel(engine, 't', { format: { maxDataLines: 0 } })).toThrow(RangeError);
    expect(() => createChannel(engine, 't', { format: { ids: 'Spec' as 'spec' } })).toThrow(TypeError);
    // The wrong type is a TypeError, as documented; a number out of range a RangeError.
    const wrong = (options: object) => () => createChannel(engine, 't', options as ChannelOptions);
    expect(wrong({ truncationEventType: 123 })).toThrow(TypeError);
    expect(wrong({ maxReplay: { events: '5' } })).toThrow(TypeError);
    expect(wrong({ maxMessageBytes: '5' })).toThrow(TypeError);
  });

  it('refuses an option name it does not know when it is created, naming the one meant', () => {
    const engine = memoryEngine();
    const bad = (options: unknown) => () => createChannel(engine, 't', options as ChannelOptions);
    expect(bad({ maxreplay: { events: 10 } })).toThrow(TypeError);
    expect(bad({ maxreplay: { events: 10 } })).toThrow(
      /^Unknown channel option "maxreplay" \(did you mean "maxReplay"\?\)$/,
    );
    expect(bad({ maxReplay: { event: 10 } })).toThrow(
      /^Unknown maxReplay option "event" \(did you mean "events"\?\)$/,
    );
    expect(bad({ format: { strikt: true } })).toThrow(
      /^Unknown format option "strikt" \(did you mean "strict"\?\)$/,
    );
    const engineWith = (options: unknown) => () => memoryEngine(options as MemoryEngineOptions);
    expect(engineWith({ maxEvent: 5 })).toThrow(TypeError);
    expect(engineWith({ maxEvent: 5 })).toThrow(
      /^Unknown memoryEngine option "maxEvent" \(did you mean "maxEvents"\?\)$/,
    );
    expect(engineWith({ persist: true })).toThrow(/^Unknown memoryEngine option "persist"$/);
  });

  it('refuses an engine, option or callback of the wrong type when it is created, naming it', () => {
    const engine = memoryEngine();
    const bad = (engine: unknown, options?: unknown) => () =>
      createChannel(engine as ChannelEngine, 't', options as ChannelOptions);
    expect(bad(engine, { onReplay: () => {}, maxReplay: {}, format: { strict: true } })).not.toThrow();
    expect(bad({ publish: () => {} })).toThrow(
      /^engine must be a ChannelEngine \(memoryEngine\(\), redisEngine\(\)\), got an object \(Object\)$/,
    );
    expect(bad(undefined)).toThrow(/, got undefined$/);
    expect(bad(engine, { onReplay: 'log' })).toThrow(/^onReplay must be a function, got string$/);
    expect(bad(engine, { maxReplay: 100 })).toThrow(
      /^maxReplay must be an object \{ events, bytes \}, got number 100$/,
    );
    expect(bad(engine, { format: 'spec' })).toThrow(/^format must be an object, got string spec$/);
    expect(bad(engine, { format: { strict: 'yes' } })).toThrow(/^strict must be a boolean, got string$/);
    expect(bad(engine, 'chat')).toThrow(/^options must be an object, got string chat$/);
  });
});

/** A route's own encoding, made for its own data: it refuses any other object. */
const refusingSerialize = (data: unknown) => {
  if (typeof data !== 'object' || data === null || !('text' in data))
    throw new TypeError('not a chat message');
  return `chat:${String(data.text)}`;
};

describe('a truncation event on a route whose own encoding refuses it', () => {
  async function resumeUnknown(options: StreamOptions) {
    const outcomes: string[] = [];
    const chat = createChannel(memoryEngine(), 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    await chat.publish({ data: { text: 'before' } });
    const sink = new MemorySink();
    const errors: unknown[] = [];
    const stream = streamEvents(await chat.subscribe({ lastEventId: '9-0' }), sink, {
      heartbeat: false,
      onError: (error) => errors.push(error),
      ...options,
    });
    const id = await chat.publish({ data: { text: 'live' } });
    await until(
      () => sink.text.includes(`id: ${id}\n`) || stream.closeReason !== undefined,
      'the live event',
    );
    return { sink, stream, errors, outcomes, id };
  }

  it('is sent as JSON when the route serialize throws on it, and the stream goes on', async () => {
    const { sink, stream, errors, outcomes, id } = await resumeUnknown({ serialize: refusingSerialize });
    expect(sink.headers?.['sse-history-truncated']).toBe('true');
    expect(sink.text).toBe(
      'event: history-truncated\ndata: {"lastEventId":"9-0","reason":"history"}\n\n' +
        `id: ${id}\ndata: chat:live\n\n`,
    );
    expect(outcomes).toEqual(['truncated']);
    expect(stream.stats.refused).toBe(0);
    expect(errors).toEqual([]);
    stream.close();
  });

  it('is sent as JSON when the route serialize makes something else of it', async () => {
    const { sink, stream, id } = await resumeUnknown({ serialize: (data) => `v1:${String(data)}` });
    expect(sink.text).toBe(
      'event: history-truncated\ndata: {"lastEventId":"9-0","reason":"history"}\n\n' +
        `id: ${id}\ndata: v1:[object Object]\n\n`,
    );
    stream.close();
  });

  it("does not close a route with onInvalidMessage: 'close', which would make its client reconnect for ever", async () => {
    const { sink, stream, id } = await resumeUnknown({
      serialize: refusingSerialize,
      onInvalidMessage: 'close',
    });
    expect(stream.closeReason).toBeUndefined();
    expect(sink.text).toContain(
      'event: history-truncated\ndata: {"lastEventId":"9-0","reason":"history"}\n\n',
    );
    expect(sink.text).toContain(`id: ${id}\n`);
    stream.close();
  });
});

describe('data whose JSON is a string', () => {
  it('goes out live and replayed as a route without a channel sends it: as its JSON', async () => {
    const options = resolveStreamOptions({ heartbeat: false });
    const direct = new MemorySink();
    streamEvents(of({ data: new Date(0) }), direct, options);
    const chat = createChannel(memoryEngine(), 'chat');
    const first = await chat.publish({ data: 'first' });
    const live = new MemorySink();
    streamEvents(await chat.subscribe({}), live, options);
    await chat.publish({ data: new Date(0) });
    const replayed = new MemorySink();
    streamEvents(await chat.subscribe({ lastEventId: first }), replayed, options);
    await until(() => direct.ended && live.text !== '' && replayed.text !== '', 'the three streams');
    const data = (sink: MemorySink) => /^data: .*$/m.exec(sink.text)?.[0];
    expect(data(direct)).toBe('data: "1970-01-01T00:00:00.000Z"');
    expect(data(live)).toBe(data(direct));
    expect(data(replayed)).toBe(data(direct));
  });

  it("goes out as its JSON within what a route's operator or serialize makes of it, as without a channel", async () => {
    const wrap = map((m: MessageEvent<unknown>) => ({ data: { payload: m.data } }));
    const options = resolveStreamOptions({ heartbeat: false, serialize: (d) => JSON.stringify({ v: d }) });
    const direct = new MemorySink();
    streamEvents(of({ data: new Date(0) }).pipe(wrap), direct, options);
    const chat = createChannel(memoryEngine(), 'chat');
    const first = await chat.publish({ data: 'first' });
    await chat.publish({ data: new Date(0) });
    const replayed = new MemorySink();
    streamEvents((await chat.subscribe({ lastEventId: first })).pipe(wrap), replayed, options);
    await until(() => direct.ended && replayed.text !== '', 'both streams');
    const data = (sink: MemorySink) => /^data: .*$/m.exec(sink.text)?.[0];
    expect(data(direct)).toBe('data: {"v":{"payload":"1970-01-01T00:00:00.000Z"}}');
    expect(data(replayed)).toBe(data(direct));
  });
});

describe('poison messages', () => {
  it('publish refuses a message no subscriber could be sent, and stores nothing', async () => {
    const engine = memoryEngine();
    const chat = createChannel(engine, 'chat');
    const strict = createChannel(engine, 'strict', { format: { strict: true } });
    const small = createChannel(engine, 'small', { maxMessageBytes: 1024 });
    const first = await chat.publish({ data: 'first' });
    await expect(chat.publish({ data: '\n'.repeat(140_000) })).rejects.toThrow(SseRangeError);
    await expect(chat.publish({ data: 'x', type: 'error' })).rejects.toThrow(SseFormatError);
    await expect(chat.publish({ data: 'x'.repeat(300_000) })).rejects.toThrow(/maxMessageBytes/);
    await expect(strict.publish({ data: 'lone \ud800' })).rejects.toThrow(SseFormatError);
    await expect(small.publish({ data: 'x'.repeat(2000) })).rejects.toThrow(/maxMessageBytes \(1024\)/);
    expect((await engine.read('chat', first, { count: 10, bytes: 1e6 })).events).toEqual([]);
    expect(await strict.publish({ data: 'well formed' })).toBeTypeOf('string');
  });

  it('publish refuses a Promise for data, or from an async serialize, and leaves no rejection unhandled', async () => {
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    try {
      const engine = memoryEngine();
      const chat = createChannel(engine, 'chat');
      const serialized = createChannel(engine, 'serialized', {
        format: {
          serialize: (async () => {
            throw new Error('serialize rejected');
          }) as never,
        },
      });
      await expect(chat.publish({ data: Promise.reject(new Error('data rejected')) })).rejects.toThrow(
        /is a Promise/,
      );
      await expect(serialized.publish({ data: { n: 1 } })).rejects.toThrow(
        /the serializer returned a Promise/,
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(unhandled).toEqual([]);
    } finally {
      stop();
    }
  });

  it("publish refuses an event of the channel's truncation type, which clients would take for a truncation, and stores nothing", async () => {
    const engine = memoryEngine();
    const chat = createChannel(engine, 'chat');
    const own = createChannel(engine, 'own', { truncationEventType: 'gone' });
    const first = await chat.publish({ data: 'first' });
    const notice = { lastEventId: null, reason: 'history' };
    await expect(chat.publish({ type: 'history-truncated', data: notice })).rejects.toThrow(SseFormatError);
    await expect(own.publish({ type: 'gone', data: 'x' })).rejects.toThrow(
      /^Invalid SSE type: "gone" is the channel's truncation event type$/,
    );
    expect((await engine.read('chat', first, { count: 10, bytes: 1e6 })).events).toEqual([]);
    expect(await own.publish({ type: 'history-truncated', data: 'x' })).toBeTypeOf('string');
  });

  it('publish refuses a field beyond data, id, type and retry, naming it, and stores nothing', async () => {
    const engine = memoryEngine();
    const chat = createChannel(engine, 'chat');
    const first = await chat.publish({ data: 'first' });
    const error: unknown = await chat.publish({ data: 'x', userId: 7 } as MessageEvent).catch((e) => e);
    expect(error).toBeInstanceOf(UnknownFieldError);
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toMatchObject({
      name: 'UnknownFieldError',
      topic: 'chat',
      field: 'userId',
      message:
        'Channel "chat" cannot publish the field "userId": a message holds data, id, type and retry alone, on every engine (put it in data)',
    });
    // What is no message object at all is named as such, by the encoder.
    await expect(chat.publish('hello' as unknown as MessageEvent)).rejects.toThrow(SseFormatError);
    expect((await engine.read('chat', first, { count: 10, bytes: 1e6 })).events).toEqual([]);
    // A class's getters and methods are no fields of its instances: stored as the encoder reads them.
    class Note {
      constructor(readonly data: string) {}
      get type() {
        return 'note';
      }
    }
    const id = await chat.publish(new Note('hi'));
    expect((await engine.read('chat', first, { count: 10, bytes: 1e6 })).events).toEqual([
      { id, data: 'hi', type: 'note' },
    ]);
  });

  it('refuses a topic that is not a well-formed string', () => {
    expect(() => createChannel(memoryEngine(), 'x\ud800')).toThrow(TypeError);
    expect(() => createChannel(memoryEngine(), 42 as unknown as string)).toThrow(TypeError);
  });

  it('a subscriber whose own route refuses a stored message skips it and goes on', async () => {
    const chat = createChannel(memoryEngine(), 'chat');
    const first = await chat.publish({ data: 'before' });
    await chat.publish({ data: 'lone \ud800' });
    await chat.publish({ data: 'after' });
    const sink = new MemorySink();
    const errors: unknown[] = [];
    const stream = streamEvents(await chat.subscribe({ lastEventId: first }), sink, {
      heartbeat: false,
      strict: true,
      onError: (error) => errors.push(error),
    });
    await until(() => sink.text.includes('data: after'), 'the event after the refused one');
    expect(sink.text).not.toContain('lone');
    expect(stream.stats.refused).toBe(1);
    expect(errors).toEqual([expect.any(SseFormatError)]);
    expect(stream.closeReason).toBeUndefined();
    sink.disconnect();
  });

  it('a subscriber whose own route closes on what it refuses ends at a stored message it refuses, again on every resume', async () => {
    const chat = createChannel(memoryEngine(), 'chat');
    const first = await chat.publish({ data: 'before' });
    await chat.publish({ data: 'lone \ud800' });
    await chat.publish({ data: 'after' });
    for (let attempt = 0; attempt < 2; attempt++) {
      const sink = new MemorySink();
      const errors: unknown[] = [];
      const stream = streamEvents(await chat.subscribe({ lastEventId: first }), sink, {
        heartbeat: false,
        strict: true,
        onInvalidMessage: 'close',
        onError: (error) => errors.push(error),
      });
      await until(() => stream.closeReason !== undefined, 'the close');
      expect(stream.closeReason).toBe('error');
      expect(sink.text).toBe('');
      expect(errors).toEqual([expect.any(SseFormatError)]);
    }
  });
});

describe('Channel, at its edges', () => {
  it('a second subscribe to one source fails, and leaves the first subscriber live', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const source = await chat.subscribe();
    const first = record(source);
    const second = record(source);
    expect((second.error as Error).message).toMatch(/only once/);
    const id = await chat.publish({ data: 'x' });
    expect(first.ids()).toEqual([id]);
  });

  it('after a truncated resume, sends live events even with ids below the id the client had', async () => {
    // The client's id comes from a store that lost its data; the new store's clock is behind it.
    const chat = createChannel(memoryEngine({ now: () => 1000 }), 'room');
    const client = record(await chat.subscribe({ lastEventId: '5000-0' }));
    expect(await chat.publish({ data: 'after the loss' })).toBe('1000-0');
    expect(client.ids()).toEqual(['<history-truncated>', '1000-0']);
  });

  it('drops held live events the client already had, also when there is nothing to replay', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the history read');
    // A bus that catches up may hand a new listener events from just before it registered.
    script.live('4-0', '5-0', '6-0');
    script.reads[0]!.answer(page());
    const client = record(await subscribing);
    expect(client.ids()).toEqual(['6-0']);
  });

  it('sends a held live event with fields of its own named gap and kind as the event it is', async () => {
    // An engine of another author may hand out fields of its own (the contract says it must not):
    // one may be called `gap`.
    type Move = StoredMessage & { gap: 'limit'; kind: 'restart' };
    const script = scriptedEngine();
    const outcomes: string[] = [];
    const chat = createChannel(script.engine, 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the history read');
    const move: Move = { id: '6-0', data: 'e2-e4', gap: 'limit', kind: 'restart' };
    for (const listener of script.listeners) listener.event(move);
    script.reads[0]!.answer(page());
    const source = await subscribing;
    expect(source[SOURCE_HEADERS]).toBeUndefined();
    const client = record(source);
    expect(client.received).toEqual([move]);
    expect(outcomes).toEqual(['miss']);
  });

  it('sends the held live events in order when the client publishes while they are sent', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const first = await chat.publish({ data: 'a' });
    const source = await chat.subscribe({ lastEventId: first });
    // Published before the stream subscribes to the source: held by the subscription.
    const held = [await chat.publish({ data: 'b' }), await chat.publish({ data: 'c' })];
    const ids: string[] = [];
    let answer: Promise<string> | undefined;
    source.subscribe((event) => {
      ids.push((event as StoredMessage).id);
      answer ??= chat.publish({ data: 'answer' });
    });
    expect(ids).toEqual([...held, await answer]);
  });

  it('drops held live events the client already had after a replay over maxReplay too', async () => {
    // The store knows the client's id ('limit', not 'history'): what it had is still no news to it.
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room', { maxReplay: { events: 2 } });
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the history read');
    // A bus that catches up may hand a new listener events from just before it registered.
    script.live('4-0', '5-0', '9-0');
    script.reads[0]!.answer({ ...page('6-0', '7-0'), more: true });
    // The next event is no held one: more was missed than the limit allows.
    await until(() => script.reads.length === 2, 'the read of the next event');
    script.reads[1]!.answer({ ...page('8-0'), more: true });
    const client = record(await subscribing);
    expect(client.ids()).toEqual(['<history-truncated>', '9-0']);
    expect(client.received[0]).toMatchObject({ data: { lastEventId: '5-0', reason: 'limit' } });
  });

  it('tells no truncation when a replay reaches maxReplay.events and the store has nothing after it', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room', { maxReplay: { events: 2 } });
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the history read');
    script.live('8-0');
    // A store that calls a full page `more` (as LIMIT n does), whether or not anything follows.
    script.reads[0]!.answer({ ...page('6-0', '7-0'), more: true });
    await until(() => script.reads.length === 2, 'the read of the next event');
    script.reads[1]!.answer(page());
    const client = record(await subscribing);
    expect(client.ids()).toEqual(['6-0', '7-0', '8-0']);
  });

  it('drops held live events the client already had when history is trimmed between two pages', async () => {
    // The store knew the client's id: only what followed it was trimmed while the replay was read.
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the first read');
    // A bus that catches up may hand a new listener events from just before it registered.
    script.live('4-0', '5-0', '9-0');
    script.reads[0]!.answer({ ...page('6-0', '7-0'), more: true });
    await until(() => script.reads.length === 2, 'the second read');
    script.reads[1]!.answer(trimmed());
    const client = record(await subscribing);
    expect(client.ids()).toEqual(['<history-truncated>', '9-0']);
    expect(client.received[0]).toMatchObject({ data: { lastEventId: '5-0', reason: 'history' } });
  });

  it('tells no truncation to a client that had the newest event when the store trims past it as it resumes', async () => {
    // Everything after the newest event reaches the subscription's listener: the store trimming
    // the client's id meanwhile costs it nothing, and it need not read history at all.
    const reads = gatedReads(memoryEngine({ maxEvents: 3 }));
    const chat = createChannel(reads.engine, 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    const outcomes: string[] = [];
    const newest = await chat.publish({ data: 'seen' });
    const subscribing = chat.subscribe({ lastEventId: newest });
    const live: string[] = [];
    // Past the client's id and the one event after it, which the store remembers it lost.
    for (const data of ['a', 'b', 'c', 'd']) live.push(await chat.publish({ data }));
    reads.open();
    const client = record(await subscribing);
    expect(client.ids()).toEqual(live);
    expect(outcomes).toEqual(['miss']);
    expect(reads.count).toBe(0);
  });

  it('tells no truncation when the store trims the last event a replay read while it looks past maxReplay', async () => {
    // The replay read up to the newest event the listener started after: what follows is held.
    const reads = gatedReads(memoryEngine({ maxEvents: 5 }));
    const chat = createChannel(reads.engine, 'room', { maxReplay: { events: 2 } });
    const [from, ...missed] = [
      await chat.publish({ data: 'seen' }),
      await chat.publish({ data: 'a' }),
      await chat.publish({ data: 'b' }),
    ];
    const subscribing = chat.subscribe({ lastEventId: from });
    const live = [await chat.publish({ data: 'c' })];
    await until(() => reads.waiting === 1, 'the first read');
    reads.open();
    for (const data of ['d', 'e', 'f', 'g', 'h']) live.push(await chat.publish({ data }));
    reads.open();
    const client = record(await subscribing);
    expect(client.ids()).toEqual([...missed!, ...live]);
  });

  it('tells a client that resumes with an id of any length that history is truncated, within a small queue', async () => {
    // A client may send any Last-Event-ID, of any length: echoed, it made the event larger than the
    // queue, refused, and the client missed events unaware (or, closed for it, came back for ever).
    const chat = createChannel(memoryEngine(), 'room');
    await chat.publish({ data: 'before' });
    const sink = new MemorySink();
    const errors: unknown[] = [];
    const stream = streamEvents(await chat.subscribe({ lastEventId: `${'x'.repeat(1_000_000)}-0` }), sink, {
      heartbeat: false,
      maxQueueBytes: 2048,
      onInvalidMessage: 'close',
      onError: (error) => errors.push(error),
    });
    const id = await chat.publish({ data: 'live' });
    await until(() => sink.text.includes(`id: ${id}\n`), 'the live event');
    expect(sink.text).toBe(
      `event: history-truncated\ndata: {"lastEventId":null,"reason":"history"}\n\nid: ${id}\ndata: live\n\n`,
    );
    expect(stream.stats).toMatchObject({ dropped: 0, refused: 0 });
    expect(errors).toEqual([]);
    stream.close();
  });

  it('names an id the client sent that can be a channel id, as sent, and no other', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const named = async (lastEventId: string) =>
      (record(await chat.subscribe({ lastEventId })).received[0] as HistoryTruncatedEvent).data.lastEventId;
    // Unknown, but a stream id: at most 41 characters, of digits and one dash.
    expect(await named('0005-01')).toBe('0005-01');
    expect(await named(`${'9'.repeat(20)}-${'9'.repeat(20)}`)).toBeNull();
    expect(await named(`${'1'.repeat(20)}-${'1'.repeat(20)}`)).toBe(`${'1'.repeat(20)}-${'1'.repeat(20)}`);
    for (const foreign of [
      '5-1\0',
      '5-1\n',
      ' 5-1',
      '5-1 ',
      '5',
      '5-',
      'x'.repeat(70_000),
      '\u00c3\u00a9',
      '5\u20131',
    ])
      expect(await named(foreign)).toBeNull();
  });

  it('reads no history for an id that is no stream id: told truncated at once, on any engine', async () => {
    const scripted = scriptedEngine();
    const outcomes: string[] = [];
    const chat = createChannel(scripted.engine, 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    const subscribing = chat.subscribe({ lastEventId: 'x'.repeat(1_000_000) });
    let settled = false;
    void subscribing.then(() => {
      settled = true;
    });
    await until(() => settled || scripted.reads.length > 0, 'a read or the source');
    const asked = scripted.reads.map((read) => read.afterId.length);
    for (const read of scripted.reads) read.answer(trimmed());
    const source = await subscribing;
    expect(asked).toEqual([]);
    expect(source[SOURCE_HEADERS]).toMatchObject({ 'SSE-History-Truncated': 'true' });
    const sink = new MemorySink();
    const stream = streamEvents(source, sink, { heartbeat: false, maxQueueBytes: 2048 });
    expect(outcomes).toEqual(['truncated']);
    // A gap before any event names no id either: not the client's.
    for (const listener of scripted.listeners) listener.gap();
    scripted.live('7-0');
    await until(() => sink.text.includes('id: 7-0\n'), 'the live event');
    expect(sink.text).toBe(
      'event: history-truncated\ndata: {"lastEventId":null,"reason":"history"}\n\n' +
        'event: history-truncated\ndata: {"lastEventId":null,"reason":"gap"}\n\n' +
        'id: 7-0\ndata: data of 7-0\n\n',
    );
    expect(stream.stats.refused).toBe(0);
    stream.close();
  });

  it('treats an empty lastEventId as a first connection: no replay, no truncation', async () => {
    const outcomes: string[] = [];
    const chat = createChannel(memoryEngine(), 'room', { onReplay: (outcome) => outcomes.push(outcome) });
    await chat.publish({ data: 'old' });
    const source = await chat.subscribe({ lastEventId: '' });
    expect(source[SOURCE_HEADERS]).toBeUndefined();
    const client = record(source);
    const id = await chat.publish({ data: 'new' });
    expect(client.ids()).toEqual([id]);
    expect(outcomes).toEqual([]);
  });

  it('publish accepts an event of exactly maxMessageBytes', async () => {
    const chat = createChannel(memoryEngine(), 'room', { maxMessageBytes: 9 }); // 'data: x\n\n'
    await expect(chat.publish({ data: 'x' })).resolves.toMatch(/^\d+-\d+$/);
    await expect(chat.publish({ data: 'xy' })).rejects.toThrow(SseRangeError);
  });

  it('publish accepts an event of 256 KiB by default, and no more', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const data = 'x'.repeat(256 * 1024 - 'data: \n\n'.length);
    await expect(chat.publish({ data })).resolves.toMatch(/^\d+-\d+$/);
    await expect(chat.publish({ data: `${data}x` })).rejects.toThrow(/maxMessageBytes \(262144\)/);
  });

  it('replays at most 512 KiB by default, fewer than 1000 events or not', async () => {
    const chat = createChannel(memoryEngine({ maxBytes: 1 << 24 }), 'room');
    const first = await chat.publish({ data: 'start' });
    for (let i = 0; i < 600; i++) await chat.publish({ data: 'x'.repeat(1000) }); // ~609 KB
    const client = record(await chat.subscribe({ lastEventId: first }));
    expect(client.received).toEqual([
      { type: 'history-truncated', data: { lastEventId: first, reason: 'limit' } },
    ]);
  });

  it('keeps the default of a maxReplay limit left undefined, as options built from a config leave it', async () => {
    // What is not configured is undefined (the repo checks under exactOptionalPropertyTypes).
    const config: { events?: number; bytes?: number } = { events: 2 };
    const chat = createChannel(memoryEngine(), 'room', {
      maxReplay: { events: config.events, bytes: config.bytes },
    });
    const first = await chat.publish({ data: 'start' });
    const missed = [await chat.publish({ data: 'x'.repeat(1000) }), await chat.publish({ data: 'y' })];
    expect(record(await chat.subscribe({ lastEventId: first })).ids()).toEqual(missed);
    await chat.publish({ data: 'z' });
    expect(record(await chat.subscribe({ lastEventId: first })).received).toEqual([
      { type: 'history-truncated', data: { lastEventId: first, reason: 'limit' } },
    ]);
  });

  /** A client that missed 1000 events gets them all; one that missed 1001 is told why it gets none. */
  async function expectThousandAtMost(chat: Channel, reason: TruncationReason) {
    const first = await chat.publish({ data: 'start' });
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) ids.push(await chat.publish({ data: 'x' }));
    expect(record(await chat.subscribe({ lastEventId: first })).ids()).toEqual(ids);
    await chat.publish({ data: 'x' });
    expect(record(await chat.subscribe({ lastEventId: first })).received).toEqual([
      { type: 'history-truncated', data: { lastEventId: first, reason } },
    ]);
  }

  it('replays at most 1000 events by default, however small', async () => {
    await expectThousandAtMost(createChannel(memoryEngine({ maxEvents: 2000 }), 'room'), 'limit');
  });

  it('memoryEngine keeps 1000 events per topic by default', async () => {
    // The 1001st event evicts the start: the 1000 after it are all the client misses, and all there is.
    await expectThousandAtMost(
      createChannel(memoryEngine(), 'room', { maxReplay: { events: 2000 } }),
      'history',
    );
  });

  it('holds up to 1000 live events during a replay, even with a smaller maxReplay', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room', { maxReplay: { events: 10 } });
    const subscribing = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the history read');
    const live = Array.from({ length: 1000 }, (_, i) => `2-${i}`);
    script.live(...live);
    script.reads[0]!.answer(page('1-1'));
    const source = await subscribing;
    expect(source[SOURCE_HEADERS]).toBeUndefined();
    expect(record(source).ids()).toEqual(['1-1', ...live]);
  });

  it("tells of the live events it held too many of as 'limit', not 'gap', after a held gap whose ids continue", async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the history read');
    // The bus lost events, but the store did not restart its ids.
    for (const listener of script.listeners) listener.gap('continue');
    script.live(...Array.from({ length: 1000 }, (_, i) => `7-${i}`));
    script.reads[0]!.answer(page('6-0'));
    const client = record(await subscribing);
    expect(client.ids()).toEqual(['6-0', '<history-truncated>', '7-999']);
    expect(client.received[1]).toMatchObject({ data: { lastEventId: '6-0', reason: 'limit' } });
  });

  it('tells of a truncated replay and of live events lost while held in one notice, not two in a row', async () => {
    const chat = createChannel(memoryEngine({ maxEvents: 5000 }), 'room');
    await chat.publish({ data: 'x' });
    // An id the store does not have; the route takes a while to subscribe, and 1001 events pass meanwhile.
    const source = await chat.subscribe({ lastEventId: '1-0' });
    const ids: string[] = [];
    for (let i = 0; i < 1001; i++) ids.push(await chat.publish({ data: String(i) }));
    const client = record(source);
    expect(client.received[0]).toEqual({
      type: 'history-truncated',
      data: { lastEventId: '1-0', reason: 'history' },
    });
    // The 1000 held events were dropped for the notice: the newest one follows it.
    expect(client.received.slice(1)).toEqual([expect.objectContaining({ id: ids[1000] })]);
  });

  it('stops reading once a page fills maxReplay and more follows: one read, no empty one', async () => {
    const engine = memoryEngine();
    const limits: ReadLimit[] = [];
    const read = engine.read;
    engine.read = (topic, afterId, limit) => {
      limits.push(limit);
      return read(topic, afterId, limit);
    };
    const chat = createChannel(engine, 'room', { maxReplay: { events: 2 } });
    const first = await chat.publish({ data: 'a' });
    for (const data of ['b', 'c', 'd']) await chat.publish({ data });
    const client = record(await chat.subscribe({ lastEventId: first }));
    expect(client.received).toEqual([
      { type: 'history-truncated', data: { lastEventId: first, reason: 'limit' } },
    ]);
    expect(limits).toEqual([{ count: 2, bytes: 524_288 }]);
  });

  it('reads no more once a page fills maxReplay short of the id its listener started after, with live events held', async () => {
    // The missed events up to the id the bus started after are held by no one: past maxReplay,
    // the client is told at once, whatever the listener holds after that id.
    const script = scriptedEngine((listener) => listener.startsAfter?.('4-0'));
    const chat = createChannel(script.engine, 'room', { maxReplay: { events: 2 } });
    let settled = false;
    const subscribing = chat.subscribe({ lastEventId: '1-0' });
    subscribing.then(
      () => (settled = true),
      () => (settled = true),
    );
    await until(() => script.reads.length === 1, 'the history read');
    script.live('5-0');
    script.reads[0]!.answer({ ...page('2-0', '3-0'), more: true });
    await until(() => settled || script.reads.length > 1, 'the subscription to settle, or read on');
    expect(script.reads).toHaveLength(1);
    expect(record(await subscribing).ids()).toEqual(['<history-truncated>', '5-0']);
  });

  it.each(['0-0', '00-0'])(
    'tells a client that resumes from %s that history was truncated, also where the bus started after 0-0 (an empty topic)',
    async (lastEventId) => {
      // No engine hands out 0-0: a client with it had no event, and the topic may have held some
      // (trimmed before its bus started) that it missed.
      const script = scriptedEngine((listener) => listener.startsAfter?.('0-0'));
      const client = record(await createChannel(script.engine, 'room').subscribe({ lastEventId }));
      script.live('5-0');
      expect(script.reads).toEqual([]);
      expect(client.received[0]).toEqual({
        type: 'history-truncated',
        data: { lastEventId, reason: 'history' },
      });
      expect(client.ids()).toEqual(['<history-truncated>', '5-0']);
    },
  );

  it('replays what followed an id of ms 0 above 0-0 (an own id the store handed out), not told as truncated', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    for (const id of ['0-1', '0-2']) await chat.publish({ id, data: id });
    const client = record(await chat.subscribe({ lastEventId: '0-1' }));
    expect(client.ids()).toEqual(['0-2']);
  });

  it('refuses a truncation event type with NUL or a lone surrogate', () => {
    for (const type of ['a\0b', 'a\ud800'])
      expect(
        () => createChannel(memoryEngine(), 't', { truncationEventType: type }),
        JSON.stringify(type),
      ).toThrow(RangeError);
  });

  it('parses a seq of at most 20 digits and 64 bits', () => {
    expect(parseStreamId(`1-${'0'.repeat(20)}1`)).toBeUndefined();
    expect(parseStreamId('0-18446744073709551616')).toBeUndefined();
  });

  it('ends a stream whose engine ends its listener: one complete, counted, no error, the client comes back', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const sink = new MemorySink();
    const closes: string[] = [];
    const errors: unknown[] = [];
    const stream = streamEvents(await chat.subscribe({ signal: sink.signal }), sink, {
      heartbeat: false,
      onClose: (reason) => closes.push(reason),
      onError: (error) => errors.push(error),
    });
    script.live('1-0');
    script.end();
    script.end();
    await until(() => closes.length === 1, 'the close');
    expect(closes).toEqual(['complete']);
    expect(errors).toEqual([]);
    expect(stream.stats.events).toBe(1);
    expect(sink.ended).toBe(true);
    expect(script.unlistened).toBe(1);
  });

  it('ends a subscription told during its replay after the replay and the held events', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const subscribing = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the history read');
    script.live('3-0');
    script.end();
    script.reads[0]!.answer(page('2-0'));
    const client = record(await subscribing);
    expect(client.ids()).toEqual(['2-0', '3-0']);
    expect(client.completed).toBe(true);
    expect(client.error).toBeUndefined();
    expect(script.unlistened).toBe(1);
  });

  it('keeps a subscription open on an engine that never ends its listeners, as before', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const client = record(await chat.subscribe());
    await script.engine.close();
    script.live('1-0');
    expect(client.ids()).toEqual(['1-0']);
    expect(client.completed).toBe(false);
  });

  it('memoryEngine: close() ends every listener, reporting one that throws', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const engine = memoryEngine();
      let ended = 0;
      await engine.listen('room', {
        event: () => {},
        gap: () => {},
        end: () => {
          throw new Error('broken listener');
        },
      });
      await engine.listen('room', { event: () => {}, gap: () => {}, end: () => ended++ });
      await engine.close();
      expect(ended).toBe(1);
      expect(logged).toHaveBeenCalledWith(
        'rxsse: a channel listener threw when its engine closed',
        new Error('broken listener'),
      );
    } finally {
      logged.mockRestore();
    }
  });

  it('memoryEngine: a listener that throws on an event keeps no other listener from it, nor from the next', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const engine = memoryEngine();
      const chat = createChannel(engine, 'room');
      // Registered first, it is handed each event before the subscribers are.
      await engine.listen('room', {
        event: (message) => {
          if (message.data === 'hello') void chat.publish({ data: 'answer' });
          throw new Error('broken listener');
        },
        gap: () => {},
      });
      const client = record(await chat.subscribe());
      const hello = await chat.publish({ data: 'hello' });
      const later = await chat.publish({ data: 'later' });
      expect(client.received.map((event) => event.data)).toEqual(['hello', 'answer', 'later']);
      expect(client.ids().at(-1)).toBe(later);
      expect(client.ids()[0]).toBe(hello);
      expect(logged).toHaveBeenCalledWith(
        'rxsse: a channel listener threw on an event',
        new Error('broken listener'),
      );
    } finally {
      logged.mockRestore();
    }
  });

  it('memoryEngine: close() stops live delivery, and a publish after it rejects', async () => {
    const engine = memoryEngine();
    const chat = createChannel(engine, 'room');
    const client = record(await chat.subscribe());
    await engine.close();
    await expect(chat.publish({ data: 'after close' })).rejects.toThrow('The memory engine is closed');
    expect(client.received).toEqual([]);
  });

  it('memoryEngine: an event published by a subscriber reaches every subscriber after the one it answers', async () => {
    // A bot answering in its own room publishes while the engine is still handing out the event it
    // answers: the subscribers after it must get both, in id order, not the answer alone.
    const chat = createChannel(memoryEngine(), 'room');
    const bot = await chat.subscribe();
    let answer: Promise<string> | undefined;
    bot.subscribe((event) => {
      if (event.data === 'hello') answer = chat.publish({ data: 'answer' });
    });
    const client = record(await chat.subscribe());
    const hello = await chat.publish({ data: 'hello' });
    expect(client.ids()).toEqual([hello, await answer]);
  });

  it('memoryEngine: a clock that gives no time in ms fails the publish, and stores nothing', async () => {
    for (const now of [-5, Number.NaN, 1e30]) {
      const engine = memoryEngine({ now: () => now });
      const chat = createChannel(engine, 'room');
      await chat.publish({ id: '1-0', data: 'own id' });
      await expect(chat.publish({ data: 'x' }), String(now)).rejects.toThrow(RangeError);
      expect((await engine.read('room', '1-0', { count: 10, bytes: 1000 })).events).toEqual([]);
    }
  });

  it('memoryEngine refuses options of the wrong type when it is created, naming them', () => {
    // A time rather than a clock would fail every publish that takes an id, as unrelated errors.
    expect(() => memoryEngine({ now: 1_700_000_000_000 as never })).toThrow(
      new TypeError('now must be a function that gives the time in ms, got number 1700000000000'),
    );
    expect(() => memoryEngine(null as never)).toThrow(new TypeError('options must be an object, got null'));
    expect(() => memoryEngine('big' as never)).toThrow(
      new TypeError('options must be an object, got string big'),
    );
  });

  it('memoryEngine keeps 1 MiB per topic by default', async () => {
    const engine = memoryEngine();
    const chat = createChannel(engine, 'room');
    const first = await chat.publish({ data: 'first' });
    for (let i = 0; i < 600; i++) await chat.publish({ data: 'x'.repeat(2000) }); // ~1.2 MB, 601 events
    const client = record(await chat.subscribe({ lastEventId: first }));
    expect(client.received).toEqual([
      { type: 'history-truncated', data: { lastEventId: first, reason: 'history' } },
    ]);
  });

  it('asks the filter nothing more once its subscriber has closed', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const first = await chat.publish({ data: 'a' });
    for (const data of ['b', 'c', 'd']) await chat.publish({ data });
    const asked: string[] = [];
    const source = await chat.subscribe({
      lastEventId: first,
      filter: (message) => {
        asked.push(message.id);
        return true;
      },
    });
    const got: unknown[] = [];
    source.pipe(take(1)).subscribe((e) => got.push(e));
    expect(got).toHaveLength(1);
    expect(asked).toHaveLength(1);
  });

  it('unlistens once, when both the signal aborts and the source is unsubscribed', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const abort = new AbortController();
    const client = record(await chat.subscribe({ signal: abort.signal }));
    abort.abort(); // what a stream does at close, before it unsubscribes
    client.unsubscribe();
    expect(script.unlistened).toBe(1);
  });

  it('removes its abort listener from the signal once subscribed to: its subscriber releases it', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const abort = new AbortController();
    const source = await chat.subscribe({ signal: abort.signal });
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(1);
    const client = record(source);
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
    client.unsubscribe();
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
  });

  it('tells a client whose id is above every id the store handed out that history is truncated, and drops no live event', async () => {
    // The client's id comes from a store that lost its data; the new one has an event already, below it.
    const chat = createChannel(memoryEngine({ now: () => 1000 }), 'room');
    await chat.publish({ data: 'before' });
    const source = await chat.subscribe({ lastEventId: '5000-0' });
    expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
    const client = record(source);
    expect(await chat.publish({ data: 'after the loss' })).toBe('1000-1');
    expect(client.ids()).toEqual(['<history-truncated>', '1000-1']);
    expect(client.received[0]).toMatchObject({ data: { lastEventId: '5000-0', reason: 'history' } });
  });

  it('counts only the missed events of a page that reaches held ones against maxReplay.bytes', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room', { maxReplay: { bytes: 100 } });
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the history read');
    script.live('7-0');
    // The store counts the whole page, the held 7-0 too: the missed 6-0 alone is well within the limit.
    script.reads[0]!.answer({ ...page('6-0', '7-0'), bytes: 100 });
    const source = await subscribing;
    expect(source[SOURCE_HEADERS]).toBeUndefined();
    expect(record(source).ids()).toEqual(['6-0', '7-0']);
  });

  it('unlistens once when its client left before the stream started and the transport lets go of it too', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const abort = new AbortController();
    const source = await chat.subscribe({ signal: abort.signal });
    abort.abort();
    letGoSource(source, () => {});
    expect(script.unlistened).toBe(1);
  });

  it('lets go of the events it held when a transport lets go of a source it never subscribed to', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const subscribing = chat.subscribe({ lastEventId: '1-0' });
    await until(() => script.reads.length === 1, 'the history read');
    for (const listener of script.listeners) listener.gap();
    script.reads[0]!.answer(page('2-0'));
    const source = await subscribing;
    expect(source[SOURCE_HEADERS]).toEqual({ 'SSE-History-Truncated': 'true' });
    letGoSource(source, () => {});
    expect(source[SOURCE_HEADERS]).toBeUndefined();
    expect(script.listeners.size).toBe(0);
  });

  it('asks the engine nothing for a client that left before subscribe was called', async () => {
    const script = scriptedEngine();
    const chat = createChannel(script.engine, 'room');
    const abort = new AbortController();
    abort.abort();
    await expect(chat.subscribe({ signal: abort.signal })).rejects.toBe(abort.signal.reason);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(script.listeners.size).toBe(0);
    expect(script.unlistened).toBe(0);
  });

  it('reads the missed history from the store when its listener lost events right after the id it started after', async () => {
    // A bus that started after the client's very id, and lost events at once (it reconnected):
    // what follows the id is not all held, so the store is read, and the loss told after the replay.
    const script = scriptedEngine((listener) => {
      listener.startsAfter?.('5-0');
      listener.gap('continue');
    });
    const chat = createChannel(script.engine, 'room');
    const subscribing = chat.subscribe({ lastEventId: '5-0' });
    await until(() => script.reads.length === 1, 'the history read');
    script.reads[0]!.answer(page('6-0', '7-0'));
    const client = record(await subscribing);
    expect(client.ids()).toEqual(['6-0', '7-0', '<history-truncated>']);
  });

  it('removes its abort listener from the signal when a transport lets go of a source it never subscribed to', async () => {
    const chat = createChannel(memoryEngine(), 'room');
    const abort = new AbortController();
    const source = await chat.subscribe({ signal: abort.signal });
    letGoSource(source, () => {});
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
  });
});

describe('unlessAborted, which a read or listen for a client that left is given up through', () => {
  it('rejects at once with the reason of a signal that has already aborted, and leaves the late rejection handled', async () => {
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    try {
      const reason = new Error('client left');
      await expect(unlessAborted(Promise.resolve('page'), AbortSignal.abort(reason))).rejects.toBe(reason);
      let fail!: (error: Error) => void;
      const late = new Promise((_, reject) => {
        fail = reject;
      });
      await expect(unlessAborted(late, AbortSignal.abort(reason))).rejects.toBe(reason);
      fail(new Error('engine failed late'));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      stop();
    }
  });

  it('rejects with the reason of a signal that aborts while it waits', async () => {
    const controller = new AbortController();
    const waiting = unlessAborted(new Promise(() => {}), controller.signal);
    const reason = new Error('client left');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });
});
