// Live reads Redis refuses for good (an ACL, a replica whose master is gone) and reads while it holds
// writes back: what onError is told, and that delivery goes on once Redis serves the reads again.
import { setTimeout as realSleep } from 'node:timers/promises';
import { beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { RedisEngineError } from '../src/index.js';
import { RedisProxy } from './support/proxy.js';
import { killLiveConnection, useRedis } from './support/use-redis.js';

const redis = useRedis({ flush: true });
const { engine } = redis;

/** How many times Redis refused `command` so far (ACL, `MASTERDOWN`). */
async function refused(command: string): Promise<number> {
  const stats = await redis.raw.info('commandstats');
  return Number(stats.match(new RegExp(`cmdstat_${command}:.*rejected_calls=(\\d+)`))?.[1] ?? 0);
}

/** How many `XREAD`s Redis refused so far: each one live read that failed. */
const refusedReads = () => refused('xread');

/** How many times Redis ran `command` so far (refused calls not counted). */
async function calls(command: string): Promise<number> {
  const [count] = await callsOf(command);
  return count;
}

/** {@link calls} of each command at one moment: a script run between two reads would count in one only. */
async function callsOf<T extends string[]>(...commands: T): Promise<{ [K in keyof T]: number }> {
  const stats = await redis.raw.info('commandstats');
  const of = (command: string) =>
    Number(stats.match(new RegExp(`cmdstat_${command}:calls=(\\d+)`))?.[1] ?? 0);
  return commands.map(of) as { [K in keyof T]: number };
}

/** Polls `check` on Node's own timers, for a test whose `Date` is fake. */
async function poll(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let waited = 0; !(await check()); waited += 5) {
    if (waited > 10_000) throw new Error(`timed out waiting for ${what}`);
    await realSleep(5);
  }
}

/** The engine's clock on a fake `Date`, so that only the test moves it; its timers stay real. */
function fakeClock(): void {
  vi.useFakeTimers({ toFake: ['Date'] });
  onTestFinished(() => {
    vi.useRealTimers();
  });
}

const asUser = { username: 'reader', password: 'secret' };

