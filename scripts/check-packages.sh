#!/usr/bin/env bash
# Packs every published package and checks the tarball: publint (package.json and exports)
# and arethetypeswrong (types resolve for ESM and CJS consumers). Both run offline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.tmp/packs"
rm -rf "$out" && mkdir -p "$out"
for dir in "$root"/packages/*/; do
  name=$(node -p "require('$dir/package.json').name")
  (cd "$dir" && pnpm pack --pack-destination "$out" >/dev/null)
  tarball=$(ls -t "$out"/*.tgz | head -1)
  echo "== $name"
  pnpm exec publint run --strict "$tarball"
  pnpm exec attw --pack "$dir" --profile node16 --format ascii
done
