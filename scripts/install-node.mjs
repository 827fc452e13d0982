// Installs the latest Node.js of one major line into .tmp/node<major> from the npm registry (the
// node-<platform>-<arch> packages ship the binary) and prints the directory of its `node`, to put
// first on PATH. An install of the right line already there is reused.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The bin directory of a Node.js of `major`, installed on first use. */
export function installNode(major) {
  const pkg = `node-${process.platform}-${process.arch}`;
  const prefix = join(root, '.tmp', `node${major}`);
  const bin = join(prefix, 'node_modules', pkg, 'bin');
  const node = join(bin, 'node');
  if (!existsSync(node) || !version(node).startsWith(`v${major}.`)) {
    const args = ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', '--prefer-offline'];
    execFileSync('npm', [...args, `${pkg}@${major}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    const installed = version(node);
    if (!installed.startsWith(`v${major}.`))
      throw new Error(`install-node: got ${installed}, not Node ${major}`);
  }
  return bin;
}

function version(node) {
  return execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const major = Number(process.argv[2]);
  if (!Number.isInteger(major)) throw new Error('usage: node scripts/install-node.mjs <major>');
  console.log(installNode(major));
}
