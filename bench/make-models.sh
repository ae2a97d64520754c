#!/usr/bin/env bash
# Generate the benchmark models into bench/models/ (git-ignored; never commit them).
# Usage: bench/make-models.sh [a] [b] [c] [--tiny]     (default: a)
#   a = bert_base.onnx  (~440 MB, single file)
#   b = gpt2_small.onnx (GPT-2 small, single file)
#   c = llama_big.onnx + .data (~2.6 GB, external data)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
GEN="${MAKE_MODELS:-/work/shared/bench/make_models.py}"
mkdir -p "$ROOT/bench/models"
if [ "$#" -eq 0 ]; then set -- a; fi
exec "$PY" "$GEN" "$ROOT/bench/models" "$@"
