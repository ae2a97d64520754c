#!/usr/bin/env python3
"""How far apart two 4-bit files' perplexities are, against the noise of the windows they are measured
on (issue 23): the default search and round-to-nearest (`search=none`, which ONNX Runtime's
MatMulNBitsQuantizer matches) on the char LMs, paired bootstrap over windows (a window's tokens are
not independent: windows are resampled whole, 10,000 times, seed 0).

  .venv/bin/python bench/int4_noise.py [--models charlm,codelm] [--blocks 32,128] [--heldout 64|all] [--fresh N]

For each model, block and split it prints the perplexity ratio default / round-to-nearest and its 95 %
interval; an interval that holds 1 means the two files' perplexities are not told apart by these windows.

--fresh N adds a split of up to N windows of text neither LM was trained, tested or tuned on
(bench/int4_search.py's fresh_text says which).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "bench"))
from int4_search import fresh_windows, heldout_count, lm_windows  # noqa: E402


def nll(path, ids, labels):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    lg = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids})[0].astype(np.float64)
    m = lg.max(-1, keepdims=True)
    lse = np.log(np.exp(lg - m).sum(-1)) + m[..., 0]
    return lse - np.take_along_axis(lg, labels[..., None], -1)[..., 0]  # [windows, tokens]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="charlm,codelm")
    ap.add_argument("--blocks", default="32,128")
    ap.add_argument("--heldout", default="64", help="held-out windows: a count, or 'all' (every window of the held-out tail)")
    ap.add_argument("--fresh", type=int, default=0, help="windows of text from outside the LMs' corpora (see above; 0: none)")
    a = ap.parse_args()
    import make_fixtures as mf  # noqa: PLC0415

    rng = np.random.default_rng(0)
    out = tempfile.mkdtemp()
    print("| model | block | split | windows | ppl default | ppl RTN | ratio | 95 % interval |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for name in a.models.split(","):
        text = mf.charlm_text if name == "charlm" else mf.codelm_text
        splits = {"test": lm_windows(name, text, "test"), "held-out": lm_windows(name, text, "heldout", heldout_count(a.heldout))}
        if a.fresh:
            splits["fresh"] = fresh_windows(name, a.fresh, splits["test"][0].shape[1])
        model = os.path.join(ROOT, "fixtures", name, "model.onnx")
        for block in [int(b) for b in a.blocks.split(",")]:
            files = {}
            for label, extra in (("default", ""), ("rtn", ",search=none")):
                files[label] = os.path.join(out, f"{name}-{block}-{label}.onnx")
                spec = f"int4:block={block},ops=MatMul{extra}"
                subprocess.run(["node", os.path.join(ROOT, "bin", "onnxpress"), "compress", model, "-o", files[label], "--force", "--quantize", spec],
                               check=True, capture_output=True)
            for split, (ids, labels) in splits.items():
                d, r = nll(files["default"], ids, labels), nll(files["rtn"], ids, labels)
                w = d.shape[0]
                ratio = np.exp(d.mean() - r.mean())
                picks = rng.integers(0, w, size=(10000, w))
                diffs = d.mean(1)[picks].mean(1) - r.mean(1)[picks].mean(1)
                lo, hi = np.exp(np.percentile(diffs, [2.5, 97.5]))
                print(f"| {name} | {block} | {split} | {w} | {np.exp(d.mean()):.4f} | {np.exp(r.mean()):.4f} | {ratio:.4f} | {lo:.4f} – {hi:.4f} |")


if __name__ == "__main__":
    main()
