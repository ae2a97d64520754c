#!/usr/bin/env python3
"""Which per-block measure should int4's data-free search minimize? A numpy model of the search, run
on several models, each scored on two data splits: one to choose on, one to report on.

Each weight the int4 pass takes (>= 256 elements, read by MatMul, Gemm, Conv or Gather) is quantized
in blocks along its reduction axis and written back dequantized (fake quantization; the pass's real
outputs are measured with the CLI in bench/int4-table.mjs). Per block, every candidate scale of a set
is tried and the one with the smallest error on the measure is kept; round-to-nearest (RTN, the
scale `search=none` uses) is always the first candidate, so a block never ends worse than RTN on the
measure (ties keep RTN).

Candidate sets (symmetric, codes -8..7):
  full:  the block's extreme on code -8 (RTN) times 1, 0.95 ... 0.65    (8)
  seven: RTN, then max|x|/7 times 1, 0.95 ... 0.65 (today's default + RTN) (9)
  both:  full and max|x|/7 times each ratio                                (16)
  seven8: RTN, then max|x|/7 times 1 ... 0.70 (8: two passes of the four-lane kernel)
  old:   max|x|/7 times each ratio, without RTN (the search before this work) (8)
Asymmetric (codes 0..15, a zero point): min/max (RTN) times each ratio (8).
Measures per block: mse sum d^2; absw sum |w| d^2; w2 sum w^2 d^2; max max |d|.

Scores: LMs: perplexity (from the labels) and logit RMS error against float32; digits: top-1 and
logit RMS; BERT-base: cosine of last_hidden_state (random token ids, two seeds).
Splits: choose = charlm test_data_set_0 (8 windows), digits test_data_set_1, BERT seed 0;
        report = charlm held-out windows (64, as bench/charlm-heldout.mjs; --heldout all: every one), digits test_data_set_0,
                 BERT seed 1, and codelm (its 16 test windows and 64 held-out windows), which no
                 choice used at all.

  .venv/bin/python bench/int4_search.py [--models charlm,codelm,digits,bert] [--blocks 32,128] > out.json
"""
import argparse
import ast
import json
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # importing fixtures/make_fixtures.py leaves no __pycache__ there
sys.path.insert(0, os.path.join(ROOT, "fixtures"))
RATIOS = [1 - 0.05 * i for i in range(8)]  # 1, 0.95 ... 0.65


def candidates(x, kind):
    """Candidate (scale, zero point, lo, hi) arrays for blocks x [..., B]; RTN first."""
    mn, mx = x.min(-1, keepdims=True), x.max(-1, keepdims=True)
    out = []
    if kind == "asym":
        lo, hi = np.minimum(mn, 0), np.maximum(mx, 0)
        for r in RATIOS:
            s = ((hi - lo) * r / 15).astype(np.float32)
            s = np.where(s > 0, s, 1).astype(np.float32)
            zp = np.clip(np.rint(0 - lo * r / s), 0, 15)
            out.append((s, zp, 0, 15))
        return out
    extreme = np.where(np.abs(mn) >= np.abs(mx), mn, mx)
    full = [(extreme * r / -8).astype(np.float32) for r in RATIOS]
    seven = [(np.maximum(np.abs(mn), np.abs(mx)) * r / 7).astype(np.float32) for r in RATIOS]
    if kind == "asymrtn":
        return candidates(x, "asym")[:1]
    scales = {"full": full, "seven": [full[0]] + seven, "both": full + seven, "rtn": full[:1], "old": seven,
              "seven8": [full[0]] + seven[:7]}[kind]
    return [(np.where(s != 0, s, 1).astype(np.float32), 0, -8, 7) for s in scales]


def measure_of(x, y, measure):
    d = y - x
    if measure == "mse":
        return (d * d).sum(-1)
    if measure == "absw":
        return (np.abs(x) * d * d).sum(-1)
    if measure == "w2":
        return (x * x * d * d).sum(-1)
    if measure == "max":
        return np.abs(d).max(-1)
    raise ValueError(measure)


