#!/usr/bin/env bash
# CPU profile of our unchanged round trip, under the same conditions as bench/roundtrip.py
# (model warm in page cache, output absent, sync'ed). Writes bench/out/prof/*.cpuprofile and
# prints the top self-time functions.  Usage: bench/profile-ours.sh bench/models/bert_base.onnx [N]
# ONNXPRESS=bench/out/ref-<commit> profiles a pinned build (bench/build-ref.sh) instead of this checkout.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL="$(realpath "$1")"
OUT="$ROOT/bench/out/tmp/profile.onnx"
PROF="$ROOT/bench/out/prof"
mkdir -p "$PROF" "$ROOT/bench/out/tmp"
cat "$MODEL" > /dev/null
rm -f "$OUT"; sync
rm -f "$PROF"/*.cpuprofile
TREE="$(realpath "${ONNXPRESS:-$ROOT}")"
echo "profiling $TREE/bin/onnxpress ($(cat "$TREE/COMMIT" 2>/dev/null || git -C "$TREE" rev-parse HEAD))"
node --cpu-prof --cpu-prof-interval 200 --cpu-prof-dir "$PROF" "$TREE/bin/onnxpress" compress "$MODEL" -o "$OUT" --force
rm -f "$OUT"; sync
node "$ROOT/bench/cpuprofile-top.cjs" "$PROF"/*.cpuprofile "${2:-12}"
