// `node --import ./scale/use-packages.mjs ...` resolves @rxsse/core, @rxsse/node and
// @rxsse/express to the builds under RXSSE_PACKAGES (a `packages/` folder, say of a copy of the
// repository with scale/packages-fix.patch applied and built), so the scale suite can measure a
// change without touching this checkout:
//
//   RXSSE_PACKAGES=/tmp/copy/packages SCALE_SERVER_ARGS="--import ./scale/use-packages.mjs" \
//     node run.mjs scale

import { register } from 'node:module';
import { pathToFileURL } from 'node:url';

const root = process.env.RXSSE_PACKAGES;
if (root) {
  const map = Object.fromEntries(
    ['core', 'node', 'express'].map((name) => [
      `@rxsse/${name}`,
      pathToFileURL(`${root}/${name}/dist/index.mjs`).href,
    ]),
  );
  const hooks = `const map = ${JSON.stringify(map)};
export async function resolve(specifier, context, next) {
  if (map[specifier]) return { url: map[specifier], shortCircuit: true, format: 'module' };
  return next(specifier, context);
}`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
}
