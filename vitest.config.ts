import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run against source: each @rxsse/* import resolves to the package's src/index.ts.
const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));
const packages = readdirSync(packagesDir);
const alias = Object.fromEntries(
  packages.map((name) => [`@rxsse/${name}`, `${packagesDir}${name}/src/index.ts`]),
);

export default defineConfig({
  resolve: { alias },
  test: {
    // Real servers and a real browser share two cores: keep parallelism modest.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      ...packages.map((name) => ({
        extends: true as const,
        test: { name, root: `${packagesDir}${name}`, include: ['src/**/*.test.ts', 'test/**/*.test.ts'] },
      })),
      // The packed packages, installed outside the workspace as a user installs them.
      {
        extends: true as const,
        test: { name: 'install', root: fileURLToPath(new URL('./test/install/', import.meta.url)) },
      },
    ],
  },
});
