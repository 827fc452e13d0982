// Every timing the README promises, on fake timers: each test fails if its rule changes.
import { concat, from, NEVER, of, Subject } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type CloseReason,
  type EventSourceLike,
  heartbeatCount,
  type MessageEvent,
  StreamGroup,
  type StreamOptions,
  streamEvents,
} from '../src/index.js';
import { MemorySink } from '../src/testing/index.js';

function open(
  options: StreamOptions,
  source: EventSourceLike<MessageEvent> = concat(from([{ data: 'a' }]), NEVER),
) {
  const sink = new MemorySink();
  const reasons: CloseReason[] = [];
  const stream = streamEvents(source, sink, {
    heartbeat: false,
    ...options,
    onClose: (reason) => reasons.push(reason),
  });
  return { sink, stream, reasons };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
  expect(heartbeatCount()).toBe(0);
});

describe('maxLifetime', () => {
  it('ends a stream after 80 % of its lifetime at the least', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { reasons } = open({ maxLifetime: 10_000 });
    await vi.advanceTimersByTimeAsync(7_999);
    expect(reasons).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(reasons).toEqual(['lifetime']);
  });

  it('and after 100 % at the most', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999_999);
    const { reasons } = open({ maxLifetime: 10_000 });
    await vi.advanceTimersByTimeAsync(9_999);
    expect(reasons).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(reasons).toEqual(['lifetime']);
  });

  it('rounds each lifetime to a 1/1000 step of maxLifetime', async () => {
    // 80.15 % of 10 s is 8,015 ms: in steps of 10 ms, 8,020 ms.
    vi.spyOn(Math, 'random').mockReturnValue(0.0075);
    const { reasons } = open({ maxLifetime: 10_000 });
    await vi.advanceTimersByTimeAsync(8_019);
    expect(reasons).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(reasons).toEqual(['lifetime']);
  });
});

describe('stallTimeout', () => {
  it('closes a client that took no bytes for stallTimeout, though no new event comes', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, reasons } = open({ stallTimeout: 300 }, subject);
    sink.full = true;
    subject.next({ data: 'fills the transport' });
    await vi.advanceTimersByTimeAsync(0); // the tick's flush: the write says full, the stall timer starts
    await vi.advanceTimersByTimeAsync(299);
    expect(reasons).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(reasons).toEqual(['stall']);
  });

  it('forgets a stall once the transport drains', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, reasons } = open({ stallTimeout: 300 }, subject);
    sink.full = true;
    subject.next({ data: 'x' });
    await vi.advanceTimersByTimeAsync(200);
    sink.release();
    await vi.advanceTimersByTimeAsync(1000);
    expect(reasons).toEqual([]);
    sink.disconnect();
  });

  it('holds no stall timer once a client that left mid-stall has closed', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, reasons } = open({ stallTimeout: 300 }, subject);
    sink.full = true;
    subject.next({ data: 'x' });
    await vi.advanceTimersByTimeAsync(100);
    expect(vi.getTimerCount()).toBe(1);
    sink.disconnect();
    expect(reasons).toEqual(['client']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps a client that takes some of what waits in every stallTimeout, and closes it once it took nothing for one', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, reasons } = open({ stallTimeout: 300 }, subject);
    sink.full = true;
    subject.next({ data: 'fills the transport' });
    await vi.advanceTimersByTimeAsync(0);
    // A slow link: the client takes a little at a time, never enough to drain the transport.
    for (let window = 0; window < 5; window++) {
      await vi.advanceTimersByTimeAsync(250);
      sink.read(1);
    }
    expect(reasons).toEqual([]);
    // The last progress counts for one stallTimeout from the check that saw it, no longer.
    await vi.advanceTimersByTimeAsync(600);
    expect(reasons).toEqual(['stall']);
  });

  it('is armed once, however many writes find the transport full before it drains', async () => {
    // A heartbeat fills the transport while an AsyncIterable's next() is pending; the event that
    // comes next finds it full too. One drain must forget the stall.
    let deliver!: (result: IteratorResult<MessageEvent>) => void;
    let pulls = 0;
    const source: AsyncIterable<MessageEvent> = {
      [Symbol.asyncIterator]: () => ({
        next: () =>
          new Promise((resolve) => {
            if (++pulls === 1) deliver = resolve;
          }),
      }),
    };
    const { sink, reasons } = open({ heartbeat: 100, stallTimeout: 300 }, source);
    sink.full = true;
    await vi.advanceTimersByTimeAsync(250);
    expect(sink.text).toBe(':\n');
    deliver({ done: false, value: { data: 'late' } });
    await vi.advanceTimersByTimeAsync(0);
    sink.release();
    await vi.advanceTimersByTimeAsync(1000);
    expect(reasons).toEqual([]);
    expect(sink.text).toContain('data: late\n\n');
    sink.disconnect();
  });

  it('is armed once for a transport full from its headers on, which the retry hint then finds full too', async () => {
    // As a Web body is until the runtime first reads it.
    class FullAtOpen extends MemorySink {
      override open(headers: Readonly<Record<string, string>>) {
        super.open(headers);
        return false;
      }
    }
    const sink = new FullAtOpen();
    sink.full = true;
    const reasons: CloseReason[] = [];
    streamEvents(NEVER, sink, {
      heartbeat: false,
      stallTimeout: 300,
      retry: 2000,
      onClose: (reason) => reasons.push(reason),
    });
    await vi.advanceTimersByTimeAsync(200);
    sink.release();
    await vi.advanceTimersByTimeAsync(1000);
    expect(reasons).toEqual([]);
    expect(sink.text).toBe('retry: 2000\n\n');
    sink.disconnect();
  });

  it('destroys the stalled response, and counts what it never got as dropped', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink, stream, reasons } = open({ stallTimeout: 300 }, subject);
    sink.full = true;
    subject.next({ data: 'taken, then nothing more' });
    await vi.advanceTimersByTimeAsync(0);
    subject.next({ data: 'never sent' });
    await vi.advanceTimersByTimeAsync(300);
    expect(reasons).toEqual(['stall']);
    expect(sink.destroyed).toBe(true);
    expect(stream.stats.dropped).toBe(1);
  });
});

