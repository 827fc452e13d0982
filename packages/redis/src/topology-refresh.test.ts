import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RedisTimeoutError } from './errors.js';
import { type RefreshedCluster, TopologyRefresh } from './topology-refresh.js';

const EVERY = 1000;
const TIMEOUT = 300;

/** A cluster client whose view is `view` (slot → master id) and whose nodes report `truth`. */
function fakeCluster(state: {
  view: string;
  truth: string;
  ready?: boolean;
  slots?: () => Promise<unknown>;
}) {
  const shard = (id: string) => ({ master: { id } });
  const rediscover = vi.fn(async () => {
    state.view = state.truth;
  });
  const clusterSlots = vi.fn(
    state.slots ?? (async () => [{ from: 0, to: 16_383, master: { id: state.truth }, replicas: [] }]),
  );
  const node = { clusterSlots };
  const cluster = {
    get isReady() {
      return state.ready ?? true;
    },
    get slots() {
      return new Array(16_384).fill(shard(state.view));
    },
    masters: [{ id: 'm' }],
    nodeClient: async () => node,
    _slots: { rediscover },
  };
  return { cluster: cluster as unknown as RefreshedCluster, rediscover, clusterSlots, node };
}

let refresh: TopologyRefresh;
const errors: unknown[] = [];
beforeEach(() => {
  vi.useFakeTimers();
  errors.length = 0;
  refresh = new TopologyRefresh(EVERY, TIMEOUT, (error) => errors.push(error));
});
afterEach(() => {
  refresh.close();
  vi.useRealTimers();
});

describe('TopologyRefresh', () => {
  it('arms one unref’d timer at the first watch, and checks once per period', async () => {
    expect(vi.getTimerCount()).toBe(0);
    const armed = vi.spyOn(globalThis, 'setTimeout');
    const { cluster, clusterSlots } = fakeCluster({ view: 'a', truth: 'a' });
    refresh.watch(cluster);
    // A refresh alone never keeps the process alive.
    expect((armed.mock.results[0]!.value as NodeJS.Timeout).hasRef()).toBe(false);
    refresh.watch(fakeCluster({ view: 'a', truth: 'a' }).cluster);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(EVERY - 1);
    expect(clusterSlots).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(clusterSlots).toHaveBeenCalledTimes(1);
    // A check that finished leaves its own timeout behind no more than the process: the next period only.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(3 * EVERY);
    expect(clusterSlots).toHaveBeenCalledTimes(4);
    expect(errors).toEqual([]);
  });

  it('rereads only the ready clients whose view differs from the nodes’', async () => {
    const current = fakeCluster({ view: 'b', truth: 'b' });
    const stale = fakeCluster({ view: 'a', truth: 'b' });
    const connecting = fakeCluster({ view: 'a', truth: 'b', ready: false });
    for (const { cluster } of [current, stale, connecting]) refresh.watch(cluster);
    await vi.advanceTimersByTimeAsync(EVERY);
    expect(current.rediscover).not.toHaveBeenCalled();
    expect(stale.rediscover).toHaveBeenCalledTimes(1);
    // From the node that just answered, not a random one that may be frozen.
    expect(stale.rediscover).toHaveBeenCalledWith(current.node);
    expect(connecting.rediscover).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(EVERY);
    expect(stale.rediscover).toHaveBeenCalledTimes(1);
  });

  it('asks the masters in turn, so one that cannot answer does not hide a change', async () => {
    const { cluster, rediscover } = fakeCluster({ view: 'a', truth: 'b' });
    const asked: string[] = [];
    const slots = [{ from: 0, to: 16_383, master: { id: 'b' }, replicas: [] }];
    const twoMasters = {
      get isReady() {
        return cluster.isReady;
      },
      get slots() {
        return cluster.slots;
      },
      _slots: cluster._slots,
      masters: [{ id: 'loading' }, { id: 'up' }],
      nodeClient: async (node: { id: string }) => ({
        clusterSlots: async () => {
          asked.push(node.id);
          if (node.id === 'loading') throw new Error('LOADING Redis is loading the dataset in memory');
          return slots;
        },
      }),
    } as unknown as RefreshedCluster;
    refresh.watch(twoMasters);
    await vi.advanceTimersByTimeAsync(3 * EVERY);
    expect(asked).toEqual(['loading', 'up', 'loading']);
    expect(rediscover).toHaveBeenCalledTimes(1);
  });

  it('reports a check that fails, and checks again a period later', async () => {
    const failure = new Error('CLUSTERDOWN');
    let calls = 0;
    const { cluster } = fakeCluster({
      view: 'a',
      truth: 'a',
      slots: async () => {
        calls++;
        throw failure;
      },
    });
    refresh.watch(cluster);
    await vi.advanceTimersByTimeAsync(2 * EVERY);
    expect(errors).toEqual([failure, failure]);
    expect(calls).toBe(2);
  });

  it('gives up on a check after the timeout, so a frozen node does not stop the timer', async () => {
    const { cluster, clusterSlots } = fakeCluster({
      view: 'a',
      truth: 'a',
      slots: () => new Promise(() => {}),
    });
    refresh.watch(cluster);
    await vi.advanceTimersByTimeAsync(EVERY + TIMEOUT - 1);
    expect(errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(errors).toEqual([new RedisTimeoutError(TIMEOUT, true)]);
    await vi.advanceTimersByTimeAsync(EVERY);
    expect(clusterSlots).toHaveBeenCalledTimes(2);
  });

  it('close clears the timer; nothing is checked or armed after it', async () => {
    const { cluster, clusterSlots } = fakeCluster({ view: 'a', truth: 'b' });
    refresh.watch(cluster);
    refresh.close();
    expect(vi.getTimerCount()).toBe(0);
    refresh.watch(cluster);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5 * EVERY);
    expect(clusterSlots).not.toHaveBeenCalled();
  });

  it('a check under way when closing arms nothing after it', async () => {
    let answer: (value: unknown) => void = () => {};
    const { cluster } = fakeCluster({ view: 'a', truth: 'a', slots: () => new Promise((r) => (answer = r)) });
    refresh.watch(cluster);
    await vi.advanceTimersByTimeAsync(EVERY);
    refresh.close();
    answer([]);
    await vi.advanceTimersByTimeAsync(TIMEOUT);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a check that hangs when closing leaves no timer, and its end is no failure to report', async () => {
    let fail: (error: unknown) => void = () => {};
    const { cluster } = fakeCluster({
      view: 'a',
      truth: 'a',
      slots: () => new Promise((_, reject) => (fail = reject)),
    });
    refresh.watch(cluster);
    await vi.advanceTimersByTimeAsync(EVERY);
    refresh.close();
    expect(vi.getTimerCount()).toBe(0);
    // The cluster client, closed too, fails what it still had under way.
    fail(new Error('The client is closed'));
    await vi.advanceTimersByTimeAsync(TIMEOUT);
    expect(errors).toEqual([]);
  });
});
