import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startChild } from '../../../../test/support/processes.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const require = createRequire(import.meta.url);

// The executables themselves, not the npm launchers in node_modules/.bin: Bun's is a shell script
// and Deno's a Node script, each running the runtime as its own child, so killing the launcher
// left the runtime serving after the tests.
const bunExecutable = () => join(dirname(require.resolve('bun/package.json')), 'bin', 'bun.exe');
/** Deno's own installer knows where its platform package put the executable. */
const denoExecutable = (): string => require('deno/install_api.cjs').runInstall();

/** A runtime other than Node, from the npm registry, serving `server.ts` in its own process. */
export interface Runtime {
  name: string;
  command: (port: number) => [string, string[]];
}

export const bun: Runtime = {
  name: 'Bun',
  command: (port) => [bunExecutable(), [`${here}server.ts`, String(port)]],
};

export const deno: Runtime = {
  name: 'Deno',
  command: (port) => [
    denoExecutable(),
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
    stop: () => child.stop(),
  };
}
