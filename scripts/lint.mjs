// The body of `pnpm run lint`: Biome, the import graph, and the three TypeScript checks (the
// workspace, the client and the Nest package, each with its own tsconfig). They read and write
// nothing the others read, so they run side by side, as many at once as there are cores; each
// one's output is printed whole, in the order below, and the exit code is non-zero if any failed.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

const CHECKS = [
  // The longest first, so that the others fill the remaining cores beside it.
  ['tsc', '-p', 'tsconfig.json'],
  ['tsc', '-p', 'packages/nestjs/tsconfig.json', '--noEmit'],
  ['tsc', '-p', 'packages/client/tsconfig.json', '--noEmit'],
  ['biome', 'ci', '.'],
  ['node', 'scripts/check-imports.mjs'],
];

/** Runs one check to its end: its output (stdout and stderr as they came) and exit code. */
function run([command, ...args]) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('error', (error) => resolve({ output: `${output}${error.message}\n`, status: 1 }));
    child.on('close', (status, signal) => resolve({ output, status: status ?? (signal ? 1 : 0) }));
  });
}

const results = new Array(CHECKS.length);
let next = 0;
async function worker() {
  while (next < CHECKS.length) {
    const index = next++;
    results[index] = await run(CHECKS[index]);
  }
}
await Promise.all(Array.from({ length: Math.min(availableParallelism(), CHECKS.length) }, worker));

let failed = 0;
CHECKS.forEach((check, index) => {
  const { output, status } = results[index];
  console.log(`== ${check.join(' ')}${status === 0 ? '' : ` (exit ${status})`}`);
  if (output) process.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
  if (status !== 0) failed++;
});
process.exit(failed === 0 ? 0 : 1);
