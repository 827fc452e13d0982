import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { check } from '../../scripts/check-imports.mjs';

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

/** A workspace of `files` (path -> text); each package gets a manifest exporting `.` and `./extra`. */
function workspace(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'rxsse-imports-'));
  roots.push(root);
  for (const name of ['a', 'b']) {
    mkdirSync(join(root, 'packages', name), { recursive: true });
    writeFileSync(
      join(root, 'packages', name, 'package.json'),
      JSON.stringify({ name: `@rxsse/${name}`, exports: { '.': './x', './extra': './y' } }),
    );
  }
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('scripts/check-imports.mjs (part of lint)', () => {
  it('passes a clean graph', () => {
    const root = workspace({
      'packages/a/src/index.ts': "export { x } from './x.js';\n",
      'packages/a/src/x.ts': 'export const x = 1;\n',
      'packages/b/src/index.ts':
        "import { x } from '@rxsse/a';\nimport '@rxsse/a/extra';\nexport const y = x;\n",
      'packages/b/test/y.test.ts': "import '../../../test/support/h.js';\n",
      'test/support/h.ts': 'export {};\n',
    });
    expect(check(root)).toEqual([]);
  });

  it('fails on an import circle, type-only imports included', () => {
    const root = workspace({
      'packages/a/src/stream.ts': "import type { Options } from './options.js';\nexport class Stream {}\n",
      'packages/a/src/options.ts':
        "import type { Group } from './group.js';\nexport type Options = { g: Group };\n",
      'packages/a/src/group.ts':
        "import type { Stream } from './stream.js';\nexport type Group = Set<Stream>;\n",
    });
    const problems: string[] = check(root);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^import circle: /);
    for (const file of ['stream', 'options', 'group'])
      expect(problems[0]).toContain(`packages/a/src/${file}.ts`);
  });

  it('fails on an import circle between packages, through their public entries', () => {
    const root = workspace({
      'packages/a/src/index.ts': "import type { Y } from '@rxsse/b';\nexport type X = { y: Y };\n",
      'packages/b/src/index.ts': "export { y } from './y.js';\nexport type Y = number;\n",
      'packages/b/src/y.ts': "import type { X } from '@rxsse/a';\nexport const y = (x: X) => x;\n",
    });
    const problems: string[] = check(root);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^import circle: /);
    for (const file of ['packages/a/src/index.ts', 'packages/b/src/y.ts'])
      expect(problems[0]).toContain(file);
  });

  it('reads side-effect imports too', () => {
    const root = workspace({
      'packages/a/src/x.ts': "import './y.js';\nexport const x = 1;\n",
      'packages/a/src/y.ts': "import './x.js';\n",
      'packages/b/src/index.ts': "import '@rxsse/a/src/x';\n",
    });
    const problems: string[] = check(root).sort();
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^import circle: .*packages\/a\/src\/x\.ts/);
    expect(problems[1]).toBe(
      'packages/b/src/index.ts: imports @rxsse/a/src/x, which @rxsse/a does not export',
    );
  });

  it("fails on a package reaching into another's files or unexported subpaths", () => {
    const root = workspace({
      'packages/a/src/x.ts': 'export const x = 1;\n',
      'packages/b/src/index.ts': "import { x } from '../../a/src/x.js';\nexport { x };\n",
      'packages/b/src/deep.ts': "export { x } from '@rxsse/a/src/x';\n",
      'packages/b/test/t.test.ts': "import { x } from '../../a/src/x.js';\n",
    });
    expect(check(root).sort()).toEqual([
      'packages/b/src/deep.ts: imports @rxsse/a/src/x, which @rxsse/a does not export',
      "packages/b/src/index.ts: imports ../../a/src/x.js, outside its package's sources",
      'packages/b/test/t.test.ts: imports ../../a/src/x.js, inside another package; import its public entry',
    ]);
  });
});
