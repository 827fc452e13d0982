import type { HistoryPage } from '@rxsse/core/channel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RedisTimeoutError } from './errors.js';
import { ReadGate } from './read-gate.js';

/** A page of `name`'s one event, with more to come if `more`. */
const pageOf = (name: string, more = false): HistoryPage => ({
  events: [{ id: `${name}-1`, data: name }],
  bytes: 1,
  truncated: false,
  more,
});

/** A read named `name`, of `key`, that settles when told to with a page of `name`'s. */
function pendingRead(name: string, started: string[], key = name) {
  let finish!: (more?: boolean) => void;
  let fail!: (error: Error) => void;
  const read = () => {
    started.push(name);
    return new Promise<HistoryPage>((resolve, reject) => {
      finish = (more) => resolve(pageOf(name, more));
      fail = reject;
    });
  };
  return {
    run: (gate: ReadGate, afterId = '0-0', signal?: AbortSignal) => gate.read(key, afterId, read, signal),
    finish: (more?: boolean) => finish(more),
    fail: (error: Error) => fail(error),
  };
}

const settled = async (promise: Promise<unknown>) =>
  promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

afterEach(() => {
  vi.useRealTimers();
});

describe('ReadGate', () => {
  it('runs at most its limit of reads at once, the others in the order they came, a failed one freeing its turn too', async () => {
    const gate = new ReadGate(2, 5000);
    const started: string[] = [];
    const reads = ['a', 'b', 'c', 'd'].map((name) => pendingRead(name, started));
    const results = reads.map((read) => settled(read.run(gate)));
    await Promise.resolve();
    expect(started).toEqual(['a', 'b']);
    reads[1]!.fail(new Error('b failed'));
    await vi.waitFor(() => expect(started).toEqual(['a', 'b', 'c']));
    // One that comes now waits behind the one already waiting.
    const late = pendingRead('late', started);
    const lateResult = settled(late.run(gate));
    reads[0]!.finish();
    await vi.waitFor(() => expect(started).toEqual(['a', 'b', 'c', 'd']));
    reads[2]!.finish();
    await vi.waitFor(() => expect(started).toEqual(['a', 'b', 'c', 'd', 'late']));
    reads[3]!.finish();
    late.finish();
    expect(await Promise.all([...results, lateResult])).toEqual([
      { value: pageOf('a') },
      { error: new Error('b failed') },
      { value: pageOf('c') },
      { value: pageOf('d') },
      { value: pageOf('late') },
    ]);
    // Every turn is free again.
    for (const name of ['again', 'and again']) void pendingRead(name, started).run(gate);
    await Promise.resolve();
    expect(started.slice(-2)).toEqual(['again', 'and again']);
  });

  it("puts a replay's next page before the replays that have not begun", async () => {
    const gate = new ReadGate(1, 5000);
    const started: string[] = [];
    const first = pendingRead('first', started);
    const [other, again, next] = ['other', 'again', 'next'].map((name) =>
      pendingRead(name, started, name === 'other' ? 'other' : 'first'),
    );
    const firstPage = first.run(gate);
    const otherResult = settled(other!.run(gate));
    // From where the first page will end, but asked before it did: a replay that begins there.
    const againResult = settled(again!.run(gate, 'first-1'));
    first.finish(true);
    expect(await firstPage).toEqual(pageOf('first', true));
    const nextResult = settled(next!.run(gate, 'first-1'));
    await vi.waitFor(() => expect(started).toEqual(['first', 'other']));
    other!.finish();
    await vi.waitFor(() => expect(started).toEqual(['first', 'other', 'next']));
    next!.finish();
    await vi.waitFor(() => expect(started).toEqual(['first', 'other', 'next', 'again']));
    again!.finish();
    const results = await Promise.all([otherResult, nextResult, againResult]);
    expect(results).toEqual(['other', 'next', 'again'].map((name) => ({ value: pageOf(name) })));
  });

  it('fails a read that waited longer than maxWaitMs when its turn comes, and hands the turn on', async () => {
    vi.useFakeTimers();
    const gate = new ReadGate(1, 5000);
    const started: string[] = [];
    const [stuck, waited, fresh] = ['stuck', 'waited', 'fresh'].map((name) => pendingRead(name, started));
    stuck!.run(gate).catch(() => {});
    const waitedResult = settled(waited!.run(gate));
    vi.advanceTimersByTime(4000);
    const freshResult = settled(fresh!.run(gate));
    // The first read's own deadline: every read queued behind it more than 5 s ago fails now.
    vi.advanceTimersByTime(1001);
    stuck!.fail(new RedisTimeoutError(5000, true));
    const { error } = (await waitedResult) as { error: RedisTimeoutError };
    expect(error).toBeInstanceOf(RedisTimeoutError);
    expect(error.message).toBe(
      "no reply within 5000 ms: waited longer for one of the engine's 1 history reads at once",
    );
    expect(started).toEqual(['stuck', 'fresh']);
    fresh!.finish();
    expect(await freshResult).toEqual({ value: pageOf('fresh') });
  });

  it('fails a read that waited for its turn within maxWaitMs of its call, its turn held until it settles', async () => {
    vi.useFakeTimers();
    const gate = new ReadGate(1, 5000);
    const started: string[] = [];
    const [stuck, waited, later] = ['stuck', 'waited', 'later'].map((name) => pendingRead(name, started));
    stuck!.run(gate).catch(() => {});
    await vi.advanceTimersByTimeAsync(4000);
    const waitedResult = settled(waited!.run(gate));
    await vi.advanceTimersByTimeAsync(1000);
    stuck!.fail(new RedisTimeoutError(5000, true));
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toEqual(['stuck', 'waited']);
    const laterResult = settled(later!.run(gate));
    const now = () => Promise.race([waitedResult, Promise.resolve('pending')]);
    // Its own command would have 5 s more: the caller waits for the rest of its 5 s only.
    await vi.advanceTimersByTimeAsync(3999);
    expect(await now()).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    const { error } = (await now()) as { error: RedisTimeoutError };
    expect(error).toBeInstanceOf(RedisTimeoutError);
    expect(error.message).toBe(
      "no reply within 5000 ms: waited for one of the engine's 1 history reads at once, then for its reply",
    );
    // The command still runs: its turn goes on once it settles.
    expect(started).toEqual(['stuck', 'waited']);
    waited!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toEqual(['stuck', 'waited', 'later']);
    later!.finish();
    expect(await laterResult).toEqual({ value: pageOf('later') });
  });

  it('drops a waiting read whose signal aborts, with its reason, and never runs it', async () => {
    const gate = new ReadGate(1, 5000);
    const started: string[] = [];
    const [running, left, next] = ['running', 'left', 'next'].map((name) => pendingRead(name, started));
    const runningResult = settled(running!.run(gate));
    const leaving = new AbortController();
    const leftResult = settled(left!.run(gate, '0-0', leaving.signal));
    const nextResult = settled(next!.run(gate));
    const reason = new Error('the client left');
    leaving.abort(reason);
    expect(await leftResult).toEqual({ error: reason });
    // A signal aborted already: not even queued.
    expect(await settled(gate.read('late', '0-0', async () => pageOf('late'), leaving.signal))).toEqual({
      error: reason,
    });
    running!.finish();
    await vi.waitFor(() => expect(started).toEqual(['running', 'next']));
    next!.finish();
    expect(await Promise.all([runningResult, nextResult])).toEqual([
      { value: pageOf('running') },
      { value: pageOf('next') },
    ]);
  });

  it('fails every waiting read and every later one once closed, and lets the running ones finish', async () => {
    const gate = new ReadGate(1, 5000);
    const started: string[] = [];
    const [running, waiting] = ['running', 'waiting'].map((name) => pendingRead(name, started));
    const runningResult = settled(running!.run(gate));
    const waitingResult = settled(waiting!.run(gate));
    gate.close(() => new Error('closed'));
    expect(await waitingResult).toEqual({ error: new Error('closed') });
    expect(await settled(gate.read('later', '0-0', async () => pageOf('later')))).toEqual({
      error: new Error('closed'),
    });
    running!.finish();
    expect(await runningResult).toEqual({ value: pageOf('running') });
    expect(started).toEqual(['running']);
  });

  it('puts a read from where a last page ended behind the reads already waiting: only a page with more goes first', async () => {
    const gate = new ReadGate(1, 5000);
    const started: string[] = [];
    const first = pendingRead('first', started);
    const firstPage = first.run(gate);
    first.finish(false);
    expect(await firstPage).toEqual(pageOf('first'));
    const [running, other, after] = ['running', 'other', 'after'].map((name) =>
      pendingRead(name, started, name === 'after' ? 'first' : name),
    );
    const runningResult = settled(running!.run(gate));
    const otherResult = settled(other!.run(gate));
    // From where the first page ended, with nothing more to come: a new read, not a replay's next page.
    const afterResult = settled(after!.run(gate, 'first-1'));
    running!.finish();
    await vi.waitFor(() => expect(started).toEqual(['first', 'running', 'other']));
    other!.finish();
    await vi.waitFor(() => expect(started).toEqual(['first', 'running', 'other', 'after']));
    after!.finish();
    expect(await Promise.all([runningResult, otherResult, afterResult])).toEqual(
      ['running', 'other', 'after'].map((name) => ({ value: pageOf(name) })),
    );
  });

  it('remembers the ends of the last 1024 pages with more to come, forgetting the oldest', async () => {
    const gate = new ReadGate(1, 5000);
    // 1025 pages of one key, each ending at `<i>-1` with more to come.
    for (let i = 0; i <= 1024; i++)
      await gate.read('k', `${i}-0`, async () => ({
        events: [{ id: `${i}-1`, data: '' }],
        bytes: 1,
        truncated: false,
        more: true,
      }));
    const started: string[] = [];
    const [running, other, oldest, recent] = ['running', 'other', 'oldest', 'recent'].map((name) =>
      pendingRead(name, started, name === 'oldest' || name === 'recent' ? 'k' : name),
    );
    const runningResult = settled(running!.run(gate));
    const otherResult = settled(other!.run(gate));
    // From the first page's end, forgotten: it waits its turn as a new read does.
    const oldestResult = settled(oldest!.run(gate, '0-1'));
    const recentResult = settled(recent!.run(gate, '1-1'));
    running!.finish();
    await vi.waitFor(() => expect(started).toEqual(['running', 'recent']));
    recent!.finish();
    await vi.waitFor(() => expect(started).toEqual(['running', 'recent', 'other']));
    other!.finish();
    await vi.waitFor(() => expect(started).toEqual(['running', 'recent', 'other', 'oldest']));
    oldest!.finish();
    expect(await Promise.all([runningResult, otherResult, oldestResult, recentResult])).toEqual(
      ['running', 'other', 'oldest', 'recent'].map((name) => ({ value: pageOf(name) })),
    );
  });
});
