import type { RedisClusterType } from 'redis';
import { RedisTimeoutError } from './errors.js';

/** Slots in a Redis Cluster. */
const SLOTS = 16_384;

/**
 * What the refresh needs of a node-redis cluster client. `rediscover` is the method node-redis
 * itself calls on `MOVED`; it has no public name (see {@link TopologyRefresh}).
 */
export type RefreshedCluster = Pick<RedisClusterType, 'isReady' | 'slots' | 'masters' | 'nodeClient'> & {
  readonly _slots: { rediscover(startWith: NodeClient): Promise<void> };
};

/** A cluster client's connection to one node. */
type NodeClient = Awaited<ReturnType<RedisClusterType['nodeClient']>>;

/**
 * Rereads the topology of cluster clients on a timer, not only on `MOVED` or a node's errors: a
 * manual failover (`CLUSTER FAILOVER`) or a resharding moves slots without closing a connection, and
 * the clients would otherwise learn of it only from the `MOVED` replies they collect.
 *
 * Every `everyMs`, one node (the masters in turn) is asked for its slot map (`CLUSTER SLOTS`, on the
 * connection the client already has), and each client whose view differs is told to reread it.
 * node-redis 6 has no public "reread the topology" call, and its public route, a `MOVED`, would
 * need a key in every moved slot. Its `_slots.rediscover()` is the call it makes on every `MOVED`
 * and node reconnection itself, typed in its declarations, so it is the least fragile route; it
 * runs only when the map changed, since each run opens a connection of its own. It is told to start
 * at the node that just answered: left to itself it starts at a random node it knows, and a frozen
 * one (SIGSTOP) would hold that reread, and every later one, which joins it, for as long as it stays
 * frozen, since its connections have no timeout.
 */
export class TopologyRefresh {
  readonly #clusters: RefreshedCluster[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The timeout of the check under way. */
  #expire: ReturnType<typeof setTimeout> | undefined;
  #turn = 0;
  #closed = false;

  constructor(
    /** The period, in ms. */
    private readonly everyMs: number,
    /** The longest one check may take, in ms: a frozen node must not stop the timer. */
    private readonly timeoutMs: number,
    /** Told why a check failed; the next one runs on time anyway. */
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Keeps `cluster`'s view current from now on; the first call arms the timer. */
  watch(cluster: RefreshedCluster): void {
    if (this.#closed) return;
    this.#clusters.push(cluster);
    if (this.#timer === undefined) this.#arm();
  }

  /**
   * Stops the timers, the timeout of a check under way included (a frozen node would hold a closed
   * engine's process until it expired); that check may finish, but nothing follows it and its
   * failure is not reported.
   */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#expire);
    this.#timer = undefined;
    this.#expire = undefined;
  }

  /** One check: compares every ready client's view with one node's and rereads where they differ. */
  async check(): Promise<void> {
    const asker = this.#clusters.find((cluster) => cluster.isReady);
    if (!asker || asker.masters.length === 0) return;
    const node = asker.masters[this.#turn++ % asker.masters.length]!;
    const answering = await asker.nodeClient(node);
    const shards = await answering.clusterSlots();
    const owners = new Array<string | undefined>(SLOTS);
    for (const shard of shards)
      for (let slot = shard.from; slot <= shard.to; slot++) owners[slot] = shard.master.id;
    const stale = this.#clusters.filter((cluster) => cluster.isReady && !agrees(cluster, owners));
    await Promise.all(stale.map((cluster) => cluster._slots.rediscover(answering)));
  }

  // A timeout chain, not an interval: a slow check delays the next instead of overlapping it.
  #arm(): void {
    this.#timer = setTimeout(() => {
      const expired = new Promise<never>((_, reject) => {
        this.#expire = setTimeout(() => reject(new RedisTimeoutError(this.timeoutMs, true)), this.timeoutMs);
      });
      Promise.race([this.check(), expired])
        .catch((error: unknown) => {
          if (!this.#closed) this.onError(error);
        })
        .finally(() => {
          clearTimeout(this.#expire);
          this.#expire = undefined;
          if (!this.#closed) this.#arm();
        });
    }, this.everyMs);
    // The refresh never keeps a process alive on its own.
    this.#timer.unref?.();
  }
}

function agrees(cluster: RefreshedCluster, owners: (string | undefined)[]): boolean {
  const { slots } = cluster;
  for (let slot = 0; slot < SLOTS; slot++) if (slots[slot]?.master.id !== owners[slot]) return false;
  return true;
}
