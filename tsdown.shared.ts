import type { UserConfig } from 'tsdown';

/**
 * Every package builds the same way: ESM and CJS with types, fixed extensions. `entry` names the
 * subpath exports besides the main one (`{ channel: 'src/channel/index.ts' }` builds `dist/channel.*`).
 */
export function packageBuild(platform: 'node' | 'neutral', entry: Record<string, string> = {}): UserConfig {
  return {
    entry: { index: 'src/index.ts', ...entry },
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
