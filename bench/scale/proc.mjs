// Child processes of the scale suite and the IPC protocol between them. Every child is started through
// `bash -c 'ulimit -n N; exec node ...'`, so it gets a raised file-descriptor limit, and `exec`
// keeps its pid (and the IPC channel) the node process's own. Requests carry an id; the child answers
// `{ id, result }` or `{ id, error }`.

import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The soft limit children get: as many descriptors as the hard limit allows, at most 65,536. */
export function fdLimit() {
  const hard = execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return hard === 'unlimited' ? 65_536 : Math.min(65_536, Number(hard));
}

const live = new Set();

/** Kills every child still running (SIGKILL, by pid): the last resort of every finally block. */
export function killAll() {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}
process.on('exit', killAll);

/**
 * Starts `node --expose-gc [nodeArgs] scale/SCRIPT.mjs [args]` with `ulimit -n limit`, and resolves
 * with a handle once the child said it is ready (`{ ready: info }`).
 */
export async function startChild(script, args, { limit, nodeArgs = [], env = {}, timeout = 30_000 }) {
  const file = fileURLToPath(new URL(`./${script}.mjs`, import.meta.url));
  const name = `${script} ${args.join(' ')}`.trim();
  const child = spawn(
    'bash',
    [
      '-c',
      `ulimit -n ${limit} && exec "$0" "$@"`,
      process.execPath,
      '--expose-gc',
      ...nodeArgs,
      file,
      ...args,
    ],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } },
  );
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

  const request = (cmd, params = {}, ms = 120_000) =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error(`${name} is not running`));
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`${name}: '${cmd}' timed out after ${ms} ms`));
      }, ms);
      const settle = (fn) => (value) => {
        clearTimeout(timer);
        fn(value);
      };
      waiting.set(id, { resolve: settle(resolve), reject: settle(reject) });
      child.send({ id, cmd, params });
    });

  /** Asks the child to exit (so a --cpu-prof profile is written), then kills it if it lingers. */
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

/** In a child: answers the parent's requests with `handlers[cmd](params)`; `exit` ends the process. */
export function serve(handlers, readyInfo) {
  process.on('message', async ({ id, cmd, params }) => {
    if (cmd === 'exit') {
      process.send({ id, result: true }, () => process.exit(0));
      return;
    }
    try {
      const handler = handlers[cmd];
      if (!handler) throw new Error(`unknown command '${cmd}'`);
      process.send({ id, result: await handler(params) });
    } catch (error) {
      process.send({ id, error: String(error?.stack ?? error) });
    }
  });
  // The parent going away (killed, crashed) must not leave this child holding 10,000 sockets.
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: readyInfo });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Full collections until the heap stops shrinking, with turns of the loop for weak callbacks. */
export async function settleHeap() {
  let last = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 8; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setImmediate(resolve));
    await sleep(20);
    const used = process.memoryUsage().heapUsed;
    if (i >= 2 && used >= last - 4096) break;
    last = used;
  }
  globalThis.gc?.();
  return process.memoryUsage();
}
