#!/usr/bin/env bash
# Packs every published package as `npm run pack` does, and checks each tarball: publint (package.json
# and exports) and arethetypeswrong (types resolve for ESM and CJS consumers, TypeScript's classic
# node10 resolution included). Both run offline. An entry point its exports map offers to `import`
# only (@rxsse/core/testing) is checked as ESM only.
# That each entry point also loads at run time, in every format it offers, is test/install's job.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.tmp/packs"
node "$root/scripts/pack.mjs" --no-build --out "$out" >/dev/null
for tarball in "$out"/*.tgz; do
  echo "== $(basename "$tarball")"
  pnpm exec publint run --strict "$tarball"
  esm_only=$(tar -xzOf "$tarball" package/package.json | node -e '
    const { exports = {} } = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
    const entries = Object.entries(exports).filter(([, c]) => typeof c === "object" && c.import && !c.require);
    console.log(entries.map(([entry]) => entry).join(" "));
  ')
  if [ -z "$esm_only" ]; then
    pnpm exec attw "$tarball" --format ascii
  else
    # shellcheck disable=SC2086 # one argument per entry point
    pnpm exec attw "$tarball" --format ascii --exclude-entrypoints $esm_only
    # shellcheck disable=SC2086
    pnpm exec attw "$tarball" --profile esm-only --format ascii --entrypoints $esm_only
  fi
done
