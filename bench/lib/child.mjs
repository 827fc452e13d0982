// Server children for the stream suite: one process per contender (so RSS and CPU are its own),
// driven over IPC (see servers/common.mjs). Every child started here is killed on stop(), on the
// parent's exit and on SIGINT/SIGTERM, so a run never leaves a server behind.

import { fork } from 'node:child_process';

const live = new Set();

function killAll() {
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
 * Starts `servers/NAME.mjs` and resolves once it listens.
 *
 * @param {string} name
 * @param {{ execArgv?: string[], timeout?: number }} [options] `execArgv` adds Node flags (say
 *   `--cpu-prof`): the profile is written when the child exits through stop().
 */
export function startServer(name, { execArgv = [], timeout = 30_000 } = {}) {
  const file = new URL(`../servers/${name}.mjs`, import.meta.url);
  const child = fork(file, [], {
    execArgv: ['--expose-gc', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.add(child);
  let nextId = 0;
  const waiting = new Map();
  let exited = false;
  child.on('message', (message) => {
    const pending = waiting.get(message.id);
    if (!pending) return;
    waiting.delete(message.id);
    if (message.error) pending.reject(new Error(`${name}: ${message.error}`));
    else pending.resolve(message.result);
  });
  const exit = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      live.delete(child);
      for (const pending of waiting.values()) pending.reject(new Error(`${name} exited (${signal ?? code})`));
      waiting.clear();
      resolve();
    });
  });

  /** Sends a command (see servers/common.mjs) and resolves with its result. */
  const request = (command, args, ms = 60_000) =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error(`${name} is not running`));
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`${name}: '${command}' timed out after ${ms} ms`));
      }, ms);
      waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      child.send({ id, command, args });
    });

  /** Asks the child to exit (so a --cpu-prof profile gets written); kills it if it does not. */
  const stop = async () => {
    if (exited) return;
    request('exit', undefined, 5_000).catch(() => {});
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exit;
    clearTimeout(timer);
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeout} ms`));
    }, timeout);
    const onReady = (message) => {
      if (!message.ready) return;
      clearTimeout(timer);
      child.off('message', onReady);
      resolve({ name, port: message.port, pid: child.pid, request, stop });
    };
    child.on('message', onReady);
    exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before listening`));
    });
  });
}
