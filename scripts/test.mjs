// The body of `npm test`: builds and runs the whole suite on this Node, then again on Node 24
// (installed from the npm registry into .tmp/node24), less the files whose server runs on another
// runtime and those that only type-check, and prints one summary line per Node and a combined last
// line. Exits non-zero if either run fails, or if the build on Node 24 warns of a deprecation.
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installNode } from './install-node.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const SECOND_MAJOR = 24;

// Their servers run on Bun and Deno, which a second Node does not change: run once.
// Globs match paths inside a project (packages/web), not from the repository's root.
const OTHER_RUNTIMES = ['**/test/bun.test.ts', '**/test/deno.test.ts'];
// Type checks only: the TypeScript compiler, the same package on either Node, reads the same files
// and runs no code of theirs, so its diagnostics cannot differ between Nodes: run once.
const TYPE_CHECKS_ONLY = ['**/snippets.test.ts'];

const runs = [{ major: undefined, report: join(root, '.tmp', 'vitest.json'), exclude: [] }];
if (Number(process.versions.node.split('.')[0]) !== SECOND_MAJOR) {
  runs.push({
    major: SECOND_MAJOR,
    report: join(root, '.tmp', `vitest-node${SECOND_MAJOR}.json`),
    exclude: [...OTHER_RUNTIMES, ...TYPE_CHECKS_ONLY],
  });
}

const summaryArgs = [];
for (const run of runs) {
  rmSync(run.report, { force: true });
  let label = `node ${run.major ?? process.version}`;
  try {
    let node = process.execPath;
    const env = { ...process.env };
    if (run.major) {
      const bin = installNode(run.major);
      node = join(bin, 'node');
      // Children (pnpm, vitest's workers, servers the tests spawn) find this node first.
      env.PATH = `${bin}${delimiter}${env.PATH}`;
      // Types cannot differ between Nodes either: a build that checks them again (`next build`)
      // may skip that.
      env.RXSSE_TYPES_CHECKED = '1';
      label = `node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()}`;
    }
    console.log(`\n== build and test on ${label}`);
    build(env, run.major !== undefined);
    const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
    const reporters = ['--reporter=default', '--reporter=json', `--outputFile.json=${run.report}`];
    const exclude = run.exclude.map((glob) => `--exclude=${glob}`);
    spawnSync(node, [vitest, 'run', ...reporters, ...exclude], { cwd: root, env, stdio: 'inherit' });
  } catch (error) {
    // The summary counts a run without a report as failed, so this cannot pass unnoticed.
    console.error(`test: ${label}: ${error instanceof Error ? error.message : error}`);
  }
  summaryArgs.push(`${label}=${run.report}`);
}

const summary = spawnSync(process.execPath, [join(root, 'scripts', 'test-summary.mjs'), ...summaryArgs], {
  stdio: 'inherit',
});
process.exit(summary.status ?? 1);

/** Builds every package; with `noDeprecations`, a deprecation warning in its output fails it. */
function build(env, noDeprecations) {
  const result = spawnSync('npx', ['-y', 'pnpm@10.34.8', 'run', 'build'], {
    cwd: root,
    env,
    encoding: 'utf8',
  });
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  if (result.status !== 0) throw new Error(`build failed with status ${result.status}`);
  const warnings = `${result.stdout}${result.stderr}`.split('\n').filter((line) => /deprecat/i.test(line));
  if (noDeprecations && warnings.length > 0) {
    throw new Error(`the build warned of deprecations:\n${warnings.join('\n')}`);
  }
}