def hqq(xb, symmetric, iters=20, beta=10.0, kappa=1.01, p=0.7, joint=False):
    """Half-quadratic quantization (Badri & Shaji 2023) of blocks xb [..., B]: W_e = shrink_p(W - W_r)
    and a closed-form update of the zero point (asymmetric) or the scale (symmetric, zero point fixed),
    beta growing by kappa; the zero point is rounded to an integer at the end (ONNX's 4-bit zero points
    are codes). Returns the (scale, zp, lo, hi) candidate."""
    (s, zp, lo, hi), = candidates(xb, "rtn" if symmetric else "asym")[:1]
    z = np.zeros_like(s) if symmetric else (0 - np.minimum(xb.min(-1, keepdims=True), 0) / s)
    best_err = np.inf
    for _ in range(iters):
        q = np.clip(np.rint(xb / s + z), lo, hi)
        wr = (q - z) * s
        d = xb - wr
        err = np.abs(d).mean()
        if err >= best_err:
            break
        best_err, best = err, (s.copy(), z.copy())
        a = np.abs(d)
        we = np.sign(d) * np.maximum(a - np.power(np.maximum(a, 1e-12), p - 1) / beta, 0)
        t = xb - we
        if symmetric:
            qq = (q * q).sum(-1, keepdims=True)
            s = np.where(qq > 0, (t * q).sum(-1, keepdims=True) / np.maximum(qq, 1e-30), s).astype(np.float32)
            s = np.where(s != 0, s, 1).astype(np.float32)
        else:
            z = (q - t / s).mean(-1, keepdims=True)
            if joint:  # integer zero point, then the scale's least-squares fit to W - W_e
                z = np.clip(np.rint(z), lo, hi)
                qz = q - z
                qq = (qz * qz).sum(-1, keepdims=True)
                s = np.where(qq > 0, (t * qz).sum(-1, keepdims=True) / np.maximum(qq, 1e-30), s).astype(np.float32)
                s = np.where(s > 0, s, 1).astype(np.float32)
        beta *= kappa
    s, z = best
    return s, (0 if symmetric else np.clip(np.rint(z), lo, hi)), lo, hi


def refit_scale(xb, s, y, measure, steps, zp=0, lo=-8, hi=7):
    """Blocks' scales re-fitted by least squares for their codes (s = x.(q - z) / (q - z).(q - z), the
    zero point z kept), then the codes re-rounded with it; each step is kept per block only where it
    lowers the measure (for mse both halves of a step can only lower it)."""
    err = measure_of(xb, y, measure)
    for _ in range(steps):
        q = np.rint(y / s)  # q - z
        qq = (q * q).sum(-1, keepdims=True)
        s2 = np.where(qq > 0, (xb * q).sum(-1, keepdims=True) / np.maximum(qq, 1e-30), s).astype(np.float32)
        s2 = np.where(s2 > 0 if lo >= 0 else s2 != 0, s2, s).astype(np.float32)
        y2 = ((np.clip(np.rint(xb / s2) + zp, lo, hi) - zp) * s2).astype(np.float32)
        e2 = measure_of(xb, y2, measure)
        better = e2 < err
        y = np.where(better[..., None], y2, y)
        s = np.where(better[..., None], s2, s)
        err = np.where(better, e2, err)
    return y


def fake_quant(w, axis, block, kind, measure):
    x = np.moveaxis(w.astype(np.float32), axis, -1)
    shape = x.shape
    k = shape[-1]
    pad = (-k) % block
    xb = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)]).reshape(*shape[:-1], -1, block)
    best, best_err, best_s, best_zp = None, None, None, None
    if kind.startswith("hqq"):
        h = hqq(xb, "sym" in kind, joint="joint" in kind)
        cands = [h] if "free" in kind else candidates(xb, "rtn" if "sym" in kind else "asym")[:1] + [h]
    else:
        cands = candidates(xb, kind.split("+")[0])
    for s, zp, lo, hi in cands:
        y = ((np.clip(np.rint(xb / s) + zp, lo, hi) - zp) * s).astype(np.float32)
        if best is None:
            best, best_err, best_s, best_zp = y, measure_of(xb, y, measure), s, np.broadcast_to(zp, s.shape)
            continue
        e = measure_of(xb, y, measure)
        better = e < best_err
        best_s = np.where(better[..., None], s, best_s)
        best_zp = np.where(better[..., None], zp, best_zp)
        best = np.where(better[..., None], y, best)
        best_err = np.where(better, e, best_err)
    if "+ls" in kind:
        lo, hi = cands[0][2], cands[0][3]
        best = refit_scale(xb, best_s, best, measure, int(kind.split("+ls")[1]), best_zp, lo, hi)
    y = best.reshape(*shape[:-1], -1)[..., :k]
    return np.moveaxis(y, -1, axis)


