// Child processes of the scale suite. Every child is started through
// `bash -c 'ulimit -n N; exec node ...'`, so it gets a raised file-descriptor limit, and `exec`
// keeps its pid (and the IPC channel) the node process's own. The IPC protocol is lib/child.mjs's.

import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { driveChild } from '../lib/child.mjs';

export { killAll } from '../lib/child.mjs';

/** The soft limit children get: as many descriptors as the hard limit allows, at most 65,536. */
export function fdLimit() {
  const hard = execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return hard === 'unlimited' ? 65_536 : Math.min(65_536, Number(hard));
}

/**
 * Starts `node --expose-gc [nodeArgs] scale/SCRIPT.mjs [args]` with `ulimit -n limit`, and resolves
 * with a handle once the child said it is ready (`{ ready: info }`, see lib/child.mjs).
 */
export function startChild(script, args, { limit, nodeArgs = [], env = {}, timeout = 30_000 }) {
  const file = fileURLToPath(new URL(`./${script}.mjs`, import.meta.url));
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
  return driveChild(child, `${script} ${args.join(' ')}`.trim(), { timeout, requestTimeout: 120_000 });
}

/** In a child: answers the parent's requests with `handlers[command](args)`; `exit` ends the process. */
export function serve(handlers, readyInfo) {
  process.on('message', async ({ id, command, args }) => {
    if (command === 'exit') {
      process.send({ id, result: true }, () => process.exit(0));
      return;
    }
    try {
      const handler = handlers[command];
      if (!handler) throw new Error(`unknown command '${command}'`);
      process.send({ id, result: await handler(args) });
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