describe('redisEngine whose live reads Redis refuses for good', () => {
  it('tells onError once, then at growing intervals with the count held back, and of the recovery once', async () => {
    await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all']);
    const errors: unknown[] = [];
    const store = engine({ blockMs: 20, clientOptions: asUser, onError: (error) => errors.push(error) });
    const ids: string[] = [];
    const stop = await store.listen('refused', {
      event: (m) => ids.push(m.id),
      gap: () => ids.push('<gap>'),
    });
    // A cursor on an entry: each failed read is then one refused XREAD, no script to fall back from.
    const first = await store.append('refused', { data: 'first' });
    await poll(() => ids.length === 1, 'the first event');
    fakeClock();
    const before = await refusedReads();
    await redis.raw.aclSetUser('reader', ['-xread']);
    await poll(async () => (await refusedReads()) >= before + 3, 'three refused reads');
    expect(errors.map(String)).toEqual([expect.stringMatching(/NOPERM .*'xread'/)]);

    // The next report waits a second, then two more.
    vi.advanceTimersByTime(1000);
    await poll(() => errors.length === 2, 'the repeated refusal');
    const told = (await refusedReads()) - before;
    vi.advanceTimersByTime(1999);
    await poll(async () => (await refusedReads()) - before >= told + 2, 'two more refused reads');
    expect(errors).toHaveLength(2);
    vi.advanceTimersByTime(1);
    await poll(() => errors.length === 3, 'the refusal repeated again');

    await redis.raw.aclSetUser('reader', ['+xread']);
    await poll(() => errors.length === 4, 'the recovery');
    const failures = (await refusedReads()) - before;
    const second = await store.append('refused', { data: 'second' });
    await poll(() => ids.length === 2, 'the event after the recovery');
    stop();
    expect(ids).toEqual([first, second]);
    const [, again, more, recovered] = errors as { heldBack: number; failures?: number; cause?: unknown }[];
    expect(again).toMatchObject({ name: 'RedisRepeatedFailure' });
    expect(String(again)).toMatch(/NOPERM .*'xread'/);
    expect(more).toMatchObject({ name: 'RedisRepeatedFailure' });
    expect(recovered).toMatchObject({ name: 'RedisRecovered', failures });
    // Every refused read is counted: told at once, or held back and counted in the next report.
    expect(3 + again!.heldBack + more!.heldBack + recovered!.heldBack).toBe(failures);
    // Three refused before the clock moved: the first told, the next held back (Redis counts the
    // third before the engine has its reply).
    expect(again!.heldBack).toBeGreaterThanOrEqual(1);
  });

  it('tells a different refusal at once, however recent the last report (NOPERM, then MASTERDOWN)', async () => {
    await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all']);
    const errors: unknown[] = [];
    const store = engine({ blockMs: 20, clientOptions: asUser, onError: (error) => errors.push(error) });
    const ids: string[] = [];
    const stop = await store.listen('replica', {
      event: (m) => ids.push(m.id),
      gap: () => ids.push('<gap>'),
    });
    const first = await store.append('replica', { data: 'first' });
    await poll(() => ids.length === 1, 'the first event');
    fakeClock();
    const told = (text: string) => errors.filter((error) => String(error).includes(text));
    let before = await refusedReads();
    await redis.raw.aclSetUser('reader', ['-xread']);
    await poll(async () => (await refusedReads()) >= before + 3, 'three refused reads');
    expect(told('NOPERM')).toHaveLength(1);
    // A replica of a master that is not there, told to serve no stale data: Redis answers MASTERDOWN
    // ahead of the ACL's NOPERM.
    await redis.raw.configSet('replica-serve-stale-data', 'no');
    await redis.raw.sendCommand(['REPLICAOF', '127.0.0.1', '1']);
    try {
      await poll(() => told('MASTERDOWN').length > 0, 'MASTERDOWN');
      before = await refusedReads();
      await poll(async () => (await refusedReads()) >= before + 3, 'three more refused reads');
      expect(told('MASTERDOWN')).toHaveLength(1);
    } finally {
      await redis.raw.sendCommand(['REPLICAOF', 'NO', 'ONE']);
      await redis.raw.configSet('replica-serve-stale-data', 'yes');
      await redis.raw.aclSetUser('reader', ['+xread']);
    }
    await poll(() => errors.some((error) => (error as Error).name === 'RedisRecovered'), 'the recovery');
    const second = await store.append('replica', { data: 'second' });
    await poll(() => ids.length === 2, 'the event after the recovery');
    stop();
    expect(ids).toEqual([first, second]);
    expect(errors.map((error) => (error as Error).name === 'RedisRecovered')).toEqual([false, false, true]);
  });

  it('waits longer before each retry of a refused read, doubling from 25 ms to half a second', async () => {
    await redis.raw.aclSetUser('no-xread', ['reset', 'on', '>secret', '~sse:*', '+@all', '-xread']);
    onTestFinished(async () => {
      await redis.raw.aclDelUser('no-xread');
    });
    // Only the engine's timers are fake, and each wait it starts is recorded (its read timeouts are
    // seconds): the test moves the clock through one wait at a time, once Redis refused the read.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const fake = globalThis.setTimeout;
    const waits: number[] = [];
    const recording = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((
      callback: () => void,
      ms?: number,
    ) => {
      if (ms !== undefined && ms <= 500) waits.push(ms);
      return fake(callback, ms);
    }) as typeof setTimeout);
    try {
      const store = engine({ clientOptions: { username: 'no-xread', password: 'secret' } });
      await store.append('backing off', { data: 'x' });
      const before = await refusedReads();
      await store.listen('backing off', { event: () => {}, gap: () => {} });
      for (let tries = 1; tries <= 8; tries++) {
        await poll(() => waits.length === tries, `refused read ${tries}`);
        await vi.advanceTimersByTimeAsync(waits.at(-1)!);
      }
      await poll(() => waits.length === 9, 'refused read 9');
      // 9 reads in 2,275 ms, rather than 92 at one every 25 ms.
      expect(waits).toEqual([25, 50, 100, 200, 400, 500, 500, 500, 500]);
      expect((await refusedReads()) - before).toBe(9);
    } finally {
      recording.mockRestore();
      vi.useRealTimers();
    }
  });
});

/**
 * Makes Redis answer `LOADING` for about `ms` (at 1 ms a key), as after a restart on a large dataset:
 * `DEBUG RELOAD` on a connection of its own, which it holds until the load is done. Resolves once
 * Redis answers `LOADING`, with the end of the load.
 */
async function loading(ms: number): Promise<{ done: Promise<unknown> }> {
  const { raw } = redis;
  await raw.sendCommand(['DEBUG', 'POPULATE', String(ms), 'filler']);
  await raw.configSet({ 'key-load-delay': '1000', 'loading-process-events-interval-bytes': '1024' });
  const reloading = raw.duplicate();
  reloading.on('error', () => {});
  await reloading.connect();
  const done = reloading.sendCommand(['DEBUG', 'RELOAD']).finally(async () => {
    reloading.destroy();
    await raw.configSet('key-load-delay', '0');
  });
  onTestFinished(async () => {
    await done.catch(() => {});
  });
  await poll(
    () =>
      raw.ping().then(
        () => false,
        (error) => /^LOADING/.test(String(error.message)),
      ),
    'LOADING',
  );
  return { done };
}