OPS = {"MatMul", "Gemm", "Conv", "Gather"}
HELDOUT = [64]  # the LMs' held-out windows (--heldout)


def int4_weights(model):
    """(initializer, reduction axis) for each weight the int4 pass takes, as src/ir/weights.ts defines them
    (only those read by the op types in OPS: `--ops MatMul` is the pass's `ops=MatMul`)."""
    inits = {t.name: t for t in model.graph.initializer}
    axes = {}
    for n in model.graph.node:
        for i, name in enumerate(n.input):
            if name not in inits:
                continue
            rank = len(inits[name].dims)
            ax = None
            if n.op_type not in OPS:
                axes.setdefault(name, set()).add(None)
                continue
            if n.op_type == "MatMul" and i == 1 and rank == 2:
                ax = 0
            elif n.op_type == "Gemm" and i == 1:
                trans = any(a.name == "transB" and a.i == 1 for a in n.attribute)
                ax = 1 if trans else 0
            elif n.op_type == "Conv" and i == 1 and rank >= 3:
                ax = 1
            elif n.op_type == "Gather" and i == 0 and rank == 2:
                ax = 1
            else:
                axes.setdefault(name, set()).add(None)
                continue
            axes.setdefault(name, set()).add(ax)
    out = []
    for name, s in axes.items():
        t = inits[name]
        if None in s or len(s) != 1 or int(np.prod(t.dims)) < 256 or t.data_type != onnx.TensorProto.FLOAT:
            continue
        out.append((t, next(iter(s))))
    return out


