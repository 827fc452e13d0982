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

describe('LargeEntries', () => {
  it('keeps an entry proven too large when more suspects come than it remembers', async () => {
    const key = 'sse:{large}';
    const small = await redis.raw.xAdd(key, '*', { d: 'small' });
    // 3 MB at 1 MB/s: even alone, the entry takes 3 s, over the 1 s deadline.
    const large = await redis.raw.xAdd(key, '*', { d: 'x'.repeat(3_000_000) });
    const suspects: string[] = [];
    for (let i = 0; i < 20; i++) suspects.push(await redis.raw.xAdd(key, '*', { d: `after ${i}` }));

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
});