describe('redisEngine while Redis loads its dataset', () => {
  it('tells LOADING once, then repeated and recovered, rejects publishes and replays, and misses nothing', async () => {
    const errors: unknown[] = [];
    const store = engine({ blockMs: 20, onError: (error) => errors.push(error) });
    const ids: string[] = [];
    const stop = await store.listen('loading', {
      event: (m) => ids.push(m.id),
      gap: () => ids.push('<gap>'),
    });
    const first = await store.append('loading', { data: 'first' });
    await poll(() => ids.length === 1, 'the first event');
    fakeClock();
    const { done } = await loading(700);
    const published = await store.append('loading', { data: 'refused' }).catch((error: unknown) => error);
    expect(published).toBeInstanceOf(RedisEngineError);
    expect(published).toMatchObject({ operation: 'publish', message: expect.stringMatching(/LOADING/) });
    const replayed = await store
      .read('loading', first, { count: 10, bytes: 10_000 })
      .catch((error: unknown) => error);
    expect(replayed).toBeInstanceOf(RedisEngineError);
    expect(replayed).toMatchObject({ operation: 'read', message: expect.stringMatching(/LOADING/) });
    const started = await store
      .listen('other', { event: () => {}, gap: () => {} })
      .catch((error: unknown) => error);
    expect(started).toBeInstanceOf(RedisEngineError);
    expect(started).toMatchObject({ operation: 'listen', message: expect.stringMatching(/LOADING/) });
    // A blocked XREAD stays blocked through the load: its connection dropped, as by a restart, the
    // reader reconnects to a Redis that answers LOADING.
    await killLiveConnection(redis.raw);
    const told = () => errors.filter((error) => /LOADING/.test(String(error)));
    await poll(() => told().length === 1, 'the live reads refused');
    vi.advanceTimersByTime(1000);
    await poll(() => told().length === 2, 'the refusal repeated');
    await done;
    await poll(() => errors.some((error) => (error as Error).name === 'RedisRecovered'), 'the recovery');
    const second = await store.append('loading', { data: 'second' });
    await poll(() => ids.length === 2, 'the event after the load');
    stop();
    expect(ids).toEqual([first, second]);
    expect(told()[1]).toMatchObject({ name: 'RedisRepeatedFailure', failing: 'live reads' });
    const reads = errors.filter((error) => (error as { failing?: string }).failing === 'live reads');
    expect(reads.map((error) => (error as Error).name)).toEqual(['RedisRepeatedFailure', 'RedisRecovered']);
    // Besides them: the live connection's drop, told by the connections' reports, and the first LOADING.
    expect(errors).toHaveLength(4);
  });
});

describe('redisEngine whose live reader checks its cursors while Redis holds writes back', () => {
  it('reads on after a failed read during CLIENT PAUSE WRITE, its checks run as EVAL_RO in the MULTI', async () => {
    const errors: unknown[] = [];
    // A deadline a busy machine's pauses stay within, far below the pause: a MULTI Redis held back
    // would time out, and no blocking read follow, while it lasts.
    const store = engine({ blockMs: 20, commandTimeoutMs: 1000, onError: (error) => errors.push(error) });
    const ids: string[] = [];
    const listener = { event: (m: { id: string }) => ids.push(m.id), gap: () => ids.push('<gap>') };
    // A large cursor (checked by HAS_ENTRY) and a topic never written (its counts by STREAM_INFO).
    const stops = [await store.listen('large', listener), await store.listen('empty', listener)];
    const large = await store.append('large', { data: 'x'.repeat(20_000) });
    await poll(() => ids.length === 1, 'the large event');
    await redis.raw.sendCommand(['CLIENT', 'PAUSE', '30000', 'WRITE']);
    try {
      const old = (await redis.raw.clientList()).find((client) => client.cmd === 'xread')?.id;
      await killLiveConnection(redis.raw);
      // A new live connection blocks in XREAD only once a checked read passed.
      await poll(async () => {
        const clients = await redis.raw.clientList();
        return clients.some(
          (client) => client.cmd === 'xread' && client.id !== old && client.flags.includes('b'),
        );
      }, 'a blocking read on the new connection');
    } finally {
      await redis.raw.sendCommand(['CLIENT', 'UNPAUSE']);
    }
    for (const stop of stops) stop();
    expect(ids).toEqual([large]);
    expect(errors.filter((error) => String(error).includes('no reply'))).toEqual([]);
  });

  it.each([
    ['EVAL_RO', ['-eval_ro'], ['EVAL_RO']],
    ['EVAL_RO and EVAL', ['-eval_ro', '-eval'], ['EVAL_RO', 'EVAL']],
  ])(
    'falls back from EVAL_RO in the MULTI as an ACL user without %s, and tells each refusal once',
    async (_, acl, refused) => {
      await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all', ...acl]);
      const errors: unknown[] = [];
      const store = engine({ blockMs: 20, clientOptions: asUser, onError: (error) => errors.push(error) });
      const ids: string[] = [];
      const listener = { event: (m: { id: string }) => ids.push(m.id), gap: () => ids.push('<gap>') };
      const stops = [await store.listen('large', listener), await store.listen('empty', listener)];
      const large = await store.append('large', { data: 'x'.repeat(20_000) });
      await poll(() => ids.length === 1, 'the large event');
      // The read after the reset is a checked one, whose MULTI the refused script would abort.
      await killLiveConnection(redis.raw);
      const small = await store.append('empty', { data: 'small' });
      await poll(() => ids.length === 2, 'the event after it');
      for (const stop of stops) stop();
      expect(ids).toEqual([large, small]);
      // Met at each topic's start, then in the checked read's MULTI: told once per engine.
      expectScriptRefusalsToldOnce(errors, refused);
    },
  );
});

