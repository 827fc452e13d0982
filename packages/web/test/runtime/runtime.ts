import { fileURLToPath } from 'node:url';
import { freePort, startChild } from '../../../../test/support/processes.js';
import { bunExecutable, denoExecutable } from '../../../../test/support/runtimes.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/** A runtime other than Node, from the npm registry, serving `server.ts` in its own process. */
export interface Runtime {
  name: string;
  command: (port: number) => [string, string[]];
}

export const bun: Runtime = {
  name: 'Bun',
  command: (port) => [bunExecutable(import.meta.url), [`${here}server.ts`, String(port)]],
};

export const deno: Runtime = {
  name: 'Deno',
  command: (port) => [
    denoExecutable(import.meta.url),
    [
      'run',
      '--allow-net=127.0.0.1',
      '--allow-read',
      '--allow-env',
      '--v8-flags=--expose-gc',
      `--config=${here}deno.json`,
      `${here}server.ts`,
      String(port),
    ],
  ],
};

/** The runtime's server, started; `stderr` is everything it wrote there. */
export interface RuntimeServer {
  url: string;
  readonly stderr: string;
  /** Resolves when the server prints `pattern`; rejects if it exits first or `timeout` passes. */
  printed(pattern: RegExp, timeout: number): Promise<unknown>;
  stop(): Promise<void>;
}

export async function startRuntime(runtime: Runtime): Promise<RuntimeServer> {
  const port = await freePort();
  const [command, args] = runtime.command(port);
  const child = startChild(command, args, {}, here);
  await child.waitFor(/listening/, 30_000);
  return {
    url: `http://127.0.0.1:${port}`,
    get stderr() {
      return child.errors;
    },
    printed: (pattern, timeout) => child.waitFor(pattern, timeout),
    stop: () => child.stop(),
  };
}
