import { defineConfig } from 'tsdown';
import { packageBuild } from '../../tsdown.shared.ts';

const build = packageBuild('neutral', {
  channel: 'src/channel/index.ts',
  testing: 'src/testing/index.ts',
});

export default defineConfig({
  ...build,
  // `testing` is ESM only: its contract suite runs on vitest, which refuses to be require()d.
  format: { esm: {}, cjs: { entry: { index: 'src/index.ts', channel: 'src/channel/index.ts' } } },
});