/**
 * Expects `errors` to tell of refused scripts once for each of `commands`, in that order, each
 * saying what the engine does instead, Redis's refusal its cause, and nowhere else.
 */
function expectScriptRefusalsToldOnce(errors: unknown[], commands: string[]): void {
  const told = errors.filter((error) => /NOPERM .*'eval(_ro)?'/.test(String(error)));
  expect(
    told.map((error) => /^Redis refused (EVAL_RO|EVAL), so /.exec((error as Error).message)?.[1]),
  ).toEqual(commands);
  told.forEach((error, i) => {
    expect(String((error as Error).cause)).toMatch(new RegExp(`NOPERM .*'${commands[i]!.toLowerCase()}'`));
  });
}

describe('redisEngine with maxAgeMs whose ACL refuses XTRIM', () => {
  it('tells onError once, stores every event, and sends no XTRIM after the refusal', async () => {
    await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all', '-xtrim']);
    const errors: unknown[] = [];
    const store = engine({ maxAgeMs: 1, clientOptions: asUser, onError: (error) => errors.push(error) });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await store.append('aged', { data: String(i) }));
    // Publishes share one connection, answered in order: each XTRIM was answered before the next XADD.
    const page = await store.read('aged', ids[0]!, { count: 10, bytes: 10_000 });
    expect(page.events.map((event) => event.id)).toEqual(ids.slice(1));
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toMatch(/^Redis refused XTRIM, so .*maxAgeMs/);
    expect(String((errors[0] as Error).cause)).toMatch(/NOPERM .*'xtrim'/);
    const before = await refused('xtrim');
    await store.append('aged', { data: 'after' });
    await store.read('aged', ids[0]!, { count: 1, bytes: 10_000 });
    expect(await refused('xtrim')).toBe(before);
    expect(errors).toHaveLength(1);
  });

  it('tells onError of every XTRIM refused the key, which says nothing of the command, and stores every event', async () => {
    // XTRIM is allowed on other keys only.
    await redis.raw.aclSetUser('reader', [
      'reset',
      'on',
      '>secret',
      '~sse:*',
      '+@all',
      '-xtrim',
      '(~other:* +xtrim)',
    ]);
    const errors: unknown[] = [];
    const store = engine({ maxAgeMs: 1, clientOptions: asUser, onError: (error) => errors.push(error) });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await store.append('aged', { data: String(i) }));
    await poll(() => errors.length === 3, 'the refusal of each XTRIM');
    for (const error of errors) expect((error as Error).message).toMatch(/^NOPERM .* keys/);
    const page = await store.read('aged', ids[0]!, { count: 10, bytes: 10_000 });
    expect(page.events.map((event) => event.id)).toEqual(ids.slice(1));
  });
});

