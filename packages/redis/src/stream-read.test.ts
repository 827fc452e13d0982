import { EventEmitter } from 'node:events';
import { ErrorReply } from 'redis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RedisClient } from './client.js';
import { TimedClient } from './deadline.js';
import { RedisTimeoutError } from './errors.js';
import { Refusals } from './refusals.js';
import { type Entry, readPage } from './stream-read.js';

const TIMEOUT = 1000;

/**
 * A connected client whose every XRANGE is answered `replyMs` later, with as many entries as asked:
 * large ones first, then small ones, so a page takes several. It refuses `EVAL_RO` and `EVAL` (an ACL
 * without them), so every range is an XRANGE.
 */
function slowClient(replyMs: number) {
  const xRange = vi.fn(
    (_key: string, from: string, _to: string, { COUNT }: { COUNT: number }) =>
      new Promise<Entry[]>((resolve) => {
        const ms = Number(from.split('-')[0]);
        const entries = Array.from({ length: COUNT }, (_, i) => ({
          id: `${ms + i}-0`,
          message: { d: 'x'.repeat(ms + i < 6 ? 10_000 : 1) },
        }));
        setTimeout(() => resolve(entries), replyMs);
      }),
  );
  // As Redis words it: evalReadOnly falls back to EVAL only for a refusal that names EVAL_RO.
  const refused = (command: string) => () =>
    Promise.reject(new ErrorReply(`NOPERM this user has no permissions to run the '${command}' command`));
  const client = Object.assign(new EventEmitter(), {
    isReady: true,
    xRange,
    evalRo: refused('eval_ro'),
    eval: refused('eval'),
  });
  return { client: client as unknown as RedisClient, xRange };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('readPage, run by a TimedClient', () => {
  it('sends no XRANGE once the call gave up waiting', async () => {
    // A Redis that answers, slowly: a Cluster node's connection is not replaced for that.
    const { client, xRange } = slowClient(600);
    const commands = new TimedClient(client, TIMEOUT);
    const page = commands.run((redis, expired) =>
      readPage(
        redis,
        'k',
        '1-0',
        { count: 100_000, bytes: 1_000_000 },
        () => {},
        new Refusals(() => {}),
        expired,
      ),
    );
    const failed = page.catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(TIMEOUT);
    expect(await failed).toBeInstanceOf(RedisTimeoutError);
    const sent = xRange.mock.calls.length;
    await vi.advanceTimersByTimeAsync(10 * TIMEOUT);
    expect(xRange).toHaveBeenCalledTimes(sent);
  });
});
