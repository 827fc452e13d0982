import { fileURLToPath } from 'node:url';

// The routes import the package's sources and the suite's routes from outside this directory.
const root = fileURLToPath(new URL('../../../..', import.meta.url));

export default {
  turbopack: { root },
  outputFileTracingRoot: root,
  // `next build` checks the routes against Next's own types; the second Node of `npm test`
  // (scripts/test.mjs) checked them already on the first.
  typescript: { ignoreBuildErrors: process.env.RXSSE_TYPES_CHECKED === '1' },
};
