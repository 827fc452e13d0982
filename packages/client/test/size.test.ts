// The size budget: at most 4 KB minified and gzipped in a browser bundle, rxjs excluded; and the
// bundle imports nothing but rxjs (no node:* modules). Printed on every run, CI included. The size
// the READMEs state is the size it has, within a tenth.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const script = fileURLToPath(new URL('../scripts/size.mjs', import.meta.url));

it('fits in 4 KB min+gz without rxjs, and imports only rxjs', () => {
  const result = JSON.parse(execFileSync(process.execPath, [script, '--json'], { encoding: 'utf8' })) as {
    minified: number;
    gzipped: number;
    imports: string[];
  };
  console.log(`@rxsse/client: ${result.minified} B minified, ${result.gzipped} B min+gz (rxjs excluded)`);
  expect(result.gzipped).toBeLessThanOrEqual(4096);
  expect(result.imports).toEqual(['rxjs']);
  for (const readme of ['../../../README.md', '../README.md']) {
    const text = readFileSync(new URL(readme, import.meta.url), 'utf8');
    const stated = [...text.matchAll(/about (\d+(?:\.\d+)?) KB min/gi)].map((match) => Number(match[1]));
    expect(stated, readme).toHaveLength(1);
    expect(
      Math.abs(stated[0]! * 1024 - result.gzipped),
      `${readme}: about ${stated[0]} KB`,
    ).toBeLessThanOrEqual(result.gzipped / 10);
  }
});
