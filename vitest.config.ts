import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run against source: each @rxsse/* import resolves to the package's src/index.ts, and a
// subpath export (`@rxsse/core/channel`) to its folder's index.ts.
const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));
const packages = readdirSync(packagesDir);
const alias = [
  { find: /^@rxsse\/([^/]+)$/, replacement: `${packagesDir}$1/src/index.ts` },
  { find: /^@rxsse\/([^/]+)\/([^/]+)$/, replacement: `${packagesDir}$1/src/$2/index.ts` },
];

const nest11Dir = `${packagesDir}nestjs/test/nest11/node_modules/@nestjs/`;
const nest11 = Object.fromEntries(
  ['common', 'core', 'platform-express', 'platform-fastify', 'testing', 'throttler', 'cache-manager'].map(
    (name) => [`@nestjs/${name}`, `${nest11Dir}${name}`],
  ),
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
      // @rxsse/nestjs again on NestJS 11: the package itself tests on 12; this run resolves
      // @nestjs/* (in its sources and tests) to the NestJS 11 install beside its tests.
      {
        extends: true as const,
        resolve: {
          alias: [...alias, ...Object.entries(nest11).map(([find, replacement]) => ({ find, replacement }))],
        },
        test: {
          name: 'nestjs-11',
          root: `${packagesDir}nestjs`,
          include: ['test/**/*.test.ts'],
          env: { RXSSE_NEST_MAJOR: '11' },
        },
      },
      // The packed packages, installed outside the workspace as a user installs them.
      {
        extends: true as const,
        test: { name: 'install', root: fileURLToPath(new URL('./test/install/', import.meta.url)) },
      },
      // The repository's own scripts (the lint checks).
      {
        extends: true as const,
        test: { name: 'scripts', root: fileURLToPath(new URL('./test/scripts/', import.meta.url)) },
      },
      // The TypeScript blocks of the READMEs and docs/, compiled against the packages' sources.
      {
        extends: true as const,
        test: { name: 'docs', root: fileURLToPath(new URL('./test/docs/', import.meta.url)) },
      },
      // The Node examples, run as users run them (`node server.mjs`, on the built packages).
      {
        extends: true as const,
        test: { name: 'examples', root: fileURLToPath(new URL('./test/examples/', import.meta.url)) },
      },
    ],
  },
});
