#!/usr/bin/env bash
# Generate the benchmark models into bench/models/ (git-ignored; never commit them).
# Usage: bench/make-models.sh [a] [b] [c] [--tiny]     (default: a)
#   a = bert_base.onnx  (~440 MB, single file)
#   b = gpt2_small.onnx (GPT-2 small, single file)
#   c = llama_big.onnx + .data (~2.6 GB, external data)
# OPSET=13 bench/make-models.sh a   exports at that opset instead of the generator's 17, into
# bench/models/opset13/ (a patched copy of the generator; for the convert benchmark).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
GEN="${MAKE_MODELS:-/work/shared/bench/make_models.py}"
OUTDIR="$ROOT/bench/models"
if [ "$#" -eq 0 ]; then set -- a; fi
if [ -n "${OPSET:-}" ]; then
  grep -q 'opset_version=17' "$GEN" || { echo "make-models.sh: no opset_version=17 in $GEN to patch" >&2; exit 2; }
  OUTDIR="$OUTDIR/opset$OPSET"
  PATCHED="$(mktemp --suffix=.py)"
  trap 'rm -f "$PATCHED"' EXIT
  sed "s/opset_version=17/opset_version=$OPSET/" "$GEN" > "$PATCHED"
  GEN="$PATCHED"
fi
mkdir -p "$OUTDIR"
"$PY" "$GEN" "$OUTDIR" "$@"
