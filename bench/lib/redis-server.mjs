// The redis suites' Redis: one redis-server, or a Redis Cluster of 3 masters and 3 replicas, on free
// loopback ports, without persistence, in a temporary directory. Every node is killed and the
// directory removed on stop() and when the process exits, whatever happens.

import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { until } from './harness.mjs';

const run = promisify(execFile);

async function freePort() {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startNode(dir, cluster) {
  const port = await freePort();
  const args = ['--save', '', ...`--port ${port} --bind 127.0.0.1 --dir ${dir} --appendonly no`.split(' ')];
  if (cluster) {
    args.push('--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`);
    args.push('--cluster-port', String(await freePort()), '--cluster-node-timeout', '2000');
  }
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', () => reject(new Error(`redis-server exited:\n${output}`)));
  });
  child.stdout.resume();
  const cli = async (...command) => (await run('redis-cli', ['-p', String(port), ...command])).stdout.trim();
  /** `INFO <section>` as name → value. */
  const info = async (section) => {
    const lines = (await cli('INFO', section)).matchAll(/^([^:#\s]+):(.*)$/gm);
    return Object.fromEntries([...lines].map(([, name, value]) => [name, value.trim()]));
  };
  return { port, url: `redis://127.0.0.1:${port}`, child, cli, info };
}

/**
 * Starts Redis: `env` tells lib/redis-app.mjs where it is; `stats()` sums over the masters: calls
 * per command (`INFO commandstats`), CPU seconds (user + sys) and keys.
 */
export async function startRedis({ cluster = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rxsse-bench-redis-'));
  const nodes = [];
  const stop = () => {
    for (const node of nodes) node.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', stop);
  try {
    for (let i = 0; i < (cluster ? 6 : 1); i++) nodes.push(await startNode(dir, cluster));
    let masters = nodes;
    if (cluster) {
      const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
      const create = ['--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes'];
      await run('redis-cli', create);
      const ok = async () =>
        (await Promise.all(nodes.map((node) => node.cli('CLUSTER', 'INFO')))).every((s) =>
          s.includes('cluster_state:ok'),
        );
      await until(ok, 20_000, 'the cluster ok', 50);
      // Replicas in sync first: their full sync (a fork on the master) must not fall in a measurement.
      const roles = async () => Promise.all(nodes.map((node) => node.info('replication')));
      const synced = async () => (await roles()).filter((r) => r.master_link_status === 'up').length === 3;
      await until(synced, 20_000, 'the replicas in sync', 50);
      const replication = await roles();
      masters = nodes.filter((_, i) => replication[i].role === 'master');
    }
    const stats = async () => {
      const calls = {};
      let cpu = 0;
      const keys = [];
      for (const node of masters) {
        for (const [name, value] of Object.entries(await node.info('commandstats'))) {
          const command = name.replace('cmdstat_', '');
          calls[command] = (calls[command] ?? 0) + Number(/calls=(\d+)/.exec(value)[1]);
        }
        const usage = await node.info('cpu');
        cpu += Number(usage.used_cpu_user) + Number(usage.used_cpu_sys);
        keys.push(Number(await node.cli('DBSIZE')));
      }
      return { calls, cpu, keys };
    };
    const urls = nodes.map((node) => node.url).join(',');
    return {
      env: cluster ? { REDIS_CLUSTER: urls } : { REDIS_URL: urls },
      cli: nodes[0].cli,
      info: nodes[0].info,
      stats,
      resetStats: () => Promise.all(masters.map((node) => node.cli('CONFIG', 'RESETSTAT'))),
      flush: () => Promise.all(masters.map((node) => node.cli('FLUSHALL'))),
      stop,
    };
  } catch (error) {
    stop();
    throw error;
  }
}
