import { defineConfig } from 'tsdown';
import { packageBuild } from '../../tsdown.shared.ts';

export default defineConfig(
  packageBuild('neutral', {
    channel: 'src/channel/index.ts',
    testing: 'src/testing/index.ts',
  }),
);
