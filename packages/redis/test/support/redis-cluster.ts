import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Child, freePort, startChild } from '../../../../test/support/processes.js';

const run = promisify(execFile);

interface Node {
  port: number;
  child: Child;
}

/**
 * A real Redis Cluster on 127.0.0.1, owned by one test file: 3 masters and 3 replicas of Debian's
 * redis-server, created with `redis-cli --cluster create`, with a short node timeout so a failover
 * takes about a second.
 */
export class RedisCluster {
  /** Nodes stopped with SIGSTOP: alive, and answering nothing. */
  readonly #frozen = new Set<Node>();

  private constructor(
    readonly nodes: Node[],
    private readonly dir: string,
  ) {}

  static async start(options: { nodeTimeoutMs?: number } = {}): Promise<RedisCluster> {
    // Another test process may bind a chosen port between the check and the node's bind: try anew.
    for (let attempt = 1; ; attempt++) {
      try {
        return await RedisCluster.#start(options);
      } catch (error) {
        if (attempt === 3 || !/Address already in use/.test(String(error))) throw error;
      }
    }
  }

  static async #start({ nodeTimeoutMs = 1000 }: { nodeTimeoutMs?: number }): Promise<RedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'rxsse-cluster-'));
    const nodes: Node[] = [];
    const cluster = new RedisCluster(nodes, dir);
    try {
      for (let i = 0; i < 6; i++) {
        const [port, bus] = [await freePort(), await freePort()];
        const args = ['--port', String(port), '--cluster-port', String(bus), '--bind', '127.0.0.1'];
        args.push('--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`);
        args.push('--cluster-node-timeout', String(nodeTimeoutMs), '--save', '', '--appendonly', 'no');
        // A replica may take over however long ago it last heard from its master (a new cluster's
        // replicas may not have yet).
        args.push('--cluster-replica-validity-factor', '0');
        // A master starts a replica's sync at once, not after 5 s of waiting for more replicas.
        args.push('--repl-diskless-sync-delay', '0');
        nodes.push({ port, child: startChild('redis-server', args) });
      }
      await Promise.all(nodes.map((node) => node.child.waitFor(/Ready to accept connections/)));
      const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
      await run('redis-cli', [
        '--cluster',
        'create',
        ...addresses,
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ]);
      await cluster.#waitUntilOk(nodes);
      await cluster.#waitFor(async () => {
        const replication = await Promise.all(
          nodes.map((node) => cluster.cli(node.port, 'INFO', 'replication')),
        );
        return replication.filter((info) => info.includes('master_link_status:up')).length === 3;
      }, 'the replicas in sync');
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** Where clients start: every node. */
  get rootNodes(): { url: string }[] {
    return this.nodes.map((node) => ({ url: `redis://127.0.0.1:${node.port}` }));
  }

