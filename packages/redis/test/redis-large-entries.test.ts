// The memory of entries too large to arrive in time, on a real Redis behind a slow link: what it
// proved must outlive what it only suspects.
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import type { RedisClient } from '../src/client.js';
import { TimedClient } from '../src/deadline.js';
import { LargeEntries } from '../src/large-entries.js';
import { Refusals } from '../src/refusals.js';
import { RedisProxy } from './support/proxy.js';
import { useRedis } from './support/use-redis.js';

const redis = useRedis({ flush: true });

let close: (() => void) | undefined;
afterEach(() => {
  close?.();
  close = undefined;
});

/** LargeEntries on a client whose link carries 1 MB/s, with a 1 s deadline, and what it told onError. */
async function overSlowLink() {
  const proxy = await RedisProxy.start(redis.server.port);
  proxy.limitNew = 1_000_000;
  const client: RedisClient = createClient({ url: proxy.url });
  client.on('error', () => {});
  await client.connect();
  close = () => {
    client.destroy();
    proxy.close();
  };
  const errors: unknown[] = [];
  const entries = new LargeEntries(
    new TimedClient(client, 1000),
    (e) => errors.push(e),
    new Refusals(() => {}),
  );
  return { entries, errors };
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
});