describe('redisEngine whose ACL refuses EVAL and EVAL_RO', () => {
  beforeEach(() =>
    redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all', '-eval_ro', '-eval']),
  );

  /** Listens to `topic` as that user, each event's id and each gap (`<kind>`) recorded in `ids`. */
  async function listenAsReader(topic: string) {
    const store = engine({ blockMs: 20, clientOptions: asUser, onError: () => {} });
    const ids: string[] = [];
    const stop = await store.listen(topic, {
      event: (m) => ids.push(m.id),
      gap: (kind) => ids.push(`<${kind}>`),
    });
    return { store, ids, stop };
  }

  it('tells onError once of each, that a replay fetches what the scripts would only check, and replays whole', async () => {
    const errors: unknown[] = [];
    const store = engine({ blockMs: 20, clientOptions: asUser, onError: (error) => errors.push(error) });
    const first = await store.append('plain', { data: 'x'.repeat(20_000) });
    const ids = [await store.append('plain', { data: 'a' }), await store.append('plain', { data: 'b' })];
    for (let i = 0; i < 2; i++) {
      const page = await store.read('plain', first, { count: 10, bytes: 10_000 });
      expect(page).toMatchObject({ truncated: false, more: false });
      expect(page.events.map((event) => event.id)).toEqual(ids);
    }
    expectScriptRefusalsToldOnce(errors, ['EVAL_RO', 'EVAL']);
    expect((errors[1] as Error).message).toMatch(/^Redis refused EVAL, so .*fetch.*not skipped/);
  });

  it('reports no gap when its last event is deleted as the next one is written, told by XINFO STREAM', async () => {
    const { store, ids, stop } = await listenAsReader('deleted then written');
    const b = await store.append('deleted then written', { data: 'b' });
    await poll(() => ids.includes(b), 'the event');
    const xinfo = await calls('xinfo\\|stream');
    const [, c] = (await redis.raw
      .multi()
      .xDel('sse:{deleted then written}', b)
      .xAdd('sse:{deleted then written}', '*', { d: 'c' })
      .exec()) as unknown as [number, string];
    await poll(() => ids.includes(c), 'the next event');
    stop();
    expect(ids).toEqual([b, c]);
    // Told by XINFO STREAM itself, as the script that reads it is refused.
    expect(await calls('xinfo\\|stream')).toBeGreaterThan(xinfo);
  });

  it('delivers nothing twice, and reports no gap, when its last event is deleted from the stream, told by XINFO STREAM', async () => {
    const { store, ids, stop } = await listenAsReader('deleted');
    const a = await store.append('deleted', { data: 'a' });
    const b = await store.append('deleted', { data: 'b' });
    await poll(() => ids.includes(b), 'both events');
    await redis.raw.xDel('sse:{deleted}', b);
    // A few reads that find the cursor gone.
    const reads = await calls('xread');
    await poll(async () => (await calls('xread')) > reads + 3, 'reads past the deletion');
    const c = await store.append('deleted', { data: 'c' });
    await poll(() => ids.includes(c), 'the next event');
    stop();
    expect(ids).toEqual([a, b, c]);
  });

  it('tells a new topic of entries trimmed before its first read, counted by XINFO STREAM', async () => {
    // Its stream does not exist yet: it is read from 0-0, and only entries-added can tell what was
    // trimmed before that read.
    const { ids, stop } = await listenAsReader('fresh');
    const multi = redis.raw.multi();
    for (let i = 0; i < 3; i++) multi.xAdd('sse:{fresh}', '*', { d: `m${i}` });
    multi.xTrim('sse:{fresh}', 'MAXLEN', 1);
    const left = ((await multi.exec()) as unknown as string[])[2]!;
    await poll(() => ids.includes(left), 'the entry left');
    stop();
    expect(ids).toEqual(['<continue>', left]);
  });

  it('tells onError that an entry too large to arrive in time is not skipped, met first where a read timed out', async () => {
    const proxy = await RedisProxy.start(redis.server.port);
    onTestFinished(() => proxy.close());
    const errors: unknown[] = [];
    const store = engine({
      url: proxy.url,
      blockMs: 20,
      readCount: 1,
      // Time for a busy machine's new connection to answer with the refusal, once the held read
      // timed out: the script waits no longer than this for it to be ready, then tells nothing.
      commandTimeoutMs: 2000,
      clientOptions: asUser,
      onError: (error) => errors.push(error),
    });
    // No topic started, no page read: nothing has run a script yet. The first connect may outlast
    // the timeout on a busy machine (`connected()` would read a page, by a script).
    let first: string | undefined;
    for (let attempt = 1; first === undefined; attempt++)
      first = await store.append('held', { data: 'first' }).catch((error: unknown) => {
        if (attempt === 20) throw error;
        return undefined;
      });
    // Replies held back stand for an entry too large to arrive in time: a replay's read that times
    // out asks Redis, by a script on the connection that replaces this one, for the largest entry
    // it met (as a live read's does), and that script is refused. Told once however often:
    // `refusals.test.ts`.
    for (const connection of proxy.connections) connection.hold();
    await expect(store.read('held', first, { count: 10, bytes: 10_000 })).rejects.toThrow(/no reply/);
    await poll(() => errors.some((error) => /refused EVAL,/.test(String(error))), 'the refusal told');
    const told = errors.filter((error) => /refused EVAL,/.test(String(error)));
    expect(told).toHaveLength(1);
    expect((told[0] as Error).message).toMatch(/^Redis refused EVAL, so .*not skipped/);
    expect(String((told[0] as Error).cause)).toMatch(/NOPERM .*'eval'/);
  });
});

