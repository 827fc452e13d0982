// The size budget: at most 4 KB minified and gzipped in a browser bundle, rxjs excluded; and the
// bundle imports nothing but rxjs (no node:* modules). Printed on every run, CI included.
import { execFileSync } from 'node:child_process';
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
});
