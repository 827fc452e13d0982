// The redis suite's Redis: one redis-server, or a Redis Cluster of 3 masters and 3 replicas, on free
// loopback ports, without persistence, in a temporary directory. Every node is killed and the
// directory removed on stop() and when the process exits, whatever happens.

import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { until } from '../lib/harness.mjs';

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
  const cli = async (...command) => (await run('redis-cli', ['-p', String(port), ...command])).stdout.trim();
  /** A reply of `name:value` lines (`INFO <section>`, `CLUSTER INFO`) as name → value. */
  const fields = async (...command) => {
    const lines = (await cli(...command)).matchAll(/^([^:#\s]+):(.*)$/gm);
    return Object.fromEntries([...lines].map(([, name, value]) => [name, value.trim()]));
  };
  return { port, child, cli, fields };
}

/**
 * Starts Redis: `env(options)` points app.mjs at it, with more redisEngine options;
 * `stats()` sums over the masters: commands run (`INFO commandstats`), EVALs among them, CPU seconds
 * (user + sys); and lists their keys.
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
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
    const rootNodes = addresses.map((address) => ({ url: `redis://${address}` }));
    const roles = () => Promise.all(nodes.map((node) => node.fields('INFO', 'replication')));
    if (cluster) {
      const create = ['--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes'];
      await run('redis-cli', create);
      // Replicas in sync too: their full sync (a fork on the master) must not fall in a measurement.
      const ready = async () => {
        const states = await Promise.all(nodes.map((node) => node.fields('CLUSTER', 'INFO')));
        const synced = (await roles()).filter((r) => r.master_link_status === 'up').length;
        return synced === 3 && states.every((state) => state.cluster_state === 'ok');
      };
      await until(ready, 20_000, 'the cluster ok and its replicas in sync', 50);
    }
    const replication = await roles();
    const masters = nodes.filter((_, i) => replication[i].role === 'master');
    const where = cluster ? { cluster: { rootNodes } } : rootNodes[0];
    const stats = async () => {
      const totals = { commands: 0, evals: 0, cpu: 0, keys: [] };
      for (const node of masters) {
        const info = await node.fields('INFO', 'commandstats', 'cpu');
        const calls = (name) => Number(/^calls=(\d+)/.exec(info[name])?.[1] ?? 0);
        totals.commands += Object.keys(info).reduce((n, name) => n + calls(name), 0);
        totals.evals += calls('cmdstat_eval');
        totals.cpu += Number(info.used_cpu_user) + Number(info.used_cpu_sys);
        totals.keys.push(Number(await node.cli('DBSIZE')));
      }
      return totals;
    };
    return {
      env: (options = {}) => ({ ENGINE: JSON.stringify({ ...where, ...options }) }),
      cli: nodes[0].cli,
      fields: nodes[0].fields,
      stats,
      flush: () => Promise.all(masters.map((node) => node.cli('FLUSHALL'))),
      stop,
    };
  } catch (error) {
    stop();
    throw error;
  }
}
