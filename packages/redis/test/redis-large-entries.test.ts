// The memory of entries too large to arrive in time, on a real Redis behind a slow link: what it
// proved must outlive what it only suspects.
import { createClient, ErrorReply, type RedisClientOptions } from 'redis';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import type { RedisClient } from '../src/client.js';
import { TimedClient } from '../src/deadline.js';
import { LargeEntries } from '../src/large-entries.js';
import { Refusals } from '../src/refusals.js';
import { readPage } from '../src/stream-read.js';
import { RedisProxy } from './support/proxy.js';
import { useRedis } from './support/use-redis.js';

const redis = useRedis({ flush: true });

let close: (() => void) | undefined;
afterEach(() => {
  close?.();
  close = undefined;
});

/**
 * LargeEntries on a client whose link carries 1 MB/s, with a 1 s deadline, what it told onError and
 * what it told its refusals; `clientOptions` are the client's (a user of an ACL).
 */
async function overSlowLink(clientOptions?: RedisClientOptions) {
  const proxy = await RedisProxy.start(redis.server.port);
  proxy.limitNew = 1_000_000;
  const client: RedisClient = createClient({ ...clientOptions, url: proxy.url });
  client.on('error', () => {});
  await client.connect();
  const before = close;
  close = () => {
    before?.();
    client.destroy();
    proxy.close();
  };
  const errors: unknown[] = [];
  const refused: unknown[] = [];
  const entries = new LargeEntries(
    new TimedClient(client, 1000),
    (e) => errors.push(e),
    new Refusals((e) => refused.push(e)),
  );
  return { entries, errors, refused, proxy };
}

