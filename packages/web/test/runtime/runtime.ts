import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../../../test/support/ports.js';

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
  stderr: string[];
  stop(): Promise<void>;
}

export async function startRuntime(runtime: Runtime): Promise<RuntimeServer> {
  const port = await freePort();
  const [command, args] = runtime.command(port);
  const child: ChildProcess = spawn(command, args, { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (text: string) => stderr.push(text));
  let stdout = '';
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${runtime.name} did not start: ${stderr.join('')}`)),
      30_000,
    );
    child.stdout!.on('data', (text: string) => {
      stdout += text;
      if (stdout.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${runtime.name} exited with ${code}: ${stderr.join('')}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stderr,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill();
      await once(child, 'exit');
    },
  };
}
