// Every TypeScript block of the READMEs and docs/ compiles against the packages' public API (the
// `@rxsse/*` names, resolved to their sources), so a renamed option or export fails here, not in a
// user's editor. A block that uses names it does not declare (`app`, `events$`) is marked
// `<!-- snippet: partial -->` on the line before it: those names are allowed (an rxsse export must
// still be imported), nothing else is. A block whose first line names its file (`// events.ts`) is
// the module `./events.js` for the others.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const packageDirs = readdirSync(join(root, 'packages')).map((name) => join(root, 'packages', name));
const MARKDOWN = [
  'README.md',
  ...packageDirs.map((dir) => relative(root, join(dir, 'README.md'))),
  ...readdirSync(join(root, 'docs')).map((name) => `docs/${name}`),
].filter((path) => path.endsWith('.md') && existsSync(join(root, path)));

/** What a partial block may leave undeclared: its free names, and the parameters typed by them. */
const PARTIAL_ALLOWED = new Set([
  2304, // Cannot find name 'app'.
  2552, // Cannot find name 'app'. Did you mean ...?
  7006, // Parameter 'req' implicitly has an 'any' type (a callback of an undeclared name).
  7031, // Binding element implicitly has an 'any' type.
  18004, // No value exists in scope for the shorthand property 'key'.
]);

interface Snippet {
  /** `README.md:12`, where the block opens. */
  where: string;
  file: string;
  text: string;
  partial: boolean;
  /** `events.ts` for a block that opens with `// events.ts`. */
  module?: string;
}

function snippets(): Snippet[] {
  const found: Snippet[] = [];
  for (const markdown of MARKDOWN) {
    const lines = readFileSync(join(root, markdown), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      // A block may be indented (inside a list item): its fence and lines carry the same indent.
      const indent = /^(\s*)```(?:ts|typescript)\s*$/.exec(lines[i]!)?.[1];
      if (indent === undefined) continue;
      const end = lines.indexOf(`${indent}\`\`\``, i + 1);
      const partial = /^\s*<!--\s*snippet:\s*partial\s*-->$/.test(lines[i - 1] ?? '');
      const file = join(root, dirname(markdown), `${markdown.replace(/\W/g, '_')}_${i + 1}.mts`);
      const body = lines.slice(i + 1, end).map((line) => line.slice(indent.length));
      const text = `${body.join('\n')}\nexport {};\n`;
      const module = /^\/\/ (\w+\.ts)\b/.exec(body[0] ?? '')?.[1];
      found.push({ where: `${markdown}:${i + 1}`, file, text, partial, ...(module && { module }) });
      i = end;
    }
  }
  return found;
}

function check(blocks: Snippet[]): Map<string, string[]> {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2024.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    types: ['node'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    esModuleInterop: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    paths: {
      '@rxsse/core/*': [join(root, 'packages/core/src/*/index.ts')],
      '@rxsse/*': [join(root, 'packages/*/src/index.ts')],
    },
  };
  const byFile = new Map(blocks.map((block) => [block.file, block]));
  const modules = new Map(
    blocks
      .filter((block) => block.module)
      .map((block) => [`./${block.module!.replace(/\.ts$/, '.js')}`, block.file]),
  );
  const host = ts.createCompilerHost(options);
  const cache = ts.createModuleResolutionCache(root, (name) => name, options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (path) => byFile.has(path) || fileExists.call(host, path);
  host.readFile = (path) => byFile.get(path)?.text ?? readFile.call(host, path);
  host.getSourceFile = (path, language, ...rest) => {
    const block = byFile.get(path);
    return block
      ? ts.createSourceFile(path, block.text, language)
      : getSourceFile.call(host, path, language, ...rest);
  };
  // A framework a block imports is a devDependency of the package that adapts it: resolve from the
  // block's own folder first, then from each package's.
  host.resolveModuleNameLiterals = (literals, containingFile, redirect, compilerOptions, sourceFile) =>
    literals.map((literal) => {
      const resolve = (from: string) =>
        ts.resolveModuleName(
          literal.text,
          from,
          compilerOptions,
          host,
          cache,
          redirect,
          ts.getModeForUsageLocation(sourceFile, literal, compilerOptions),
        );
      if (!byFile.has(containingFile)) return resolve(containingFile);
      const named = modules.get(literal.text);
      if (named) return { resolvedModule: { resolvedFileName: named, extension: ts.Extension.Mts } };
      for (const from of [containingFile, ...packageDirs.map((dir) => join(dir, 'package.json'))]) {
        const resolved = resolve(from);
        // A package found without its types (express beside @rxsse/redis) is looked for further on.
        if (resolved.resolvedModule && !/\.[cm]?jsx?$/.test(resolved.resolvedModule.extension)) {
          return resolved;
        }
      }
      return resolve(containingFile);
    });
  const entryPoints = [
    ...packageDirs.map((dir) => join(dir, 'src/index.ts')),
    ...['channel', 'testing'].map((room) => join(root, 'packages/core/src', room, 'index.ts')),
  ];
  const program = ts.createProgram([...blocks.map((block) => block.file), ...entryPoints], options, host);
  // A partial block leaves the reader's own names undeclared, never rxsse's: those it imports.
  const checker = program.getTypeChecker();
  const rxsseNames = new Set(
    entryPoints.flatMap((path) => {
      const module = checker.getSymbolAtLocation(program.getSourceFile(path)!);
      return module ? checker.getExportsOfModule(module).map((symbol) => symbol.name) : [];
    }),
  );
  const allowed = (diagnostic: ts.Diagnostic, source: ts.SourceFile) => {
    if (!PARTIAL_ALLOWED.has(diagnostic.code)) return false;
    const start = diagnostic.start ?? 0;
    return !rxsseNames.has(source.text.slice(start, start + (diagnostic.length ?? 0)));
  };
  const problems = new Map<string, string[]>();
  for (const block of blocks) {
    const source = program.getSourceFile(block.file)!;
    const diagnostics = [
      ...program.getSyntacticDiagnostics(source),
      ...program.getSemanticDiagnostics(source),
    ];
    problems.set(
      block.where,
      diagnostics
        .filter((diagnostic) => !(block.partial && allowed(diagnostic, source)))
        .map((diagnostic) => {
          const line = source.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line;
          return `line ${line + 1}: TS${diagnostic.code} ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
        }),
    );
  }
  return problems;
}

describe('the TypeScript blocks of the READMEs and docs/', () => {
  const blocks = snippets();
  const problems = check(blocks);

  it('are found', () => {
    expect(blocks.length).toBeGreaterThan(20);
  });

  for (const block of blocks) {
    it(`${block.where} compiles${block.partial ? ' (partial)' : ''}`, () => {
      expect(problems.get(block.where)).toEqual([]);
    });
  }
});