describe('LargeEntries', () => {
  it('keeps an entry proven too large when more suspects come than it remembers', async () => {
    const key = 'sse:{large}';
    const small = await redis.raw.xAdd(key, '*', { d: 'small' });
    // 3 MB at 1 MB/s: even alone, the entry takes 3 s, over the 1 s deadline.
    const large = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(3_000_000) });
    const suspects: string[] = [];
    for (let i = 0; i < 20; i++) suspects.push(await redis.raw.xAdd(key, '*', { d: `after ${i}` }));

    const { entries, errors } = await overSlowLink();

    // A page from the small entry timed out: the large one is suspected; the page that fetched it
    // alone timed out too, and so does a fetch of it alone: proven.
    const page = entries.page(key);
    const range = { from: small, end: large, count: 2, fetchedFrom: false };
    await entries.timedOut(key, range);
    expect(page.has(large)).toBe(true);
    await entries.timedOut(key, range);
    expect(errors).toEqual([expect.objectContaining({ message: expect.stringContaining(large) })]);

    // Then pages over the later entries time out, each on its one entry: more suspects than a
    // stream keeps.
    let from = large;
    for (const id of suspects) {
      await entries.timedOut(key, { from, end: id, count: 1, fetchedFrom: false });
      from = id;
    }
    expect(page.has(suspects.at(-1)!)).toBe(true);
    expect(page.has(large)).toBe(true);
    expect(page.after(small)?.id).toBe(large);
    // 16 at most: beside the proven one, the latest 15 suspects; the earlier ones are forgotten.
    expect(suspects.filter((id) => page.has(id))).toEqual(suspects.slice(-15));
  }, 30_000);

  it('forgets a suspect that arrives in time once fetched alone, and proves nothing', async () => {
    const key = 'sse:{arrives}';
    const small = await redis.raw.xAdd(key, '*', { d: 'small' });
    // 10 kB at 1 MB/s: alone, the entry takes 10 ms, well within the 1 s deadline.
    const medium = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(10_000) });
    const { entries, errors } = await overSlowLink();
    const page = entries.page(key);
    const range = { from: small, end: medium, count: 2, fetchedFrom: false };
    await entries.timedOut(key, range);
    expect(page.has(medium)).toBe(true);
    // The page that fetched it alone timed out (a pause of Redis's), but a fetch of it alone now
    // arrives in time.
    await entries.timedOut(key, range);
    expect(page.has(medium)).toBe(false);
    expect(errors).toEqual([]);
  }, 30_000);

  it('proves a suspect too large only by a page that fetched it alone, not by one that went past it', async () => {
    const key = 'sse:{unproven}';
    const small = await redis.raw.xAdd(key, '*', { d: 'small' });
    const large = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(3_000_000) });
    await redis.raw.xAdd(key, '*', { d: 'after' });
    const { entries, errors } = await overSlowLink();
    const page = entries.page(key);
    // Two pages over it, neither ending at it (a read that began before it was suspected), time out.
    const range = { from: small, end: '+', count: 3, fetchedFrom: false };
    await entries.timedOut(key, range);
    await entries.timedOut(key, range);
    expect(page.after(small)).toEqual({ id: large, proven: false });
    expect(errors).toEqual([]);
  }, 30_000);

  it('keeps an entry proven too large when a read that fetched it alone says it arrived', async () => {
    const key = 'sse:{kept}';
    const small = await redis.raw.xAdd(key, '*', { d: 'small' });
    const large = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(3_000_000) });
    const { entries, errors } = await overSlowLink();
    const page = entries.page(key);
    const range = { from: small, end: large, count: 2, fetchedFrom: false };
    await entries.timedOut(key, range);
    await entries.timedOut(key, range);
    expect(errors).toHaveLength(1);
    // A read that fetched it alone before it was proven, and got it in time (Redis was faster then).
    page.arrived(large);
    expect(page.after(small)).toEqual({ id: large, proven: true });
  }, 30_000);

  it('fetches an entry proven too large alone no more when a page times out on it again', async () => {
    const key = 'sse:{proven}';
    const small = await redis.raw.xAdd(key, '*', { d: 'small' });
    const large = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(3_000_000) });
    const { entries, errors, proxy } = await overSlowLink();
    const range = { from: small, end: large, count: 2, fetchedFrom: false };
    await entries.timedOut(key, range);
    await entries.timedOut(key, range);
    expect(errors).toHaveLength(1);
    // The fetches that proved it stream on over the slow link until they are through.
    const passed = () => proxy.connections.reduce((sum, connection) => sum + connection.passed, 0);
    for (let last = -1; passed() !== last; ) {
      last = passed();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    let fetches = 0;
    void proxy.beforeNext(
      (command) => {
        if (command.split('\r\n').includes('XRANGE')) fetches++;
        return false;
      },
      async () => {},
    );
    // Proven: the script that names it is all this timeout costs, not seconds of fetching it again.
    await entries.timedOut(key, range);
    expect(fetches).toBe(0);
    expect(errors).toHaveLength(1);
  }, 30_000);

  it('tells onError once of an entry that two pages timing out together prove too large', async () => {
    const key = 'sse:{twice}';
    const small = await redis.raw.xAdd(key, '*', { d: 'small' });
    const large = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(3_000_000) });
    const { entries, errors } = await overSlowLink();
    const range = { from: small, end: large, count: 2, fetchedFrom: false };
    await entries.timedOut(key, range);
    // Two replays that fetched it alone time out together: each fetches it alone once more.
    await Promise.all([entries.timedOut(key, range), entries.timedOut(key, range)]);
    expect(errors).toEqual([expect.objectContaining({ message: expect.stringContaining(large) })]);
  }, 30_000);

  it('tells a page the nearest suspect after its start, whatever order they were suspected in', async () => {
    const key = 'sse:{order}';
    const small = await redis.raw.xAdd(key, '*', { d: 'small' });
    const near = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(1000) });
    const far = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(2000) });
    const { entries, errors } = await overSlowLink();
    const page = entries.page(key);
    // A page from the nearer one timed out first, then one from the start, up to it.
    await entries.timedOut(key, { from: near, end: '+', count: 2, fetchedFrom: false });
    await entries.timedOut(key, { from: small, end: near, count: 2, fetchedFrom: false });
    expect(page.after(small)).toEqual({ id: near, proven: false });
    expect(page.after(near)).toEqual({ id: far, proven: false });
    // A replay that fetched the nearer one alone got it in time: only the farther one is left.
    page.arrived(near);
    expect(page.after(small)).toEqual({ id: far, proven: false });
    expect(errors).toEqual([]);
  });

  it('remembers a page start it fetched and timed out on, so that a read from it checks it without fetching it', async () => {
    const key = 'sse:{start}';
    const large = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(2000) });
    const after = await redis.raw.xAdd(key, '*', { d: 'small' });
    const { entries, errors } = await overSlowLink();
    const page = entries.page(key);
    await entries.timedOut(key, { from: large, end: '+', count: 2, fetchedFrom: true });
    expect(page.has(large)).toBe(true);
    expect(page.has(after)).toBe(false);
    expect(errors).toEqual([]);
  });

  it('suspects no page start that the read only checked for, but the largest entry it fetched', async () => {
    const key = 'sse:{checked}';
    const large = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(2000) });
    const after = await redis.raw.xAdd(key, '*', { d: 'small' });
    const { entries, errors } = await overSlowLink();
    const page = entries.page(key);
    // As told before its XRANGE: the entry at `from` was sent as its id alone.
    page.reading(large, '+', 2, false);
    await entries.timedOut(key, page);
    expect(page.has(large)).toBe(false);
    expect(page.after(large)).toEqual({ id: after, proven: false });
    expect(errors).toEqual([]);
  });

  it('remembers the entries of 1000 streams at most, forgetting those of the stream suspected least recently', async () => {
    const keys = Array.from({ length: 1002 }, (_, i) => `sse:{many ${i}}`);
    const batch = redis.raw.multi();
    for (const key of keys) batch.xAdd(key, '1-1', { d: 'x' });
    batch.xAdd(keys[0]!, '2-1', { d: 'x' });
    await batch.exec();
    const { entries, errors } = await overSlowLink();
    const suspect = (key: string, from = '0-1') =>
      entries.timedOut(key, { from, end: '+', count: 1, fetchedFrom: false });
    await suspect(keys[0]!);
    await Promise.all(keys.slice(1, 1000).map((key) => suspect(key)));
    expect(entries.page(keys[1]!).has('1-1')).toBe(true);
    // The first stream suspects another entry: it is the most recent now, the second the least.
    await suspect(keys[0]!, '1-1');
    await suspect(keys[1000]!);
    expect(entries.page(keys[1]!).has('1-1')).toBe(false);
    expect(entries.page(keys[2]!).has('1-1')).toBe(true);
    expect(entries.page(keys[0]!).has('1-1')).toBe(true);
    expect(entries.page(keys[0]!).has('2-1')).toBe(true);
    expect(entries.page(keys[1000]!).has('1-1')).toBe(true);
    // A stream whose suspects all arrived in time takes no room: the next one pushes none out.
    entries.page(keys[500]!).arrived('1-1');
    await suspect(keys[1001]!);
    expect(entries.page(keys[2]!).has('1-1')).toBe(true);
    expect(entries.page(keys[1001]!).has('1-1')).toBe(true);
    expect(errors).toEqual([]);
  }, 60_000);

  it('tells onError once of a script that failed, with its error, and suspects nothing', async () => {
    const key = 'sse:{wrong type}';
    // Say, a key of another type where the stream was: the script's XRANGE fails.
    await redis.raw.set(key, 'not a stream');
    const { entries, errors } = await overSlowLink();
    await entries.timedOut(key, { from: '0-1', end: '+', count: 2, fetchedFrom: false });
    expect(errors).toEqual([expect.any(ErrorReply)]);
    expect((errors[0] as Error).message).toMatch(/^WRONGTYPE /);
    expect(entries.page(key).after('0-0')).toBeUndefined();
  });

  it('tells onError nothing of a script that got no reply in time, nor of a refused one beside its refusal', async () => {
    const key = 'sse:{no answer}';
    const small = await redis.raw.xAdd(key, '*', { d: 'small' });
    await redis.raw.xAdd(key, '*', { d: 'large' });
    // Redis frozen: the read that timed out said as much.
    const held = await overSlowLink();
    for (const connection of held.proxy.connections) connection.hold();
    await held.entries.timedOut(key, { from: small, end: '+', count: 2, fetchedFrom: false });
    expect(held.errors).toEqual([]);
    expect(held.entries.page(key).after(small)).toBeUndefined();
    // An ACL without EVAL: told to the engine's refusals, once, and nothing more.
    await redis.raw.aclSetUser('no-eval', ['reset', 'on', '>secret', '~sse:*', '+@all', '-eval_ro', '-eval']);
    try {
      const refusing = await overSlowLink({ username: 'no-eval', password: 'secret' });
      await refusing.entries.timedOut(key, { from: small, end: '+', count: 2, fetchedFrom: false });
      expect(refusing.errors).toEqual([]);
      expect(refusing.refused.map(String)).toEqual([
        expect.stringMatching(/^Error: Redis refused EVAL_RO, /),
        expect.stringMatching(/^Error: Redis refused EVAL, /),
      ]);
    } finally {
      await redis.raw.aclDelUser('no-eval');
    }
  }, 30_000);

  it('tells onError once of a fetch alone that failed, with its error, and neither proves nor forgets the suspect', async () => {
    const key = 'sse:{fetch fails}';
    const small = await redis.raw.xAdd(key, '*', { d: 'small' });
    const medium = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(10_000) });
    const { entries, errors, proxy } = await overSlowLink();
    const page = entries.page(key);
    const range = { from: small, end: medium, count: 2, fetchedFrom: false };
    await entries.timedOut(key, range);
    expect(page.has(medium)).toBe(true);
    // The page that fetched it alone timed out; as the fetch of it alone is sent, the key becomes
    // another type's, and that fetch fails.
    const replaced = proxy.beforeNext(
      (command) => command.includes('\r\nXRANGE\r\n'),
      () => redis.raw.multi().del(key).set(key, 'not a stream').exec(),
    );
    await entries.timedOut(key, range);
    await replaced;
    expect(errors).toEqual([expect.any(ErrorReply)]);
    expect((errors[0] as Error).message).toMatch(/^WRONGTYPE /);
    expect(page.after(small)).toEqual({ id: medium, proven: false });
  });

  it.each([
    ['proven too large', true],
    ['suspected', false],
  ])(
    'replays an entry another read found arrives in time, when the page stopped before it and a later one is %s',
    async (_, proven) => {
      const key = `sse:{forgotten-${proven}}`;
      const resume = await redis.raw.xAdd(key, '*', { d: 'the client has this one' });
      // 10 kB at 1 MB/s: alone, it takes 10 ms; 3 MB, 3 s, over the 1 s deadline even alone.
      const medium = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(10_000) });
      const large = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(3_000_000) });
      const { entries, errors, proxy } = await overSlowLink();
      // A page from the client's entry timed out (a pause of Redis's): the medium one is suspected.
      await entries.timedOut(key, { from: resume, end: medium, count: 2, fetchedFrom: false });
      // A page after it timed out on the large one: suspected; a second, fetching it alone: proven.
      const range = { from: medium, end: large, count: 2, fetchedFrom: false };
      await entries.timedOut(key, range);
      if (proven) await entries.timedOut(key, range);
      const told = proven ? [expect.objectContaining({ message: expect.stringContaining(large) })] : [];
      expect(errors).toEqual(told);
      const page = entries.page(key);
      expect(page.after(resume)).toEqual({ id: medium, proven: false });
      // A replay on a fast connection. As its first range (up to the medium entry) is read, another
      // replay, which fetched the medium entry alone, got it in time: it is suspected no more.
      proxy.limitNew = undefined;
      const client: RedisClient = createClient({ url: proxy.url });
      client.on('error', () => {});
      await client.connect();
      onTestFinished(() => client.destroy());
      const arrived = proxy.beforeNext(
        () => true,
        async () => entries.page(key).arrived(medium),
      );
      const limit = { count: 10, bytes: 1_000_000 };
      const refusals = new Refusals(() => {});
      const replayed = await readPage(
        client,
        key,
        resume,
        limit,
        (e) => errors.push(e),
        refusals,
        () => false,
        page,
      );
      await arrived;
      // The medium entry arrives in time: it is replayed, and the page ends before the large one,
      // whose own page fetches it alone, or is truncated, as a replay that began a moment later does.
      expect(replayed).toMatchObject({ events: [{ id: medium }], truncated: false, more: true });
      expect(errors).toEqual(told);
      // Never fetched, the large one is still known as it was.
      expect(entries.page(key).after(resume)).toEqual({ id: large, proven });
    },
    30_000,
  );
});
