// Child processes of the benchmarks, driven over IPC: the stream suite's servers (one process per
// contender, so RSS and CPU are its own) and the scale suite's servers and clients. The protocol:
// the child sends `{ ready: info }` once it is ready; a request is `{ id, command, args }`, answered
// `{ id, result }` or `{ id, error }`. Every child is killed on stop(), on the parent's exit and on
// SIGINT/SIGTERM, so a run never leaves one behind.

import { fork } from 'node:child_process';

const live = new Set();

/** Kills every child still running (SIGKILL): the last resort of every finally block. */
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

/**
 * Drives a child started with an IPC channel: resolves with `{ name, pid, info, request, stop }`
 * once it sent `{ ready: info }`; kills it if it is not ready within `timeout` ms.
 *
 * @param {import('node:child_process').ChildProcess} child
 * @param {string} name for error messages
 * @param {{ timeout?: number, requestTimeout?: number }} [options]
 */
export async function driveChild(child, name, { timeout = 30_000, requestTimeout = 60_000 } = {}) {
  live.add(child);
  const waiting = new Map();
  let nextId = 0;
  let exited = false;
  let readyResolve;
  let readyReject;
  const ready = new Promise((resolve, reject) => {
    readyResolve = resolve;
    readyReject = reject;
  });
  child.on('message', (message) => {
    if (message.ready !== undefined) return readyResolve(message.ready);
    const pending = waiting.get(message.id);
    if (!pending) return;
    waiting.delete(message.id);
    if (message.error !== undefined) pending.reject(new Error(`${name}: ${message.error}`));
    else pending.resolve(message.result);
  });
  const exit = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      live.delete(child);
      const error = new Error(`${name} exited (${signal ?? code})`);
      readyReject(error);
      for (const pending of waiting.values()) pending.reject(error);
      waiting.clear();
      resolve();
    });
  });

  /** Sends a command and resolves with its result. */
  const request = (command, args = {}, ms = requestTimeout) =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error(`${name} is not running`));
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`${name}: '${command}' timed out after ${ms} ms`));
      }, ms);
      const settle = (fn) => (value) => {
        clearTimeout(timer);
        fn(value);
      };
      waiting.set(id, { resolve: settle(resolve), reject: settle(reject) });
      child.send({ id, command, args });
    });

  /** Asks the child to exit (so a --cpu-prof profile gets written); kills it if it lingers. */
  const stop = async () => {
    if (exited) return;
    request('exit', {}, 5_000).catch(() => {});
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exit;
    clearTimeout(timer);
  };

  const timer = setTimeout(() => readyReject(new Error(`${name} not ready after ${timeout} ms`)), timeout);
  try {
    const info = await ready;
    return { name, pid: child.pid, info, request, stop };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts `servers/NAME.mjs` (a stream-suite server) and resolves once it listens.
 *
 * @param {string} name
 * @param {{ execArgv?: string[], timeout?: number }} [options] `execArgv` adds Node flags (say
 *   `--cpu-prof`): the profile is written when the child exits through stop().
 */
export async function startServer(name, { execArgv = [], timeout } = {}) {
  const file = new URL(`../servers/${name}.mjs`, import.meta.url);
  const child = fork(file, [], {
    execArgv: ['--expose-gc', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const handle = await driveChild(child, name, { timeout });
  return { ...handle, port: handle.info.port };
}
