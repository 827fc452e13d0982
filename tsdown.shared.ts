import type { UserConfig } from 'tsdown';

/** Every package builds the same way: ESM and CJS with types, one entry, fixed extensions. */
export function packageBuild(platform: 'node' | 'neutral'): UserConfig {
  return {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    platform,
    fixedExtension: true,
    // A package with a default export besides named ones (the Fastify plugin) keeps both in CJS.
    outputOptions: { exports: 'named' },
    // CJS stays on purpose: CommonJS apps require() these packages, and the install test runs one.
    checks: { legacyCjs: false },
  };
}