  /** `redis-cli -p <port> <args>`, its output trimmed. */
  async cli(port: number, ...args: string[]): Promise<string> {
    return (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();
  }

  /** The master serving `slot` now, as the running nodes (or `asked`) see it. */
  async masterOf(slot: number, asked = this.#answering()[0]!): Promise<Node> {
    const shards = await this.cli(asked.port, 'CLUSTER', 'NODES');
    for (const line of shards.split('\n')) {
      const [, address, flags, , , , , state, ...ranges] = line.split(' ');
      if (!flags?.includes('master') || flags.includes('fail') || state !== 'connected') continue;
      for (const range of ranges) {
        const [low, high = low] = range.split('-').map(Number);
        if (slot >= low! && slot <= high!)
          return this.nodes.find((n) => address!.startsWith(`127.0.0.1:${n.port}@`))!;
      }
    }
    throw new Error(`no master serves slot ${slot}`);
  }

  /**
   * A manual failover of the master serving `slot`: `CLUSTER FAILOVER` on its replica, which takes
   * over with the old master's consent, no connection closed. Resolves once every node agrees.
   */
  async failover(slot: number): Promise<{ from: Node; to: Node }> {
    const from = await this.masterOf(slot);
    const id = await this.cli(from.port, 'CLUSTER', 'MYID');
    const replicas = await this.cli(from.port, 'CLUSTER', 'REPLICAS', id);
    const port = Number(/127\.0\.0\.1:(\d+)@/.exec(replicas)?.[1]);
    const to = this.nodes.find((node) => node.port === port)!;
    await this.cli(to.port, 'CLUSTER', 'FAILOVER');
    await this.#waitFor(async () => {
      const owners = await Promise.all(
        this.nodes.map((node) => this.masterOf(slot, node).catch(() => undefined)),
      );
      return owners.every((owner) => owner === to);
    }, 'the failover');
    await this.#waitUntilOk();
    return { from, to };
  }

  /**
   * Moves `slot`, keys and all, from the master serving it to another master, as a resharding does
   * (`IMPORTING`/`MIGRATING`, `MIGRATE` in batches, then `SETSLOT NODE` on every master). Resolves
   * once every node agrees.
   */
  async reshard(slot: number): Promise<{ from: Node; to: Node }> {
    const from = await this.masterOf(slot);
    const masters = (await this.cli(from.port, 'CLUSTER', 'NODES'))
      .split('\n')
      .filter((line) => line.split(' ')[2]?.includes('master'))
      .map((line) => this.nodes.find((n) => line.split(' ')[1]!.startsWith(`127.0.0.1:${n.port}@`))!);
    const to = masters.find((node) => node !== from)!;
    const [fromId, toId] = await Promise.all(
      [from, to].map((node) => this.cli(node.port, 'CLUSTER', 'MYID')),
    );
    const at = String(slot);
    await this.cli(to.port, 'CLUSTER', 'SETSLOT', at, 'IMPORTING', fromId!);
    await this.cli(from.port, 'CLUSTER', 'SETSLOT', at, 'MIGRATING', toId!);
    for (;;) {
      const keys = (await this.cli(from.port, 'CLUSTER', 'GETKEYSINSLOT', at, '10'))
        .split('\n')
        .filter(Boolean);
      if (keys.length === 0) break;
      await this.cli(from.port, 'MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys);
    }
    for (const node of masters) await this.cli(node.port, 'CLUSTER', 'SETSLOT', at, 'NODE', toId!);
    await this.#waitFor(async () => {
      const owners = await Promise.all(
        this.nodes.map((node) => this.masterOf(slot, node).catch(() => undefined)),
      );
      return owners.every((owner) => owner === to);
    }, 'the resharding');
    return { from, to };
  }

  /** `MOVED` replies the nodes sent so far (`INFO errorstats`), all together. */
  async movedReplies(): Promise<number> {
    const stats = await Promise.all(this.nodes.map((node) => this.cli(node.port, 'INFO', 'errorstats')));
    return stats.reduce((sum, info) => sum + Number(/errorstat_MOVED:count=(\d+)/.exec(info)?.[1] ?? 0), 0);
  }

  /** `kill -9` of one node. */
  async kill9(node: Node): Promise<void> {
    await node.child.kill9();
  }

  /** `kill -STOP` of one node: its connections stay open, and it answers nothing until stopped. */
  freeze(node: Node): void {
    this.#frozen.add(node);
    node.child.process.kill('SIGSTOP');
  }

  /** The nodes that run and are not frozen. */
  #answering(): Node[] {
    return this.nodes.filter((node) => node.child.running && !this.#frozen.has(node));
  }

  /** Waits until every answering node sees the cluster as ok (after a create or a failover). */
  #waitUntilOk(nodes = this.#answering()): Promise<void> {
    return this.#waitFor(async () => {
      const states = await Promise.all(nodes.map((node) => this.cli(node.port, 'CLUSTER', 'INFO')));
      return states.every((info) => info.includes('cluster_state:ok'));
    }, 'the cluster ok');
  }

  async #waitFor(done: () => Promise<boolean>, what: string, timeout = 20_000): Promise<void> {
    const deadline = Date.now() + timeout;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Waits until the others have marked `node` as failed and a replica took its slots: resolves at
   * the promotion, as the running nodes see it.
   */
  async failedOver(node: Node): Promise<void> {
    const alive = this.#answering()[0]!;
    await this.#waitFor(async () => {
      const line = (await this.cli(alive.port, 'CLUSTER', 'NODES'))
        .split('\n')
        .find((entry) => entry.split(' ')[1]?.startsWith(`127.0.0.1:${node.port}@`));
      return line?.split(' ')[2]?.includes('fail') === true && !line.includes('fail?');
    }, 'the failure to be noticed');
    await this.#waitUntilOk();
  }

  /** Stops every node and removes their directory. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.child.kill9()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
