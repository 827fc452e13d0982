// Every entry point of every built package loads in each format its exports map offers, as a user's
// app loads it: require() where it names `require`, import() where it names `import`, with the same
// names either way; and the fields older resolvers read (main, module, types) name built files, and
// give TypeScript's classic CommonJS resolution (`module: commonjs`, node10) the types of every entry
// point that CommonJS can require.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const packagesDir = new URL('../../packages/', import.meta.url).pathname;

interface Manifest {
  name: string;
  main: string;
  module: string;
  types: string;
  exports: Record<string, string | Record<string, { types: string; default: string }>>;
}

const packages = readdirSync(packagesDir).map((dir) => ({
  dir: join(packagesDir, dir),
  manifest: JSON.parse(readFileSync(join(packagesDir, dir, 'package.json'), 'utf8')) as Manifest,
}));

/** The entry points whose exports map names `format`: `@rxsse/core/channel`, `@rxsse/core/testing`. */
const specifiersFor = (format: 'require' | 'import'): string[] =>
  packages.flatMap(({ manifest }) =>
    Object.entries(manifest.exports)
      .filter(([, conditions]) => typeof conditions !== 'string' && format in conditions)
      .map(([entry]) => `${manifest.name}${entry.slice(1)}`),
  );

/**
 * The names each entry point exports, or why it failed to load, loaded from the app's folder as its
 * code loads them: one process per format for every entry point, rather than one per entry point.
 * Each entry resolves its own dependencies from its package's folder, whatever loaded before it.
 */
const loadedBy = new Map<'require' | 'import', Promise<Record<string, string[] | { failed: string }>>>();
function loadAll(format: 'require' | 'import'): Promise<Record<string, string[] | { failed: string }>> {
  let loading = loadedBy.get(format);
  if (loading) return loading;
  const load = format === 'require' ? 'require(specifier)' : 'await import(specifier)';
  const script = `
    const loaded = {};
    for (const specifier of ${JSON.stringify(specifiersFor(format))}) {
      try {
        const m = ${load};
        loaded[specifier] = Object.keys(m).filter((k) => k !== 'default').sort();
      } catch (error) {
        loaded[specifier] = { failed: String(error?.stack ?? error) };
      }
    }
    console.log(JSON.stringify(loaded));`;
  const args = format === 'require' ? ['-e', script] : ['--input-type=module', '-e', script];
  loading = run(process.execPath, args, { cwd: app }).then(({ stdout }) => JSON.parse(stdout));
  loadedBy.set(format, loading);
  return loading;
}

/** The names a module exports, loaded with `require()` or `import()`. */
async function exportedNames(specifier: string, format: 'require' | 'import'): Promise<string[]> {
  const names = (await loadAll(format))[specifier];
  if (!names || 'failed' in names) throw new Error(`${format} ${specifier} failed:\n${names?.failed}`);
  return names;
}

/** An app folder whose node_modules/@rxsse holds every package, as npm installs them. */
const app = mkdtempSync(join(tmpdir(), 'rxsse-entry-points-'));
mkdirSync(join(app, 'node_modules', '@rxsse'), { recursive: true });
for (const { dir, manifest } of packages) symlinkSync(dir, join(app, 'node_modules', manifest.name));
afterAll(() => rmSync(app, { recursive: true, force: true }));

const node10Options: ts.CompilerOptions = {
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  target: ts.ScriptTarget.ES2022,
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  types: [],
};
/**
 * The files every check reads (TypeScript's lib, the packages' declarations), parsed once for all:
 * each check is still a program of its own, with its own checker, on the same options.
 */
const parsedFiles = new Map<string, ts.SourceFile | undefined>();

/** What tsc reports for `import * as entry from specifier` in a CommonJS project of `tsc --init`'s day. */
function node10Diagnostics(specifier: string): string[] {
  const file = join(app, 'index.ts');
  const options = node10Options;
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile;
  host.getSourceFile = (path, ...rest) => {
    if (path === file) return getSourceFile(path, ...rest);
    if (!parsedFiles.has(path)) parsedFiles.set(path, getSourceFile(path, ...rest));
    return parsedFiles.get(path);
  };
  const readFile = host.readFile;
  host.readFile = (path) =>
    path === file ? `import * as entry from '${specifier}';\nexport { entry };\n` : readFile(path);
  const exists = host.fileExists;
  host.fileExists = (path) => path === file || exists(path);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program, program.getSourceFile(file))
    .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
}

