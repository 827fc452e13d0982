// Writes an installable tarball of every published package into one folder (`packs/` unless
// `--out <dir>`), building them first unless `--no-build`. pnpm packs them, so `workspace:` ranges
// become the real versions; `npm pack` would ship them as they are and npm cannot install those.
// Each tarball is then checked for what a registry user needs, and the script fails loudly if one
// lacks it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const npxPnpm = ['-y', 'pnpm@10.34.8'];
const DEPENDENCY_FIELDS = ['dependencies', 'peerDependencies', 'optionalDependencies'];
const REQUIRED_FILES = ['package.json', 'LICENSE', 'README.md'];

/** What is wrong with an unpacked tarball's files and manifest; empty when nothing is. */
export function tarballProblems(files, manifest) {
  const problems = REQUIRED_FILES.filter((file) => !files.includes(file)).map((file) => `no ${file}`);
  for (const field of DEPENDENCY_FIELDS) {
    for (const [name, range] of Object.entries(manifest[field] ?? {})) {
      if (range.includes(':') && !/^npm:/.test(range)) problems.push(`${field} ${name}@${range}`);
    }
  }
  for (const [entry, target] of Object.entries(manifest.exports ?? {})) {
    if (typeof target !== 'object') continue;
    for (const [condition, paths] of Object.entries(target)) {
      if (Object.keys(paths)[0] !== 'types')
        problems.push(`exports["${entry}"].${condition} has no types first`);
      for (const path of Object.values(paths)) {
        if (!files.includes(path.replace(/^\.\//, '')))
          problems.push(`exports["${entry}"] names missing ${path}`);
      }
    }
  }
  return problems;
}

/** Lists a tarball's files (without the `package/` prefix) and reads its package.json. */
export function readTarball(tarball) {
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((path) => path.replace(/^package\//, ''));
  const manifest = JSON.parse(
    execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }),
  );
  return { files, manifest };
}

/** Packs every published package into `out`, checks each tarball, and returns their paths. */
export function packAll({ out = join(root, 'packs'), build = true } = {}) {
  if (build) execFileSync('npx', [...npxPnpm, 'run', 'build'], { cwd: root, stdio: 'inherit' });
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  // pnpm adds the workspace's LICENSE to a package that has none of its own.
  execFileSync('npx', [...npxPnpm, '-r', '--filter', './packages/*', 'pack', '--pack-destination', out], {
    cwd: root,
    stdio: 'ignore',
  });
  const tarballs = readdirSync(out).map((name) => join(out, name));
  const problems = tarballs.flatMap((tarball) => {
    const { files, manifest } = readTarball(tarball);
    return tarballProblems(files, manifest).map((problem) => `${basename(tarball)}: ${problem}`);
  });
  if (problems.length > 0) throw new Error(`pack: not installable:\n${problems.join('\n')}`);
  return tarballs;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const outIndex = args.indexOf('--out');
  const out = outIndex >= 0 ? resolve(args[outIndex + 1]) : undefined;
  const tarballs = packAll({ out, build: !args.includes('--no-build') });
  for (const tarball of tarballs) {
    console.log(`${(statSync(tarball).size / 1024).toFixed(1).padStart(7)} KiB  ${tarball}`);
  }
}
