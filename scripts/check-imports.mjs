// Lint for the import graph of packages/*: fails on an import circle, within a package or through
// other packages' public entries (type-only imports count: a circle of types is still a knot), on
// sources importing outside their package's src/, and on a package reaching into another's files,
// where only the other package's `exports` map (`@rxsse/core`, `@rxsse/core/channel`, ...) is
// public. Shared test support lives in test/.
// `node scripts/check-imports.mjs [root]`; exit code 1 with one line per finding.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

/** Every .ts file under `dir`, skipping dependencies and build output. */
function sources(dir) {
  const files = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...sources(path));
    else if (/\.(m|c)?ts$/.test(name) && !name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

/** The specifiers a file imports or re-exports. */
function specifiers(text) {
  const found = [];
  for (const match of text.matchAll(IMPORT)) found.push(match[1] ?? match[2] ?? match[3]);
  return found;
}

/** The .ts file a relative specifier names, if it exists. */
function resolveRelative(from, spec) {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

/** Public subpaths of each workspace package, from its `exports` map, and the package's folder. */
function publicEntries(packagesDir) {
  const entries = new Map();
  for (const name of readdirSync(packagesDir)) {
    const manifest = join(packagesDir, name, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
    const subpaths = Object.keys(pkg.exports ?? { '.': '' }).map((key) => (key === '.' ? '' : key.slice(1)));
    entries.set(pkg.name, Object.assign(new Set(subpaths), { dir: join(packagesDir, name) }));
  }
  return entries;
}

/**
 * The source file a package's public subpath is built from (`src/index.ts`, `src/channel/index.ts`
 * or `src/channel.ts`), or, when none is, the package's manifest, which stands for all its sources.
 */
function entryFile(dir, subpath) {
  const base = join(dir, 'src', subpath);
  for (const candidate of [join(base, 'index.ts'), `${base}.ts`]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return join(dir, 'package.json');
}

/** Circles in a graph of file -> files, each as the list of its files (Tarjan's components). */
function circles(graph) {
  let index = 0;
  const stack = [];
  const state = new Map();
  const found = [];
  const visit = (node) => {
    const entry = { index, low: index, onStack: true };
    index++;
    state.set(node, entry);
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const seen = state.get(next);
      if (!seen) {
        visit(next);
        entry.low = Math.min(entry.low, state.get(next).low);
      } else if (seen.onStack) entry.low = Math.min(entry.low, seen.index);
    }
    if (entry.low === entry.index) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        state.get(member).onStack = false;
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)?.has(node)) found.push(component.reverse());
    }
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

/** Every finding in the workspace at `root`, one line each. */
export function check(root) {
  const packagesDir = join(root, 'packages');
  const problems = [];
  const entries = publicEntries(packagesDir);
  const graph = new Map();
  for (const { dir } of entries.values()) graph.set(join(dir, 'package.json'), new Set());
  for (const pkg of readdirSync(packagesDir)) {
    const pkgDir = join(packagesDir, pkg);
    if (!existsSync(join(pkgDir, 'package.json'))) continue;
    for (const file of sources(pkgDir)) {
      const edges = new Set();
      graph.set(file, edges);
      if (file.startsWith(join(pkgDir, 'src/'))) graph.get(join(pkgDir, 'package.json'))?.add(file);
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        const where = relative(root, file);
        if (spec.startsWith('.')) {
          const target = resolveRelative(file, spec);
          if (target === undefined) continue;
          const srcDir = join(pkgDir, 'src/');
          if (file.startsWith(srcDir) && !target.startsWith(srcDir)) {
            problems.push(`${where}: imports ${spec}, outside its package's sources`);
          } else if (target.startsWith(packagesDir) && !target.startsWith(`${pkgDir}/`)) {
            problems.push(`${where}: imports ${spec}, inside another package; import its public entry`);
          } else edges.add(target);
          continue;
        }
        const scoped = /^(@rxsse\/[^/]+)(?:\/(.+))?$/.exec(spec);
        if (!scoped || !entries.has(scoped[1])) continue;
        const subpath = scoped[2] ? `/${scoped[2]}` : '';
        const target = entries.get(scoped[1]);
        if (!target.has(subpath)) {
          problems.push(`${where}: imports ${spec}, which ${scoped[1]} does not export`);
        } else edges.add(entryFile(target.dir, subpath));
      }
    }
  }
  for (const circle of circles(graph)) {
    const names = circle.map((file) => relative(root, file));
    problems.push(`import circle: ${[...names, names[0]].join(' -> ')}`);
  }
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const problems = check(resolve(process.argv[2] ?? '.'));
  for (const problem of problems) console.error(problem);
  if (problems.length > 0) process.exit(1);
  console.log('imports: no circles, no package reaches into another');
}