describe('the built packages', () => {
  for (const { dir, manifest } of packages) {
    it(`${manifest.name}: main, module and types name built files`, () => {
      for (const field of ['main', 'module', 'types'] as const) {
        expect(existsSync(join(dir, manifest[field])), `${field}: ${manifest[field]}`).toBe(true);
      }
    });

    for (const [entry, conditions] of Object.entries(manifest.exports)) {
      if (typeof conditions === 'string') continue;
      const specifier = `${manifest.name}${entry.slice(1)}`;
      it(`${specifier}: loads with ${Object.keys(conditions).join(' and ')}, the same names`, async () => {
        const loaded = await Promise.all(
          Object.keys(conditions).map((format) => exportedNames(specifier, format as 'require' | 'import')),
        );
        expect(loaded[0]!.length).toBeGreaterThan(0);
        for (const names of loaded) expect(names).toEqual(loaded[0]);
      });

      if (!('require' in conditions)) continue;
      it(`${specifier}: has types under TypeScript's node10 resolution (module: commonjs)`, () => {
        expect(node10Diagnostics(specifier)).toEqual([]);
      });
    }
  }
});

describe('an app that loads both builds', () => {
  // A CommonJS dependency (a Nest app, a bundled Next.js `instrumentation.ts`) and the app's own ESM
  // code each load their copy of core: a shutdown through one must still end the other's streams.
  it('shares the process-wide group and the servers marked closing between the ESM and CommonJS copies', async () => {
    const script = `
      import { createRequire } from 'node:module';
      import { createServer } from 'node:http';
      import * as core from '@rxsse/core';
      import * as node from '@rxsse/node';
      const require = createRequire(process.cwd() + '/');
      // A source that never ends, without rxjs.
      const quiet = () => ({ [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => {}) }) });
      const coreCjs = require('@rxsse/core');
      const nodeCjs = require('@rxsse/node');
      let ended = false;
      const sink = {
        http2: false, signal: new AbortController().signal, open() {}, write: () => true,
        end() { ended = true; }, destroy() {}, onDrain() {},
      };
      coreCjs.streamEvents(quiet(), sink, coreCjs.resolveStreamOptions({ heartbeat: false }));
      const seen = [core.openStreams.size, core.allStreams.size];
      await core.openStreams.close();
      let produced = false;
      const options = coreCjs.resolveStreamOptions({ heartbeat: false });
      const server = createServer((req, res) => {
        void nodeCjs.openEventStream(req, res, () => ((produced = true), quiet()), options);
      });
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      node.markServerClosing(server);
      const response = await fetch('http://127.0.0.1:' + server.address().port + '/');
      server.closeAllConnections();
      server.close();
      console.log(JSON.stringify({ seen, ended, produced, connection: response.headers.get('connection') }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app });
    expect(JSON.parse(stdout)).toEqual({ seen: [1, 1], ended: true, produced: false, connection: 'close' });
  });

  it("reads the marks of one copy's sources in the other's streams", async () => {
    const script = `
      import { createRequire } from 'node:module';
      import * as core from '@rxsse/core';
      const coreCjs = createRequire(process.cwd() + '/')('@rxsse/core');
      const marks = ['SOURCE_HEADERS', 'SOURCE_GAP_EVENT', 'SUBSCRIBER_GAP_EVENT', 'SUBSCRIBER_DEMAND',
        'SOURCE_OPENS_FIRST', 'SOURCE_RELEASE'];
      const apart = marks.filter((name) => typeof core[name] !== 'symbol' || core[name] !== coreCjs[name]);
      // A source the ESM copy's route marked with a header of its own, streamed by the CommonJS copy.
      const source = {
        [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }),
        [core.SOURCE_HEADERS]: { 'X-Copy': 'esm' },
      };
      let headers;
      const sink = {
        http2: false, signal: new AbortController().signal, open(given) { headers = given; }, write: () => true,
        end() {}, destroy() {}, onDrain() {},
      };
      coreCjs.streamEvents(source, sink, coreCjs.resolveStreamOptions({ heartbeat: false }));
      console.log(JSON.stringify({ apart, headers }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app });
    expect(JSON.parse(stdout)).toMatchObject({ apart: [], headers: { 'x-copy': 'esm' } });
  });
});
