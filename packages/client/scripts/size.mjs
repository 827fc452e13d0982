// The client's size in a browser bundle: src minified into one ES module with rxjs left out, then
// gzipped. Prints the sizes and the bundle's imports; `--json` prints them as JSON.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'tsdown';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = mkdtempSync(join(tmpdir(), 'rxsse-client-size-'));
try {
  await build({
    config: false,
    cwd: root,
    entry: [join(root, 'src/index.ts')],
    format: 'esm',
    platform: 'browser',
    minify: true,
    dts: false,
    external: ['rxjs'],
    outDir,
    logLevel: 'silent',
  });
  const [file] = readdirSync(outDir).filter((name) => name.endsWith('.js') || name.endsWith('.mjs'));
  const code = readFileSync(join(outDir, file), 'utf8');
  const result = {
    minified: Buffer.byteLength(code),
    gzipped: gzipSync(code, { level: 9 }).length,
    // Static and dynamic imports, and require(): anything the bundle would load besides itself.
    imports: [
      ...new Set(
        [...code.matchAll(/\b(?:from|import|require)\s*\(?\s*["']([^"']+)["']/g)].map((match) => match[1]),
      ),
    ],
  };
  if (process.argv.includes('--json')) console.log(JSON.stringify(result));
  else
    console.log(
      `@rxsse/client: ${result.minified} B minified, ${result.gzipped} B min+gz (rxjs excluded); imports ${result.imports.join(', ')}`,
    );
} finally {
  rmSync(outDir, { recursive: true, force: true });
}
