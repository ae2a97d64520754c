#!/usr/bin/env bash
# Build onnxpress as of an earlier commit into bench/out/ref-<commit>/ (git-ignored), without
# touching the working tree or the git state (git archive + tsc), so that
# bench/roundtrip.py --onnxpress DIR (or --variant) measures a fixed build while the checkout changes.
# Usage: bench/build-ref.sh 5337bd3
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REV="$1"
DIR="$ROOT/bench/out/ref-$REV"
rm -rf "$DIR"; mkdir -p "$DIR"
git -C "$ROOT" archive "$REV" | tar -x -C "$DIR"
# Hard-linked copy of node_modules: survives an `npm ci` in the checkout during a run.
cp -al "$ROOT/node_modules" "$DIR/node_modules"
# npm run build compiles the WebAssembly kernels too (where the build has them), then tsc.
(cd "$DIR" && if grep -q build:wasm package.json; then npm run build --silent; else npx tsc -p .; fi)
git -C "$ROOT" rev-parse "$REV" > "$DIR/COMMIT"
echo "$DIR"