describe('stallTimeout after the stream ended', () => {
  /** A stream whose source completes while its transport is full, leaving `data: x` events queued. */
  async function ended(options: StreamOptions = {}) {
    const subject = new Subject<MessageEvent>();
    const opened = open({ stallTimeout: 300, ...options }, subject);
    opened.sink.full = true;
    for (let i = 0; i < 10; i++) subject.next({ data: 'x' });
    subject.complete();
    await vi.advanceTimersByTimeAsync(0);
    expect(opened.reasons).toEqual(['complete']);
    expect(opened.sink.ended).toBe(true);
    return opened;
  }

  it('drops a client that takes nothing of what the end left, after stallTimeout', async () => {
    const { sink } = await ended();
    await vi.advanceTimersByTimeAsync(299);
    expect(sink.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.destroyed).toBe(true);
  });

  it('drops a client that takes nothing of what the end left in a transport that had room, after stallTimeout', async () => {
    /** Its writes all fit, and it holds them: a client that reads nothing, below the high-water mark. */
    class Unread extends MemorySink {
      unread = 0;
      override write(chunk: Uint8Array) {
        super.write(chunk);
        this.unread += chunk.length;
        return true;
      }
      override pending() {
        return this.unread;
      }
      override end() {
        this.ended = true;
      }
    }
    const sink = new Unread();
    const reasons: CloseReason[] = [];
    streamEvents(of({ data: 'x' }), sink, {
      heartbeat: false,
      stallTimeout: 300,
      onClose: (r) => reasons.push(r),
    });
    await vi.advanceTimersByTimeAsync(299);
    expect([reasons, sink.ended, sink.destroyed]).toEqual([['complete'], true, false]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.destroyed).toBe(true);
  });

  it('drops it after stallTimeout on a transport that tells nothing pending (the Sink has no pending())', async () => {
    const sink = new MemorySink();
    // A transport that cannot count what it holds: `pending()` is optional.
    Object.defineProperty(sink, 'pending', { value: undefined });
    const subject = new Subject<MessageEvent>();
    const reasons: CloseReason[] = [];
    streamEvents(subject, sink, { heartbeat: false, stallTimeout: 300, onClose: (r) => reasons.push(r) });
    sink.full = true;
    subject.next({ data: 'x' });
    subject.complete();
    await vi.advanceTimersByTimeAsync(299);
    expect([reasons, sink.ended, sink.destroyed]).toEqual([['complete'], true, false]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.destroyed).toBe(true);
  });

  it('keeps a client that takes some of it in every stallTimeout, until it has it all', async () => {
    const { sink, reasons } = await ended();
    for (let window = 0; window < 5; window++) {
      await vi.advanceTimersByTimeAsync(250);
      sink.read(1);
    }
    expect(sink.destroyed).toBe(false);
    sink.release();
    expect(sink.signal.aborted).toBe(true);
    expect(sink.destroyed).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    expect(reasons).toEqual(['complete']);
  });

  it('drops it once it took nothing for a whole stallTimeout', async () => {
    const { sink } = await ended();
    await vi.advanceTimersByTimeAsync(250);
    sink.read(1);
    await vi.advanceTimersByTimeAsync(250);
    sink.read(1);
    // The last progress counts for one stallTimeout from the check that saw it, no longer.
    await vi.advanceTimersByTimeAsync(600);
    expect(sink.destroyed).toBe(true);
  });

  it('reports a sink whose destroy() or pending() throws, and still drops the client', async () => {
    const errors: unknown[] = [];
    const { sink } = await ended({ onError: (error) => errors.push(error) });
    const broken = new Error('pending');
    sink.pending = () => {
      throw broken;
    };
    const destroy = sink.destroy.bind(sink);
    sink.destroy = () => {
      destroy();
      throw new Error('destroy');
    };
    await vi.advanceTimersByTimeAsync(300);
    expect(sink.destroyed).toBe(true);
    expect(errors.map((e) => (e as Error).message)).toEqual(['pending', 'destroy']);
  });
});

