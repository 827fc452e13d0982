import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { freePort, startChild } from '../../../../test/support/processes.js';
import { bunExecutable, denoExecutable } from '../../../../test/support/runtimes.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const nextApp = fileURLToPath(new URL('../next-app', import.meta.url));
const nextBin = createRequire(import.meta.url).resolve('next/dist/bin/next');

/** A runtime other than Node, from the npm registry, serving `server.ts` in its own process. */
export interface Runtime {
  name: string;
  command: (port: number) => [string, string[]];
  /** What it prints once it serves: `listening` unless said. */
  ready?: RegExp;
  /** The `Keep-Alive` header its server adds on HTTP/1.1 (Node's does): none unless said. */
  keepAlive?: string;
  env?: Record<string, string>;
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

/**
 * `next start` (production, what users deploy) on the app in `next-app`, built beforehand by
 * {@link buildNextApp}: every route of the contract in one catch-all route handler.
 */
export const next: Runtime = {
  name: 'Next.js',
  command: (port) => [
    process.execPath,
    ['--expose-gc', nextBin, 'start', '--hostname', '127.0.0.1', '--port', String(port), nextApp],
  ],
  ready: /Ready in/,
  keepAlive: 'timeout=5',
  env: { NEXT_TELEMETRY_DISABLED: '1' },
};

/** `next build` of `next-app`, once for every server the suite starts; rejects with its output. */
export async function buildNextApp(): Promise<void> {
  const child = startChild(process.execPath, [nextBin, 'build', nextApp], next.env);
  await child.exited;
  if (child.process.exitCode !== 0) throw new Error(`next build failed:\n${child.output}`);
}

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
  const child = startChild(command, args, runtime.env, here);
  await child.waitFor(runtime.ready ?? /listening/, 30_000);
  return {
    url: `http://127.0.0.1:${port}`,
    get stderr() {
      return child.errors;
    },
    printed: (pattern, timeout) => child.waitFor(pattern, timeout),
    stop: () => child.stop(),
  };
}
