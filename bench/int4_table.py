#!/usr/bin/env python3
"""Issue 23's table: every int4 method beside ONNX Runtime's MatMulNBitsQuantizer (round to nearest,
symmetric and asymmetric), on the two char LMs (fixtures/charlm, and fixtures/codelm, which no setting
was chosen on) at blocks 32 and 128, the digits CNN and BERT-base.

Ours runs as the CLI (`node bin/onnxpress compress MODEL -o OUT --quantize int4:...`), ORT's as
bench/peer_ort_quantize.py (its own process); every output is then scored here in ONNX Runtime against
the float32 model. On the LMs every method quantizes the MatMul weights only (`ops=MatMul`), as ORT's
quantizer does, so that symmetric rows hold the same bytes as ORT's symmetric one (asymmetric rows, ours
and ORT's, add the zero points); calibrated methods read fixtures/M/calibration (training-text windows),
never an evaluation window.

Scores: LMs: perplexity and logit RMS error on the fixture's test windows and on 64 held-out windows
(as bench/int4_search.py makes them; `--heldout all`: every window of the held-out tail; `--fresh N`: also N
windows of text from outside their corpora, int4_search.fresh_text); digits: top-1 and logit RMS on test_data_set_0 (360 images), its
Gemm and Conv weights (no MatMul: ORT's quantizer leaves it as it is); BERT-base: output cosine
(last_hidden_state, random token ids, seed 1, [2, 128]), MatMul weights only as ORT's.

  .venv/bin/python bench/int4_table.py [--models charlm,codelm,digits,bert] [--heldout 64|all] [--fresh N] [--methods 'gptq;awq'] [--out bench/out/int4-table] > rows.json
  .venv/bin/python bench/int4_table.py --markdown rows.json
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "bench"))
from int4_search import fresh_windows, heldout_count, lm_windows, read_pb  # noqa: E402

PY = sys.executable

LM_METHODS = [
    ("default", "int4:block={b},ops=MatMul"),
    ("RTN (search=none)", "int4:block={b},ops=MatMul,search=none"),
    ("hqq", "int4:block={b},ops=MatMul,search=hqq"),
    ("gptq", "int4:block={b},ops=MatMul,calibration={cal}"),
    ("awq", "int4:block={b},ops=MatMul,calibration={cal},awq=true,gptq=false"),
    ("awq+gptq", "int4:block={b},ops=MatMul,calibration={cal},awq=true"),
    ("asymmetric default", "int4:block={b},ops=MatMul,symmetric=false"),
    ("asymmetric RTN", "int4:block={b},ops=MatMul,symmetric=false,search=none"),
    ("mix=auto (≤ +10 % bytes)", "int4:block={b},ops=MatMul,mix=auto"),
    ("ORT RTN symmetric", "ort:--block {b} --symmetric"),
    ("ORT RTN asymmetric", "ort:--block {b} --asymmetric"),
]
OTHER_METHODS = [
    ("default", "int4:block={b}"),
    ("RTN (search=none)", "int4:block={b},search=none"),
    ("hqq", "int4:block={b},search=hqq"),
    ("asymmetric default", "int4:block={b},symmetric=false"),
    ("asymmetric RTN", "int4:block={b},symmetric=false,search=none"),
    ("ORT RTN symmetric", "ort:--block {b} --symmetric"),
    ("ORT RTN asymmetric", "ort:--block {b} --asymmetric"),
]


def make(model, spec, out):
    if spec.startswith("ort:"):
        cmd = [PY, os.path.join(ROOT, "bench", "peer_ort_quantize.py"), "nbits", model, out, "--quiet", *spec[4:].split()]
    else:
        cmd = ["node", os.path.join(ROOT, "bin", "onnxpress"), "compress", model, "-o", out, "--force", "--quantize", spec]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()[-400:]}")
    return os.path.getsize(out)


def session(path):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def lm_scores(sess, ref, ids, labels):
    lg = sess.run(None, {"input_ids": ids})[0].astype(np.float64)
    m = lg.max(-1, keepdims=True)
    nll = (np.log(np.exp(lg - m).sum(-1)) + m[..., 0]) - np.take_along_axis(lg, labels[..., None], -1)[..., 0]
    return float(np.exp(nll.mean())), float(np.sqrt(((lg - ref) ** 2).mean()))


def subjects(names, heldout=64, fresh=0):
    import make_fixtures as mf  # noqa: PLC0415 (bench/int4_search put fixtures/ on the path)
    for name in names:
        if name in ("charlm", "codelm"):
            model = os.path.join(ROOT, "fixtures", name, "model.onnx")
            text = mf.charlm_text if name == "charlm" else mf.codelm_text
            splits = {"test": lm_windows(name, text, "test"), "held-out": lm_windows(name, text, "heldout", heldout)}
            if fresh:
                splits["fresh"] = fresh_windows(name, fresh, splits["test"][0].shape[1])
            ref = session(model)
            refs = {k: ref.run(None, {"input_ids": v[0]})[0].astype(np.float64) for k, v in splits.items()}
            base = {k: lm_scores(ref, refs[k], *v)[0] for k, v in splits.items()}

            def score(path, splits=splits, refs=refs):
                s = session(path)
                return {k: lm_scores(s, refs[k], *v) for k, v in splits.items()}
            cal = os.path.join(ROOT, "fixtures", name, "calibration")
            yield name, model, (32, 128), LM_METHODS, cal, score, base
        elif name == "digits":
            model = os.path.join(ROOT, "fixtures", "digits", "model.onnx")
            x = read_pb(os.path.join(ROOT, "fixtures", "digits", "test_data_set_0", "input_0.pb"))
            y = np.load(os.path.join(ROOT, "fixtures", "digits", "labels_0.npy"))
            ref = session(model).run(None, {"input": x})[0]

            def score(path, x=x, y=y, ref=ref):
                lg = session(path).run(None, {"input": x})[0]
                return {"test": (float((lg.argmax(-1) == y).mean()), float(np.sqrt(((lg - ref) ** 2).mean())))}
            yield name, model, (32,), OTHER_METHODS, None, score, {"test": float((ref.argmax(-1) == y).mean())}
        elif name == "bert":
            model = os.path.join(ROOT, "bench", "models", "bert_base.onnx")
            if not os.path.exists(model):
                model = "/work/main/bench/models/bert_base.onnx"
            rng = np.random.default_rng(1)
            ids = rng.integers(1000, 29000, size=(2, 128)).astype(np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            ref = session(model).run(["last_hidden_state"], feeds)[0].ravel().astype(np.float64)

            def score(path, feeds=feeds, ref=ref):
                y = session(path).run(["last_hidden_state"], feeds)[0].ravel().astype(np.float64)
                return {"seed 1": (float(y @ ref / np.linalg.norm(y) / np.linalg.norm(ref)),)}
            # MatMul weights only, as ORT's quantizer: the same bytes (its embeddings stay float32 too).
            methods = [(label, spec if spec.startswith("ort:") else spec + ",ops=MatMul") for label, spec in OTHER_METHODS]
            yield name, model, (32,), methods, None, score, {}


def markdown(path):
    """The rows of a run (this script's stdout) as one Markdown table: two columns per LM split."""
    rows = json.load(open(path))
    splits = next((list(r["scores"]) for r in rows if r.get("model") in ("charlm", "codelm") and "scores" in r), ["test", "held-out"])
    head = "".join(f" {s}: perplexity (Δ) | {s}: logit RMS |" for s in splits)
    print("| model | block | method | bytes |" + head)
    print("|---|---:|---|---:|" + "---:|---:|" * len(splits))
    width = 2 * len(splits)
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | {r['block']} | {r['method']} | error: {r['error'][:80]} |" + " |" * width)
            continue
        cells = []
        for split, v in r["scores"].items():
            f = r["float"].get(split)
            if r["model"] in ("charlm", "codelm"):
                cells += [f"{v[0]:.4f} ({100 * (v[0] / f - 1):+.2f} %)", f"{v[1]:.4f}"]
            elif r["model"] == "digits":
                cells += [f"top-1 {v[0]:.4f} (float {f:.4f})", f"{v[1]:.4f}"]
            else:
                cells += [f"cosine {v[0]:.6f}", ""]
        cells += [""] * (width - len(cells))
        print(f"| {r['model']} | {r['block']} | {r['method']} | {r['bytes']:,} | " + " | ".join(cells) + " |")


def equal_bytes(names):
    """Symmetric and asymmetric defaults where the asymmetric file is no larger: its block twice the symmetric one."""
    rows = []
    for name, model, _, _, _, score, base in subjects(names):
        ops = "" if name == "digits" else ",ops=MatMul"
        for label, spec in [("symmetric default, block 32", f"int4:block=32{ops}"),
                            ("asymmetric default, block 64", f"int4:block=64,symmetric=false{ops}"),
                            ("symmetric default, block 64", f"int4:block=64{ops}"),
                            ("asymmetric default, block 128", f"int4:block=128,symmetric=false{ops}")]:
            out = os.path.join(ROOT, "bench", "out", f"int4-eq-{name}.onnx")
            size = make(model, spec, out)
            rows.append({"model": name, "block": int(spec.split("block=")[1].split(",")[0]), "method": label, "bytes": size,
                         "scores": score(out), "float": base})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            os.remove(out)
    print(json.dumps(rows))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--equal-bytes", help="models: symmetric against asymmetric at equal or fewer bytes, then stop")
    ap.add_argument("--markdown", help="a file of this script's output: print it as a Markdown table and stop")
    ap.add_argument("--models", default="charlm,codelm,digits,bert")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "int4-table"))
    ap.add_argument("--heldout", default="64", help="the LMs' held-out windows: a count, or 'all' (every window of the held-out tail)")
    ap.add_argument("--methods", help="only these methods (labels, separated by ;)")
    ap.add_argument("--fresh", type=int, default=0, help="LMs: also score up to N windows of text outside their corpora (int4_search.fresh_text)")
    a = ap.parse_args()
    if a.markdown:
        return markdown(a.markdown)
    if a.equal_bytes:
        return equal_bytes(a.equal_bytes.split(","))
    os.makedirs(a.out, exist_ok=True)
    rows = []
    heldout = heldout_count(a.heldout)
    wanted = a.methods.split(";") if a.methods else None
    for name, model, blocks, methods, cal, score, base in subjects(a.models.split(","), heldout, a.fresh):
        for b in blocks:
            for label, spec in methods:
                if wanted and label not in wanted:
                    continue
                out = os.path.join(a.out, f"{name}-b{b}-{len(rows)}.onnx")
                try:
                    size = make(model, spec.format(b=b, cal=cal), out)
                    rows.append({"model": name, "block": b, "method": label, "spec": spec.format(b=b, cal="CAL"), "bytes": size,
                                 "scores": score(out), "float": base})
                except RuntimeError as e:
                    rows.append({"model": name, "block": b, "method": label, "error": str(e)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                if os.path.exists(out):
                    os.remove(out)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