describe('heartbeat', () => {
  const beats = (sink: MemorySink) => sink.text.split(':\n').length - 1;

  it('comes only after a whole idle interval', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink } = open({ heartbeat: 1000 }, subject);
    // An event every 500 ms: never a whole idle interval.
    for (let t = 0; t < 5000; t += 500) {
      subject.next({ data: 'tick' });
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(beats(sink)).toBe(0);
    await vi.advanceTimersByTimeAsync(2100);
    expect(beats(sink)).toBeGreaterThanOrEqual(1);
    sink.disconnect();
  });

  it('never comes while an event waits in the queue', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink } = open({ heartbeat: 100 }, subject);
    await vi.advanceTimersByTimeAsync(300);
    const before = beats(sink);
    expect(before).toBeGreaterThan(0);
    subject.next({ data: 'queued' }); // written by this tick's flush, a microtask away
    vi.advanceTimersByTime(200); // wheel ticks, before that microtask runs
    expect(beats(sink)).toBe(before);
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.text.endsWith(':\ndata: queued\n\n')).toBe(true);
    sink.disconnect();
  });

  it('nor while the transport is full', async () => {
    const subject = new Subject<MessageEvent>();
    const { sink } = open({ heartbeat: 100, stallTimeout: false }, subject);
    sink.full = true;
    subject.next({ data: 'stuck' });
    await vi.advanceTimersByTimeAsync(1000);
    expect(beats(sink)).toBe(0);
    sink.disconnect();
  });

  it('then comes once every interval while the stream stays idle', async () => {
    const { sink } = open({ heartbeat: 1000 }, NEVER);
    await vi.advanceTimersByTimeAsync(2000);
    for (let n = 2; n <= 6; n++) {
      await vi.advanceTimersByTimeAsync(1000);
      expect(beats(sink)).toBe(n);
    }
    sink.disconnect();
  });

  it.each([0, 10, 500, 990, 1500])(
    'comes one to two intervals after the last write, %i ms into the stream',
    async (offset) => {
      const subject = new Subject<MessageEvent>();
      const { sink } = open({ heartbeat: 1000 }, subject);
      await vi.advanceTimersByTimeAsync(offset);
      const before = beats(sink);
      subject.next({ data: 'last' });
      await vi.advanceTimersByTimeAsync(1000);
      expect(beats(sink)).toBe(before);
      await vi.advanceTimersByTimeAsync(1000);
      expect(beats(sink)).toBe(before + 1);
      sink.disconnect();
    },
  );

  it('first comes between one and two intervals after the stream opened', async () => {
    const { sink } = open({ heartbeat: 1000 }, NEVER);
    await vi.advanceTimersByTimeAsync(1000);
    expect(beats(sink)).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(beats(sink)).toBe(1);
    sink.disconnect();
  });
});