describe('redisEngine whose ACL refuses another command than its scripts', () => {
  it('checks a large cursor by EVAL again once XREAD is allowed again, instead of by XRANGE for good', async () => {
    // Without EVAL_RO, the checked read's MULTI queues EVAL, beside the XREAD the ACL refuses next.
    await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all', '-eval_ro']);
    const errors: unknown[] = [];
    const store = engine({ blockMs: 20, clientOptions: asUser, onError: (error) => errors.push(error) });
    const ids: string[] = [];
    const stop = await store.listen('large', { event: (m) => ids.push(m.id), gap: () => ids.push('<gap>') });
    const large = await store.append('large', { data: 'x'.repeat(20_000) });
    await poll(() => ids.length === 1, 'the large event');
    const before = await refusedReads();
    await redis.raw.aclSetUser('reader', ['-xread']);
    // The second refused read is the checked one, its MULTI refused for the XREAD in it.
    await poll(async () => (await refusedReads()) >= before + 3, 'three refused reads');
    await redis.raw.aclSetUser('reader', ['+xread']);
    await poll(() => errors.some((error) => (error as Error).name === 'RedisRecovered'), 'the recovery');
    const [evals, ranges, reads] = await callsOf('eval', 'xrange', 'xread');
    await poll(async () => (await calls('xread')) >= reads + 3, 'three more reads');
    stop();
    expect(ids).toEqual([large]);
    // Each blocking read checks the large cursor beside it: by the script (whose XRANGE Redis
    // counts too), not by fetching it.
    const [evalsAfter, rangesAfter] = await callsOf('eval', 'xrange');
    const scripts = evalsAfter - evals;
    expect(scripts).toBeGreaterThanOrEqual(2);
    expect(rangesAfter - ranges).toBe(scripts);
  });
});

describe('redisEngine whose ACL refuses EVAL_RO', () => {
  it('runs its read-only scripts as EVAL once refused, and asks EVAL_RO no more', async () => {
    await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all', '-eval_ro']);
    const store = engine({ clientOptions: asUser, onError: () => {} });
    const first = await store.append('replayed', { data: 'a' });
    await store.append('replayed', { data: 'b' });
    const limit = { count: 10, bytes: 10_000 };
    await store.read('replayed', first, limit);
    const before = await refused('eval_ro');
    expect(before).toBeGreaterThan(0);
    const evals = await calls('eval');
    for (let i = 0; i < 3; i++) await store.read('replayed', first, limit);
    expect(await refused('eval_ro')).toBe(before);
    expect((await calls('eval')) - evals).toBeGreaterThanOrEqual(3);
  });
});