class Subject:
    def __init__(self, name, path):
        self.name = name
        self.model = onnx.load(path)
        self.weights = [(t, ax, numpy_helper.to_array(t).copy()) for t, ax in int4_weights(self.model)]

    def session(self, block=None, kind=None, measure=None):
        for t, ax, w in self.weights:
            y = w if block is None else fake_quant(w, ax, block, kind, measure)
            t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(y.astype(np.float32)), t.name))
        so = ort.SessionOptions()
        so.log_severity_level = 3
        return ort.InferenceSession(self.model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def heldout_count(arg):
    """--heldout's value: a count of held-out windows, or None for 'all' (every window of the tail)."""
    return None if arg == "all" else int(arg)


def lm_windows(name, text_fn, which, count=64):
    """(ids, labels): the fixture's test windows, or up to COUNT (None: every one) non-overlapping others
    from the held-out tail."""
    d = os.path.join(ROOT, "fixtures", name, "test_data_set_0")
    ids, labels = read_pb(os.path.join(d, "input_0.pb")), read_pb(os.path.join(d, "labels_0.pb"))
    if which == "test":
        return ids, labels
    data = token_ids(name, text_fn())
    val = data[len(data) - len(data) // 10:]
    T = ids.shape[1]
    tests = np.linspace(0, len(val) - T - 2, ids.shape[0]).astype(np.int64)
    assert all((val[s:s + T] == ids[r]).all() for r, s in enumerate(tests)), "not the fixture's text"
    starts = [s for s in range(0, len(val) - T - 1, T + 1) if not any(s < t + T + 1 and t < s + T + 1 for t in tests)][:count]
    return windows_at(val, starts, T)


def vocabulary(name):
    """LM `name`'s characters, in the order of their token ids."""
    return json.load(open(os.path.join(ROOT, "fixtures", name, "vocab.json")))


def token_ids(name, text):
    """`text` (every character in LM `name`'s vocabulary) as its token ids."""
    stoi = {c: i for i, c in enumerate(vocabulary(name))}
    return np.array([stoi[c] for c in text], dtype=np.int64)


def windows_at(data, starts, T):
    """(ids, labels): the T tokens from each start, and the T after each of them."""
    return np.stack([data[s:s + T] for s in starts]), np.stack([data[s + 1:s + T + 1] for s in starts])


def fresh_text(name):
    """Text of the kind LM `name` was trained on that it never saw, from the Python standard library of the
    interpreter running this: for the char LM (trained on pydoc's topics, the language reference's prose)
    the docstrings of every stdlib module, class and function; for codelm (trained on 19 stdlib modules'
    source) the source of every other stdlib module. Characters outside the LM's vocabulary are dropped."""
    import sysconfig  # noqa: PLC0415
    import make_fixtures as mf  # noqa: PLC0415

    lib = sysconfig.get_paths()["stdlib"]
    files = sorted(f for f in os.listdir(lib) if f.endswith(".py"))
    parts = []
    for f in files:
        with open(os.path.join(lib, f), encoding="utf-8", errors="replace") as fh:
            source = fh.read()
        if name == "codelm":
            if f not in mf.CODELM_SOURCES:
                parts.append(source)
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    parts.append(doc + "\n\n")
    vocab = set(vocabulary(name))
    return "".join(ch for ch in "".join(parts) if ch in vocab)


def fresh_windows(name, count, T):
    """(ids, labels): up to `count` non-overlapping windows of T tokens of fresh_text(name)."""
    data = token_ids(name, fresh_text(name))
    return windows_at(data, list(range(0, len(data) - T - 1, T + 1))[:count], T)


def lm_scores(sess, ref_logits, ids, labels):
    lg = sess.run(None, {"input_ids": ids})[0].astype(np.float64)
    m = lg.max(-1, keepdims=True)
    lse = np.log(np.exp(lg - m).sum(-1)) + m[..., 0]
    nll = lse - np.take_along_axis(lg, labels[..., None], -1)[..., 0]
    return {"ppl": float(np.exp(nll.mean())), "rms": float(np.sqrt(((lg - ref_logits) ** 2).mean()))}


def make_subjects(names):
    import make_fixtures as mf
    subjects = []
    for name in names:
        if name in ("charlm", "codelm"):
            text = mf.charlm_text if name == "charlm" else mf.codelm_text
            s = Subject(name, os.path.join(ROOT, "fixtures", name, "model.onnx"))
            splits = {"test": lm_windows(name, text, "test"), "heldout": lm_windows(name, text, "heldout", HELDOUT[0])}
            choose = "test" if name == "charlm" else None
            ref = s.session()
            refs = {k: ref.run(None, {"input_ids": v[0]})[0].astype(np.float64) for k, v in splits.items()}

            def score(sess, split, splits=splits, refs=refs):
                return lm_scores(sess, refs[split], *splits[split])
            subjects.append((s, splits.keys(), choose, score))
        elif name == "digits":
            s = Subject(name, os.path.join(ROOT, "fixtures", "digits", "model.onnx"))
            d = os.path.join(ROOT, "fixtures", "digits")
            splits = {"set1": (read_pb(f"{d}/test_data_set_1/input_0.pb"), np.load(f"{d}/labels_1.npy")),
                      "set0": (read_pb(f"{d}/test_data_set_0/input_0.pb"), np.load(f"{d}/labels_0.npy"))}
            ref = s.session()
            refs = {k: ref.run(None, {"input": v[0]})[0] for k, v in splits.items()}

            def score(sess, split, splits=splits, refs=refs):
                x, y = splits[split]
                lg = sess.run(None, {"input": x})[0]
                return {"top1": float((lg.argmax(-1) == y).mean()), "rms": float(np.sqrt(((lg - refs[split]) ** 2).mean()))}
            subjects.append((s, splits.keys(), "set1", score))
        elif name == "bert":
            s = Subject(name, os.path.join(ROOT, "..", "..", "main", "bench", "models", "bert_base.onnx")
                        if not os.path.exists(os.path.join(ROOT, "bench", "models", "bert_base.onnx"))
                        else os.path.join(ROOT, "bench", "models", "bert_base.onnx"))
            splits = {}
            for seed in (0, 1):
                rng = np.random.default_rng(seed)
                ids = rng.integers(1000, 29000, size=(2, 128)).astype(np.int64)
                splits[f"seed{seed}"] = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            ref = s.session()
            refs = {k: ref.run(["last_hidden_state"], v)[0].ravel().astype(np.float64) for k, v in splits.items()}

            def score(sess, split, splits=splits, refs=refs):
                y = sess.run(["last_hidden_state"], splits[split])[0].ravel().astype(np.float64)
                r = refs[split]
                return {"cosine": float(y @ r / np.linalg.norm(y) / np.linalg.norm(r))}
            subjects.append((s, splits.keys(), "seed0", score))
    return subjects


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="charlm,codelm,digits,bert")
    ap.add_argument("--blocks", default="32,128")
    ap.add_argument("--ops", default="MatMul,Gemm,Conv,Gather", help="op types whose weights are taken")
    ap.add_argument("--summarize", help="a file of this script's output rows: print the summary and stop")
    ap.add_argument("--configs", default="sym:rtn:mse,sym:seven:mse,sym:full:mse,sym:full:absw,sym:full:w2,sym:full:max,"
                    "sym:both:mse,sym:both:absw,sym:both:w2,sym:both:max,asym:asym:mse,asym:asym:absw,asym:asym:w2,asym:asym:max")
    ap.add_argument("--heldout", default="64", help="the LMs' held-out windows: a count, or 'all' (every window of the held-out tail)")
    a = ap.parse_args()
    if a.summarize:
        return summarize(a.summarize)
    HELDOUT[0] = heldout_count(a.heldout)
    OPS.clear()
    OPS.update(a.ops.split(","))
    subjects = make_subjects(a.models.split(","))
    rows = []
    for s, splits, choose, score in subjects:
        sess = s.session()
        print(json.dumps({"model": s.name, "block": 0, "config": "float", "choose_split": choose,
                          "scores": {sp: score(sess, sp) for sp in splits}}), flush=True)
        for block in map(int, a.blocks.split(",")):
            for cfg in a.configs.split(","):
                _, kind, measure = cfg.split(":")
                t0 = time.time()
                sess = s.session(block, kind, measure)
                row = {"model": s.name, "block": block, "config": cfg, "choose_split": choose,
                       "scores": {sp: score(sess, sp) for sp in splits}, "seconds": round(time.time() - t0, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)




def summarize(path):
    """Per config: each score relative to round-to-nearest's (same model, block, split; < 1 is better),
    the mean over the choosing splits, and over the reporting ones. Error scores: logit RMS, perplexity
    increase over float32, 1 - cosine."""
    rows = list({(r["model"], r["block"], r["config"]): r for r in (json.loads(l) for l in open(path) if l.startswith("{"))}.values())
    base = {}
    float_ppl = {"charlm": {}, "codelm": {}}
    for m in float_ppl:
        p = os.path.join(ROOT, "fixtures", m, "meta.json")
        if os.path.exists(p):
            float_ppl[m]["test"] = json.load(open(p))["perplexity"]
    def errors(r):
        out = {}
        for sp, sc in r["scores"].items():
            if "rms" in sc:
                out[(sp, "rms")] = sc["rms"]
            if "cosine" in sc:
                out[(sp, "1-cos")] = 1 - sc["cosine"]
            if "ppl" in sc:
                out[(sp, "ppl")] = sc["ppl"]
        return out
    for r in rows:
        if r["config"] == "float":
            for sp, sc in r["scores"].items():
                if "ppl" in sc:
                    float_ppl[r["model"]][sp] = sc["ppl"]
            continue
        if r["config"].split(":")[1] == "rtn" or r["config"] == "asym:asymrtn:mse":
            base[(r["model"], r["block"], r["config"].split(":")[0])] = errors(r)
    table = {}
    for r in rows:
        if r["config"] == "float":
            continue
        sym = r["config"].split(":")[0]
        b = base.get((r["model"], r["block"], "sym"))
        if not b:
            continue
        for (sp, metric), v in errors(r).items():
            if metric == "ppl":
                f = float_ppl.get(r["model"], {}).get(sp)
                if f is None:
                    continue
                rel = (v - f) / (b[(sp, metric)] - f)  # perplexity increase over float32, relative to RTN's
            else:
                rel = v / b[(sp, metric)]
            kind = "choose" if sp == r["choose_split"] else "report"
            table.setdefault(r["config"], {}).setdefault(kind, []).append((r["model"], r["block"], sp, metric, rel))
    for cfg, d in table.items():
        line = [cfg.ljust(18)]
        for kind in ("choose", "report"):
            for metric in ("rms", "1-cos", "ppl"):
                xs = [x for x in d.get(kind, []) if x[3] == metric]
                if xs:
                    line.append(f"{kind} {metric} mean {np.mean([x[-1] for x in xs]):.3f} worst {max(x[-1] for x in xs):.3f} (n={len(xs)})")
        print("  ".join(line))

if __name__ == "__main__":
    main()
