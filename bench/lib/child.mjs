// The one way a suite runs a server or worker in a process of its own (its heap, RSS and CPU its
// own), on Node or Bun. Protocol, over the child's IPC channel (JSON):
//   child -> parent  { ready: info }                 once, when it listens or is ready; info is free
//                                                    form (say `{ port }`), returned as handle.info
//   parent -> child  { id, command, args }           a request
//   child -> parent  { id, result } | { id, error }  its answer (error: a string)
// Every child answers `exit`, then exits; it also exits when the channel closes (a parent that dies
// leaves nothing behind), and the parent kills what it started on its own exit and on SIGINT/SIGTERM.
// Parent: `const child = await startChild(fileUrl, options)`; `child.info`, `await
// child.request('command', args)`, `await child.stop()`. Child: `serveParent({ command: (args) =>
// result }, info)` once ready (commands may be async).

import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const live = new Set();

/** Kills every child still running: the last resort of every finally block. */
export function killAll() {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** The descriptor limit a child may ask for: the hard limit, at most 65,536. */
export function fdLimit() {
  const hard = execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return hard === 'unlimited' ? 65_536 : Math.min(65_536, Number(hard));
}

/** The `bun` binary of the npm registry's `bun` package. */
const bunBinary = () =>
  join(dirname(createRequire(import.meta.url).resolve('bun/package.json')), 'bin', 'bun.exe');

/**
 * Starts `file` (a URL) through bash, whose `exec` keeps the pid and the IPC channel; resolves once
 * it sent `{ ready }`, kills it if it is not ready within `timeout` ms.
 *
 * @param {URL} file
 * @param {{ args?: string[], execArgv?: string[], env?: object, limit?: number, bun?: boolean,
 *   timeout?: number, requestTimeout?: number }} [options] `execArgv`: Node flags (default
 *   `--expose-gc`; a `--cpu-prof` profile is written when stop() lets the child exit); `limit`: a
 *   raised `ulimit -n`; `bun`: run it with Bun instead of Node.
 */
export async function startChild(file, options = {}) {
  const { args = [], execArgv = [], env = {}, limit, bun = false } = options;
  const { timeout = 30_000, requestTimeout = 120_000 } = options;
  const path = fileURLToPath(file);
  const command = bun
    ? [bunBinary(), path, ...args]
    : [process.execPath, '--expose-gc', ...execArgv, path, ...args];
  const script = `${limit === undefined ? '' : `ulimit -n ${limit} && `}exec "$0" "$@"`;
  const stdio = ['ignore', 'inherit', 'inherit', 'ipc'];
  const child = spawn('bash', ['-c', script, ...command], { stdio, env: { ...process.env, ...env } });
  const name = `${path.split('/').slice(-2).join('/')} ${args.join(' ')}`.trim();
  live.add(child);

  const waiting = new Map();
  let nextId = 0;
  let onReady;
  let onFail;
  const ready = new Promise((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  child.on('message', (message) => {
    if (message.ready !== undefined) return onReady(message.ready);
    const pending = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.error !== undefined) pending?.reject(new Error(`${name}: ${message.error}`));
    else pending?.resolve(message.result);
  });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      const error = new Error(`${name} exited (${signal ?? code})`);
      onFail(error);
      for (const pending of waiting.values()) pending.reject(error);
      waiting.clear();
      resolve();
    });
  });

  // The timers below are unref'd and never cleared: a late one settles a settled promise, or kills
  // a child that already exited (a no-op), and neither keeps the process alive.
  /** Sends a command; resolves with its result, rejects on its error or after `ms`. */
  const request = (command, args = {}, ms = requestTimeout) =>
    new Promise((resolve, reject) => {
      if (!live.has(child)) return reject(new Error(`${name} is not running`));
      waiting.set(nextId, { resolve, reject });
      setTimeout(() => reject(new Error(`${name}: '${command}' timed out after ${ms} ms`)), ms).unref();
      child.send({ id: nextId++, command, args });
    });

  /** Asks the child to exit (so a profile gets written); kills it if it lingers. */
  const stop = async () => {
    if (!live.has(child)) return;
    request('exit', {}, 5_000).catch(() => {});
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    await exited;
  };

  setTimeout(() => onFail(new Error(`${name} not ready after ${timeout} ms`)), timeout).unref();
  try {
    return { name, pid: child.pid, info: await ready, request, stop };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** In a child: tells the parent it is ready, then answers its requests with `commands[command](args)`. */
export function serveParent(commands, info) {
  process.on('message', async ({ id, command, args }) => {
    if (command === 'exit') {
      process.send({ id, result: true }, () => process.exit(0));
      return;
    }
    try {
      if (!commands[command]) throw new Error(`unknown command '${command}'`);
      process.send({ id, result: await commands[command](args ?? {}) });
    } catch (error) {
      process.send({ id, error: String(error?.stack ?? error) });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: info });
}
