#!/usr/bin/env bash
# Packs every published package as `npm run pack` does, and checks each tarball: publint (package.json
# and exports) and arethetypeswrong (types resolve for ESM and CJS consumers). Both run offline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.tmp/packs"
node "$root/scripts/pack.mjs" --no-build --out "$out" >/dev/null
for tarball in "$out"/*.tgz; do
  echo "== $(basename "$tarball")"
  pnpm exec publint run --strict "$tarball"
  pnpm exec attw "$tarball" --profile node16 --format ascii
done
