// A Redis whose operator renamed commands away (`rename-command EVAL ""`), which refuses them as
// unknown where an ACL would answer NOPERM: the engine falls back alike.
import { until } from '@rxsse/core/testing';
import { describe, expect, it } from 'vitest';
import { useRedis } from './support/use-redis.js';

/** What a listener of `topic` receives, events by their data and gaps as `<gap>`. */
function received() {
  const seen: string[] = [];
  return {
    seen,
    listener: {
      event: (message: { data: unknown }) => void seen.push(String(message.data)),
      gap: () => void seen.push('<gap>'),
    },
  };
}

describe('redisEngine on a Redis without EVAL and EVAL_RO', () => {
  const redis = useRedis({
    flush: true,
    args: ['--rename-command', 'EVAL', '', '--rename-command', 'EVAL_RO', ''],
  });

  it('listens, replays and tells onError of each refusal once, as where an ACL refuses them', async () => {
    const errors: unknown[] = [];
    const store = redis.engine({ blockMs: 20, onError: (error) => void errors.push(error) });
    const first = await store.append('renamed', { data: 'a' });
    const { seen, listener } = received();
    const stop = await store.listen('renamed', listener);
    await store.append('renamed', { data: 'b' });
    await until(() => seen.length === 1, 'the live event');
    expect(seen).toEqual(['b']);
    const page = await store.read('renamed', first, { count: 10, bytes: 10_000 });
    expect(page.events.map((event) => event.data)).toEqual(['b']);
    stop();
    expect(
      errors.map((error) => /^Redis refused (EVAL_RO|EVAL)\b/.exec(String((error as Error).message))?.[1]),
    ).toEqual(['EVAL_RO', 'EVAL']);
  });
});

describe('redisEngine on a Redis without XINFO', () => {
  const redis = useRedis({ flush: true, args: ['--rename-command', 'XINFO', ''] });

  it("tells onError once why a new topic's listener starts with a gap, as where an ACL refuses XINFO", async () => {
    const errors: unknown[] = [];
    const store = redis.engine({ blockMs: 20, onError: (error) => void errors.push(error) });
    const { seen, listener } = received();
    const stop = await store.listen('fresh', listener);
    await store.append('fresh', { data: 'a' });
    await store.append('fresh', { data: 'b' });
    await until(() => seen.length >= 3, 'the live events');
    stop();
    // Trimming before its first read cannot be ruled out without XINFO's count.
    expect(seen).toEqual(['<gap>', 'a', 'b']);
    expect(errors.map((error) => (error as Error).message)).toEqual([
      expect.stringMatching(/^Redis refused XINFO, so .*gap/),
    ]);
  });
});

describe('redisEngine on a Redis without INFO', () => {
  const redis = useRedis({ flush: true, args: ['--rename-command', 'INFO', ''] });

  it('delivers live and tells onError once that restarts are told by the cursors only, as where an ACL refuses INFO', async () => {
    const errors: unknown[] = [];
    const store = redis.engine({ blockMs: 20, onError: (error) => void errors.push(error) });
    const { seen, listener } = received();
    // Each topic's start asks INFO, and so does the first live read: an unknown command is refused
    // for good, so it is told once and asked no more.
    const stops = [await store.listen('no-info', listener), await store.listen('no-info-2', listener)];
    await store.append('no-info', { data: 'a' });
    await until(() => seen.length === 1, 'the live event');
    (await store.listen('no-info-3', listener))();
    await store.append('no-info-2', { data: 'b' });
    await until(() => seen.length === 2, 'the next live event');
    for (const stop of stops) stop();
    expect(seen).toEqual(['a', 'b']);
    expect(errors.map((error) => (error as Error).message)).toEqual([
      expect.stringMatching(
        /^Redis refused INFO, so a restart of Redis is told by the cursors only: ERR unknown command/,
      ),
    ]);
  });
});