describe('shutdown', () => {
  it('spreads retry hints over [retry, retry + spread]', async () => {
    const group = new StreamGroup();
    const hints: number[] = [];
    for (const random of [0, 0.5, 0.999]) {
      vi.spyOn(Math, 'random').mockReturnValue(random);
      const { sink } = open({ group });
      await group.close({ retry: 1000, spread: 2000 });
      hints.push(Number(/retry: (\d+)/.exec(sink.text)?.[1]));
    }
    expect(hints).toEqual([1000, 2000, 2998]);
  });

  it('destroys what has not flushed when the deadline passes, not before', async () => {
    const group = new StreamGroup();
    const sink = new MemorySink();
    // A transport that never finishes flushing: end() does not close it.
    sink.end = () => {
      sink.ended = true;
    };
    streamEvents(concat(from([{ data: 'a' }]), NEVER), sink, { heartbeat: false, group });
    const closed = group.close({ deadline: 500 });
    await vi.advanceTimersByTimeAsync(499);
    expect(sink.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await closed;
    expect(sink.destroyed).toBe(true);
  });

  it('resolves a second, concurrent close only when the first one would: after the flush or the deadline', async () => {
    const group = new StreamGroup();
    const sink = new MemorySink();
    sink.end = () => {
      sink.ended = true;
    };
    streamEvents(concat(from([{ data: 'a' }]), NEVER), sink, { heartbeat: false, group });
    const settled: string[] = [];
    const first = group.close({ deadline: 500 }).then(() => settled.push('first'));
    const second = group.close({ deadline: 500 }).then(() => settled.push('second'));
    await vi.advanceTimersByTimeAsync(499);
    expect(settled).toEqual([]);
    expect(sink.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await Promise.all([first, second]);
    expect(sink.destroyed).toBe(true);
    expect(settled.sort()).toEqual(['first', 'second']);
  });

  it("gives a full transport the close's deadline to take what the close left, not stallTimeout", async () => {
    const group = new StreamGroup();
    const { sink, reasons } = open({ group, stallTimeout: 1000 });
    await vi.advanceTimersByTimeAsync(0);
    sink.full = true;
    const closed = group.close({ retry: 500, deadline: 10_000 });
    await vi.advanceTimersByTimeAsync(9_999);
    expect(sink.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await closed;
    expect(sink.destroyed).toBe(true);
    expect(reasons).toEqual(['shutdown']);
  });

  it('waits, within its deadline, for a stream that ended by itself and still flushes', async () => {
    const group = new StreamGroup();
    const done = new Subject<MessageEvent>();
    const { sink, reasons } = open({ group, stallTimeout: false }, done);
    sink.full = true;
    done.next({ data: 'a' });
    done.complete();
    expect(reasons).toEqual(['complete']);
    const closed = group.close({ deadline: 1000 });
    await vi.advanceTimersByTimeAsync(999);
    expect(sink.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await closed;
    expect(sink.destroyed).toBe(true);
    expect(reasons).toEqual(['complete']);
  });

  it('ends a stream as before in a group of an older copy of rxsse, which keeps no flushing streams', async () => {
    const group = new StreamGroup();
    // A process-wide group made by an older copy of rxsse (a bundled dependency's) has no such method.
    Object.defineProperty(group, 'addFlushing', { value: undefined });
    const errors: unknown[] = [];
    const done = new Subject<MessageEvent>();
    const { sink, reasons } = open({ group, onError: (error) => errors.push(error) }, done);
    sink.full = true;
    done.next({ data: 'a' });
    done.complete();
    expect(reasons).toEqual(['complete']);
    expect(errors).toEqual([]);
    expect(sink.destroyed).toBe(false);
    expect(sink.ended).toBe(true);
    sink.release();
  });

  it('no longer waits for a stream that ended by itself once it flushed', async () => {
    const group = new StreamGroup();
    const done = new Subject<MessageEvent>();
    const { sink } = open({ group }, done);
    sink.full = true;
    done.next({ data: 'a' });
    done.complete();
    sink.release();
    await group.close({ deadline: 1000 });
    expect(sink.destroyed).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no deadline timer once every stream flushed', async () => {
    const group = new StreamGroup();
    const { sink } = open({ group });
    await vi.advanceTimersByTimeAsync(0);
    sink.full = true;
    const closed = group.close({ deadline: 10_000 });
    sink.release();
    await closed;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives what has not flushed 5 s by default', async () => {
    const group = new StreamGroup();
    const { sink } = open({ group });
    sink.end = () => {
      sink.ended = true;
    };
    const closed = group.close();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(sink.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await closed;
    expect(sink.destroyed).toBe(true);
  });
});

describe('teardown', () => {
  it('leaves no timer behind: not the lifetime, not a stall armed while closing', () => {
    const ended = open({ maxLifetime: 10_000 }, NEVER);
    ended.sink.disconnect();
    expect(vi.getTimerCount()).toBe(0);
    // A graceful close writes a retry hint into a full transport: that write must arm no stall.
    const closing = open({}, NEVER);
    closing.sink.full = true;
    closing.stream.close('shutdown', 500);
    // Only the stall after the end waits, for the client to take what the close left.
    expect(vi.getTimerCount()).toBe(1);
    closing.sink.release();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("runs the lifetime and the stall on unref'd timers: a stream alone never keeps the process alive", async () => {
    vi.useRealTimers();
    // Node lists only the timers that hold the process open: an unref'd one is not there.
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const before = timers();
    const { sink, stream } = open({ maxLifetime: 54_321, stallTimeout: 54_321 });
    sink.full = true;
    await Promise.resolve(); // the first event's write finds the transport full: the stall is armed
    const during = timers();
    stream.close();
    sink.release();
    expect(during).toBe(before);
  });
});
