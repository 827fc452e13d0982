// Bun and Deno from the npm registry, as the package at `from` installed them: their executables
// themselves, not the npm launchers in node_modules/.bin. Bun's is a shell script and Deno's a Node
// script, each running the runtime as its own child, so killing the launcher left the runtime serving.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const bunExecutable = (from: string | URL): string =>
  join(dirname(createRequire(from).resolve('bun/package.json')), 'bin', 'bun.exe');

/** Deno's own installer knows where its platform package put the executable. */
export const denoExecutable = (from: string | URL): string =>
  createRequire(from)('deno/install_api.cjs').runInstall();
