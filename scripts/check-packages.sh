#!/usr/bin/env bash
# Packs every published package as `npm run pack` does, and checks each tarball: publint (package.json
# and exports) and arethetypeswrong (types resolve for ESM and CJS consumers, TypeScript's classic
# node10 resolution included). Both run offline. An entry point its exports map offers to `import`
# only (@rxsse/core/testing) is checked as ESM only.
# That each entry point also loads at run time, in every format it offers, is test/install's job.
# The tarballs are checked side by side, as many at once as there are cores; each one's output is
# printed whole, in order, and the script fails if any check of any tarball failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.tmp/packs"
logs="$root/.tmp/packs-checks"
# The workspace's own binaries, as `pnpm exec` finds them, without a pnpm start per call.
bin="$root/node_modules/.bin"
node "$root/scripts/pack.mjs" --no-build --out "$out" >/dev/null

check() {
  local tarball=$1 esm_only
  echo "== $(basename "$tarball")"
  "$bin/publint" run --strict "$tarball"
  esm_only=$(tar -xzOf "$tarball" package/package.json | node -e '
    const { exports = {} } = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
    const entries = Object.entries(exports).filter(([, c]) => typeof c === "object" && c.import && !c.require);
    console.log(entries.map(([entry]) => entry).join(" "));
  ')
  if [ -z "$esm_only" ]; then
    "$bin/attw" "$tarball" --format ascii
  else
    # shellcheck disable=SC2086 # one argument per entry point
    "$bin/attw" "$tarball" --format ascii --exclude-entrypoints $esm_only
    # shellcheck disable=SC2086
    "$bin/attw" "$tarball" --profile esm-only --format ascii --entrypoints $esm_only
  fi
}

rm -rf "$logs"
mkdir -p "$logs"
tarballs=("$out"/*.tgz)
jobs=$(nproc)
pids=()
for i in "${!tarballs[@]}"; do
  # A subshell per tarball: errexit stops its checks at the first failure, as before.
  (check "${tarballs[$i]}") >"$logs/$i.log" 2>&1 &
  pids[i]=$!
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
failed=0
for i in "${!tarballs[@]}"; do
  status=0
  wait "${pids[$i]}" || status=$?
  cat "$logs/$i.log"
  if [ "$status" -ne 0 ]; then
    echo "check-packages: $(basename "${tarballs[$i]}") failed with status $status"
    failed=1
  fi
done
exit "$failed"
