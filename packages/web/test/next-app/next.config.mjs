import { fileURLToPath } from 'node:url';

// The routes import the package's sources and the suite's routes from outside this directory.
const root = fileURLToPath(new URL('../../../..', import.meta.url));

export default {
  turbopack: { root },
  outputFileTracingRoot: root,
};