describe('redisEngine whose ACL refuses it a key', () => {
  it('runs its read-only scripts as EVAL_RO on its other keys, instead of EVAL for good', async () => {
    await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:{a*', '+@all']);
    const store = engine({ blockMs: 20, clientOptions: asUser, onError: () => {} });
    const listener = { event: () => {}, gap: () => {} };
    // A topic's start point is read by a script on the command connection: refused for its key.
    await expect(store.listen('b', listener)).rejects.toThrow(/NOPERM .*keys/);
    const [evals, readOnly] = await callsOf('eval', 'eval_ro');
    const stop = await store.listen('a', listener);
    stop();
    const [evalsAfter, readOnlyAfter] = await callsOf('eval', 'eval_ro');
    expect(readOnlyAfter - readOnly).toBeGreaterThanOrEqual(1);
    expect(evalsAfter - evals).toBe(0);
  });
});

describe('redisEngine while Redis is out of reach', () => {
  it('tells each connection failure once, its repeats at growing intervals, and the recovery once', async () => {
    const proxy = await RedisProxy.start(redis.server.port);
    onTestFinished(() => proxy.close());
    const errors: unknown[] = [];
    const store = engine({ url: proxy.url, blockMs: 20, onError: (error) => errors.push(error) });
    const ids: string[] = [];
    const stop = await store.listen('outage', { event: (m) => ids.push(m.id), gap: () => {} });
    await store.append('outage', { data: 'first' });
    await poll(() => ids.length === 1, 'the first event');
    fakeClock();
    // Every attempt to connect meets a connection closed at once: two connections, many attempts.
    proxy.dropNew = true;
    const attempts = proxy.connections.length;
    for (const connection of proxy.connections) connection.destroy();
    // Ten attempts, each failing alike: told once while the clock stands, as the connections'
    // failure. The live read under way fails with the same error, and the reads while the
    // connection is down find it offline: the connections' reports hold those.
    await poll(() => proxy.connections.length >= attempts + 10, 'ten attempts to reconnect');
    expect(errors.filter((error) => /closed unexpectedly/i.test(String(error)))).toHaveLength(1);

    vi.advanceTimersByTime(1000);
    await poll(
      () => errors.some((error) => /Connections to Redis still fail/.test(String(error))),
      'the repeated connection failure',
    );
    proxy.dropNew = false;
    await poll(
      () => errors.some((error) => /Connections to Redis succeed again/.test(String(error))),
      'the recovery',
    );
    await store.append('outage', { data: 'second' });
    await poll(() => ids.length === 2, 'the event after the recovery');
    stop();
    const names = errors.map((error) => (error as Error).name);
    expect(names.filter((name) => name === 'RedisRecovered')).toHaveLength(1);
    expect(names).not.toContain('ClientOfflineError');
    expect(errors.filter((error) => (error as { failing?: string }).failing === 'live reads')).toEqual([]);
  });
});

/**
 * A user without XINFO listening to `topic` (through `url`, Redis itself by default), whose stream
 * held `a` before and `b` after it started: `b` received, and nothing told to onError yet.
 */
async function readingWithoutXInfo(topic: string, url = redis.server.url) {
  await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all', '-xinfo']);
  const errors: unknown[] = [];
  const store = engine({ url, blockMs: 20, clientOptions: asUser, onError: (error) => errors.push(error) });
  // A topic that starts on an entry is read without XINFO until its cursor's entry is gone.
  await store.append(topic, { data: 'a' });
  const ids: string[] = [];
  const stop = await store.listen(topic, {
    event: (m) => ids.push(m.id),
    gap: (kind) => ids.push(`<${kind}>`),
  });
  const b = await store.append(topic, { data: 'b' });
  await poll(() => ids.includes(b), 'the event');
  expect(errors).toEqual([]);
  return { store, ids, b, errors, stop };
}

/** Expects `errors` to hold one report of a refused XINFO (the refusal its cause), and nothing else. */
function expectXInfoToldOnce(errors: unknown[]): void {
  expect(errors).toHaveLength(1);
  const [told] = errors as Error[];
  expect(told!.message).toMatch(/^Redis refused XINFO, so .*gap/);
  expect(String(told!.cause)).toMatch(/NOPERM .*'xinfo|can't run this command or subcommand script/);
}

describe('redisEngine whose ACL refuses XINFO', () => {
  it.each([
    ['XINFO', ['-xinfo']],
    ['EVAL and XINFO', ['-eval', '-xinfo']],
    ['scripts and XINFO', ['-eval_ro', '-eval', '-xinfo']],
    ['EVALSHA', ['-evalsha']],
  ])(
    'tells new topics of entries trimmed before their first read, as a user without %s',
    async (name, acl) => {
      await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all', ...acl]);
      const errors: unknown[] = [];
      const store = engine({ blockMs: 20, clientOptions: asUser, onError: (error) => errors.push(error) });
      const ids: string[] = [];
      // Their streams do not exist yet: the reader reads them from 0-0, and only entries-added can
      // tell what was trimmed before that read.
      const listener = {
        event: (m: { id: string }) => ids.push(m.id),
        gap: (kind?: string) => ids.push(`<${kind}>`),
      };
      const stops = [await store.listen('fresh', listener), await store.listen('fresh2', listener)];
      const left: string[] = [];
      for (const key of ['sse:{fresh}', 'sse:{fresh2}']) {
        const multi = redis.raw.multi();
        for (let i = 0; i < 3; i++) multi.xAdd(key, '*', { d: `m${i}` });
        multi.xTrim(key, 'MAXLEN', 1);
        const added = (await multi.exec()).slice(0, 3) as unknown as string[];
        left.push(added[2]!);
        await poll(() => ids.includes(added[2]!), 'the entry left');
      }
      for (const stop of stops) stop();
      expect(ids).toEqual(['<continue>', left[0], '<continue>', left[1]]);
      // Told once, however many topics and reads met it; so are the scripts' refusals.
      if (name === 'EVALSHA') expect(errors).toEqual([]);
      else if (name === 'scripts and XINFO') {
        expectScriptRefusalsToldOnce(errors, ['EVAL_RO', 'EVAL']);
        expectXInfoToldOnce(errors.filter((error) => !/^Redis refused EVAL/.test((error as Error).message)));
      } else expectXInfoToldOnce(errors);
    },
  );

  it.each([
    ['XINFO', ['-xinfo']],
    ['EVAL and XINFO', ['-eval', '-xinfo']],
  ])('starts a topic whose stream exists without entries, as a user without %s', async (_, acl) => {
    await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all', ...acl]);
    const errors: unknown[] = [];
    const store = engine({ blockMs: 20, clientOptions: asUser, onError: (error) => errors.push(error) });
    await redis.raw.xAdd('sse:{emptied}', '*', { d: 'old' });
    await redis.raw.xTrim('sse:{emptied}', 'MAXLEN', 0);
    const ids: string[] = [];
    const stop = await store.listen('emptied', {
      event: (m) => ids.push(m.id),
      gap: (kind) => ids.push(`<${kind}>`),
    });
    // The refusal is met as the topic starts: whether entries were deleted from its stream.
    expectXInfoToldOnce(errors);
    const id = await store.append('emptied', { data: 'new' });
    await poll(() => ids.includes(id), 'the event');
    stop();
    // Whether entries were trimmed before the first read cannot be told: a gap, not a silent one.
    expect(ids).toEqual(['<continue>', id]);
    expectXInfoToldOnce(errors);
  });

  it('delivers nothing twice when its last event is deleted from the stream, as a user without XINFO', async () => {
    const { store, ids, b, errors, stop } = await readingWithoutXInfo('deleted');
    await redis.raw.xDel('sse:{deleted}', b);
    const reads = await calls('xread');
    await poll(async () => (await calls('xread')) > reads + 3, 'reads past the deletion');
    const c = await store.append('deleted', { data: 'c' });
    await poll(() => ids.includes(c), 'the next event');
    stop();
    // Whether entries written after b went with it cannot be told: a gap, but nothing again.
    expect(ids).toEqual([b, '<continue>', c]);
    expectXInfoToldOnce(errors);
  });

  it('delivers an entry written while it checks a deleted cursor, as a user without XINFO', async () => {
    const proxy = await RedisProxy.start(redis.server.port);
    onTestFinished(() => proxy.close());
    const { ids, b, errors, stop } = await readingWithoutXInfo('raced', proxy.url);
    // A read finds the cursor gone and asks for the stream's last entry: c is written just before.
    const written = proxy.beforeNext(
      (command) => command.includes('XREVRANGE'),
      () => redis.raw.xAdd('sse:{raced}', '*', { d: 'c' }),
    );
    await redis.raw.xDel('sse:{raced}', b);
    const c = await written;
    await poll(() => ids.includes(c), 'the entry written meanwhile');
    stop();
    // Whether entries went with b is not known once c follows it: a gap may be told, but c is sent.
    expect(ids.filter((id) => !id.startsWith('<'))).toEqual([b, c]);
    expectXInfoToldOnce(errors);
  });

  it('tells a listener and a resume of entries trimmed past them, as a user without XINFO', async () => {
    await redis.raw.aclSetUser('reader', ['reset', 'on', '>secret', '~sse:*', '+@all', '-xinfo']);
    const store = engine({ blockMs: 20, clientOptions: asUser });
    const first = await store.append('behind', { data: 'first' });
    const ids: string[] = [];
    const stop = await store.listen('behind', {
      event: (m) => ids.push(m.id),
      gap: (kind) => ids.push(`<${kind}>`),
    });
    // The cursor is checked by XRANGE, after a dropped connection as between two reads: no XINFO.
    await killLiveConnection(redis.raw);
    const multi = redis.raw.multi();
    for (let i = 0; i < 3; i++) multi.xAdd('sse:{behind}', '*', { d: `m${i}` });
    multi.xTrim('sse:{behind}', 'MAXLEN', 1);
    const added = (await multi.exec()).slice(0, 3) as unknown as string[];
    await poll(() => ids.includes(added[2]!), 'the entry left');
    stop();
    // After a failed read, Redis may have restarted: the gap says the ids may start lower.
    expect(ids).toEqual(['<restart>', added[2]]);
    expect(await store.read('behind', first, { count: 10, bytes: 10_000 })).toMatchObject({
      truncated: true,
    });
  });
});
