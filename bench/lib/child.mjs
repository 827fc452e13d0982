// A server or worker in a process of its own (its heap, RSS and CPU its own), on Node or Bun, driven
// over the IPC channel: `child.request(command, args)` in the parent, serveParent(commands) in the
// child. A child exits when the channel closes, so a parent that dies leaves nothing behind.

import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const live = new Set();

export function killAll() {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

/** The descriptor limit a child may ask for: the hard limit, at most 65,536. */
export function fdLimit() {
  const hard = execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return hard === 'unlimited' ? 65_536 : Math.min(65_536, Number(hard));
}

/**
 * The CPU a measured server is pinned to with `taskset` (Linux), or `undefined` where it cannot be:
 * the last one, the client in the parent left to the others. Left to the scheduler, a server ran
 * now on one core, now on the other, sometimes on the client's, and the cores of a shared machine
 * run at different speeds: a burst's rate spread 30-90 % over rounds, 4-16 % pinned.
 */
export const serverCpu = (() => {
  const count = cpus().length;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return count > 1 ? count - 1 : undefined;
  } catch {
    return undefined;
  }
})();

const bunBinary = () =>
  join(dirname(createRequire(import.meta.url).resolve('bun/package.json')), 'bin', 'bun.exe');

const { BENCH_CPU_PROF: profiles } = process.env;
const profile = profiles ? ['--cpu-prof', `--cpu-prof-dir=${profiles}`] : [];

/**
 * Starts `file` (a URL) through bash, whose `exec` keeps the pid and the IPC channel; resolves once
 * it is ready. `execArgv`: Node flags besides `--expose-gc` (and `--cpu-prof` with BENCH_CPU_PROF);
 * `limit`: a raised `ulimit -n`; `cpu`: the one CPU it runs on; `bun`: run it with Bun.
 */
export async function startChild(file, { args = [], execArgv = [], env = {}, limit, cpu, bun = false } = {}) {
  const path = fileURLToPath(file);
  const command = bun
    ? [bunBinary(), path, ...args]
    : [process.execPath, '--expose-gc', ...profile, ...execArgv, path, ...args];
  const pin = cpu === undefined ? '' : `taskset -c ${cpu} `;
  const script = `${limit === undefined ? '' : `ulimit -n ${limit} && `}exec ${pin}"$0" "$@"`;
  const stdio = ['ignore', 'inherit', 'inherit', 'ipc'];
  const child = spawn('bash', ['-c', script, ...command], { stdio, env: { ...process.env, ...env } });
  const name = `${path.split('/').slice(-2).join('/')} ${args.join(' ')}`.trim();
  live.add(child);

  const waiting = new Map();
  let nextId = 0;
  // Timers here are never cleared: a late one settles a settled promise or kills an exited child.
  const answer = (id, ms, late) =>
    new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      setTimeout(() => reject(new Error(`${name}: ${late} after ${ms} ms`)), ms).unref();
    });
  child.on('message', ({ id, result, error }) => {
    const pending = waiting.get(id);
    waiting.delete(id);
    if (error === undefined) pending?.resolve(result);
    else pending?.reject(new Error(`${name}: ${error}`));
  });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      for (const pending of waiting.values()) pending.reject(new Error(`${name} exited (${signal ?? code})`));
      resolve();
    });
  });

  const request = (command, args = {}, ms = 120_000) => {
    if (!live.has(child)) return Promise.reject(new Error(`${name} is not running`));
    const id = nextId++;
    child.send({ id, command, args });
    return answer(id, ms, `'${command}' timed out`);
  };

  // Asked to exit, a child writes its --cpu-prof profile.
  const stop = async () => {
    request('exit', {}, 5_000).catch(() => {});
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    await exited;
  };

  const info = await answer('ready', 30_000, 'not ready').catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });
  return { info, request, stop };
}

/** In a child: `info` for the parent (say `{ port }`), then `commands[command](args)` per request. */
export function serveParent(commands, info = {}) {
  process.on('message', async ({ id, command, args }) => {
    if (command === 'exit') return process.send({ id, result: true }, () => process.exit(0));
    try {
      process.send({ id, result: await commands[command](args) });
    } catch (error) {
      process.send({ id, error: String(error?.stack ?? error) });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ id: 'ready', result: info });
}
