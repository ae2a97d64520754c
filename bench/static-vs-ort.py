#!/usr/bin/env python3
"""Benchmark: static int8 (QDQ), onnxpress against ONNX Runtime's quantize_static, same data, same method.

Usage (from the repository root, with the Python that has onnxruntime, numpy and torch):

  .venv/bin/python bench/static-vs-ort.py [--models bert,resnet] [--methods minmax,percentile,entropy,mse]
        [--runs 3] [--warmup-rounds 1] [--calibration 32] [--held-out 8] [--latency-rounds 15] [--onnxpress DIR]

Models: `bert` is bench/models/bert_base.onnx (bench/make-models.sh a; 438 MB, random init), fed
sequences of 128 seeded random token ids; `resnet` is bench/models/resnet50_light.onnx, made on first
use by bench/make_light_resnet.py from ONNX's light model zoo (ResNet-50, 102 MB), fed seeded smooth
images. For each model the script writes two .npz files under bench/out/static/<model>/: the
calibration samples (`--calibration`, default 32) and held-out ones (`--held-out`, default 8, other
seeds), and both tools calibrate on the same calibration file:

  ours: node bin/onnxpress compress MODEL -o OUT --force --quantize int8:mode=static,calibration=calib.npz,method=M
  ORT:  python bench/peer_ort_quantize.py static MODEL OUT --calibration calib.npz --method M
        (quantize_static: QDQ, per-channel int8 weights, uint8 activations, its defaults otherwise;
        the reader yields one sample at a time)

`mse` has no ONNX Runtime counterpart (ours only). Speed: `--warmup-rounds` untimed rounds, then `--runs`
timed rounds, every row in turn in each round (interleaved); wall time from spawn to exit, and peak
memory as the largest sum of the resident set sizes of the process and all its descendants (ours
runs ONNX Runtime in a child process; sampled every 20 ms from /proc), as a ratio to the model's
bytes. Quality of each output of the last round, in ONNX Runtime (Python), 1 thread: cosine against
the fp32 model's outputs on the held-out samples (the lowest over the model's outputs), top-1
agreement with fp32 for the ResNet, and latency relative to fp32 at batch 1 (the first held-out
sample): `--latency-rounds` rounds, each running fp32 and every output in turn 10 times, the median
over rounds of (median output time / median fp32 time). Prints a Markdown table and writes JSON to
bench/out/static-vs-ort-<models>.json.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
PEER = [sys.executable, os.path.join(HERE, "peer_ort_quantize.py")]
PAGE = os.sysconf("SC_PAGE_SIZE")

MODELS = {
    "bert": os.path.join(ROOT, "bench", "models", "bert_base.onnx"),
    "resnet": os.path.join(ROOT, "bench", "models", "resnet50_light.onnx"),
}
ORT_METHODS = {"minmax", "entropy", "percentile"}


def make_data(key, model, n, seed):
    """Deterministic inputs for `model`: `n` samples along the first dimension."""
    if key == "resnet":
        from make_light_resnet import images
        return {"gpu_0/data_0": images(seed, n)}
    rng = np.random.default_rng(seed)
    # BERT: token ids of the vocabulary's common part, every position attended.
    return {"input_ids": rng.integers(1000, 20000, size=(n, 128), dtype=np.int64),
            "attention_mask": np.ones((n, 128), dtype=np.int64)}


def tree_rss(pid):
    """Resident bytes of `pid` and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return total


def run_measured(argv):
    """(wall seconds, peak tree RSS bytes, exit code, stdout+stderr tail)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = [0]
    out = []

    def drain():
        out.append(p.stdout.read())

    reader = threading.Thread(target=drain)
    reader.start()
    while p.poll() is None:
        peak[0] = max(peak[0], tree_rss(p.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    reader.join()
    return wall, peak[0], p.returncode, (out[0] or b"").decode(errors="replace")[-3000:]


def cosine(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def evaluate(model, outputs, held_out, rounds):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    ref = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    sessions = {k: ort.InferenceSession(p, opts, providers=["CPUExecutionProvider"]) for k, p in outputs.items()}
    expected = ref.run(None, held_out)
    names = [o.name for o in ref.get_outputs()]
    quality = {}
    for k, s in sessions.items():
        got = s.run(names, held_out)
        q = {"cosine": min(cosine(e, g) for e, g in zip(expected, got))}
        if expected[0].ndim == 2 and expected[0].shape[1] == 1000:
            q["top1_agreement"] = float(np.mean(expected[0].argmax(1) == got[0].argmax(1)))
        quality[k] = q
    one = {k: v[:1] for k, v in held_out.items()}
    everyone = {"fp32": ref, **sessions}
    for s in everyone.values():
        s.run(None, one)
    ratios = {k: [] for k in sessions}
    for _ in range(rounds):
        medians = {}
        for k, s in everyone.items():
            times = []
            for _ in range(10):
                t = time.perf_counter()
                s.run(None, one)
                times.append(time.perf_counter() - t)
            medians[k] = statistics.median(times)
        for k in sessions:
            ratios[k].append(medians[k] / medians["fp32"])
    for k in sessions:
        r = sorted(ratios[k])
        quality[k]["latency_ratio"] = statistics.median(r)
        quality[k]["latency_ratio_p10_p90"] = [r[len(r) // 10], r[(len(r) * 9) // 10]]
    return quality


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="bert,resnet")
    ap.add_argument("--methods", default="minmax,percentile,entropy,mse")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup-rounds", type=int, default=1)
    ap.add_argument("--calibration", type=int, default=32)
    ap.add_argument("--held-out", type=int, default=8)
    ap.add_argument("--latency-rounds", type=int, default=15)
    ap.add_argument("--onnxpress", default=ROOT, help="a checkout or bench/build-ref.sh tree to measure")
    ap.add_argument("--json", help="default bench/out/static-vs-ort-<models>.json")
    a = ap.parse_args()
    binpath = os.path.join(os.path.abspath(a.onnxpress), "bin", "onnxpress")
    pinned = os.path.join(a.onnxpress, "COMMIT")  # a bench/build-ref.sh tree
    commit = (open(pinned).read().strip()[:7] if os.path.exists(pinned) else
              subprocess.run(["git", "-C", a.onnxpress, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip())
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "commit": commit,
               "load_start": os.getloadavg(), "models": {}}
    lines = []
    for key in a.models.split(","):
        model = MODELS[key]
        if key == "resnet" and not os.path.exists(model):
            subprocess.run([sys.executable, os.path.join(HERE, "make_light_resnet.py"), model], check=True)
        size = os.path.getsize(model)
        outdir = os.path.join(ROOT, "bench", "out", "static", key)
        os.makedirs(outdir, exist_ok=True)
        calib = os.path.join(outdir, "calibration.npz")
        np.savez(calib, **make_data(key, model, a.calibration, 1))
        held_out = make_data(key, model, a.held_out, 2)
        rows = {"floor-inference": [*PEER, "infer", model, "-", "--calibration", calib]}
        for m in a.methods.split(","):
            rows[f"ours-{m}"] = ["node", binpath, "compress", model, "-o", "{out}", "--force", "--quantize",
                                 f"int8:mode=static,calibration={calib},method={m}"]
            if m in ORT_METHODS:
                rows[f"ort-{m}"] = [*PEER, "static", model, "{out}", "--calibration", calib, "--method", m]
        outs = {k: os.path.join(outdir, f"{k}.onnx") for k in rows}
        runs = {k: [] for k in rows}
        with open(model, "rb") as f:  # in the page cache for every row alike
            while f.read(1 << 24):
                pass
        for r in range(1 - a.warmup_rounds, a.runs + 1):
            for k, argv in rows.items():
                if os.path.exists(outs[k]):
                    os.unlink(outs[k])
                if k.startswith("floor"):
                    outs[k] = "-"
                wall, rss, rc, tail = run_measured([x.replace("{out}", outs[k]) for x in argv])
                print(f"{key} {'warm-up' if r <= 0 else f'run {r}'} {k:18s} {wall:7.2f} s  peak {rss / size:5.2f}× model  rc={rc}",
                      flush=True)
                if rc != 0:
                    print(tail)
                if r > 0:
                    runs[k].append({"wall_s": wall, "peak_tree_rss_bytes": rss, "exit_code": rc,
                                    **({"tail": tail} if rc else {})})
                    if k.startswith("floor") and rc == 0:
                        runs[k][-1]["infer_s"] = json.loads(tail.strip().splitlines()[-1])["infer_s"]
        ok = {k: outs[k] for k in rows if all(x["exit_code"] == 0 for x in runs[k]) and not k.startswith("floor")}
        quality = evaluate(model, ok, held_out, a.latency_rounds)
        summary = {}
        for k in rows:
            walls = [x["wall_s"] for x in runs[k]]
            summary[k] = {"command": " ".join(rows[k]).replace("{out}", "OUT"), "walls_s": walls,
                          "median_wall_s": statistics.median(walls),
                          "peak_rss_ratio": max(x["peak_tree_rss_bytes"] for x in runs[k]) / size,
                          "output_bytes": os.path.getsize(outs[k]) if k in ok else None, **quality.get(k, {})}
            failed = [x for x in runs[k] if x["exit_code"] != 0]
            if failed:
                summary[k]["failed"] = failed[0].get("tail", "")[-300:]
        results["models"][key] = {"path": os.path.relpath(model, ROOT), "bytes": size, "rows": summary,
                                  "calibration_samples": a.calibration, "held_out_samples": a.held_out}
        lines += [f"**{key}** (`{os.path.relpath(model, ROOT)}`, {size / 1e6:.1f} MB; {a.calibration} calibration samples, "
                  f"{a.held_out} held-out)", "",
                  "| method | tool | median s (runs) | ORT s / ours s | peak RSS / model | output MB | cosine vs fp32 |"
                  + (" top-1 = fp32 |" if key == "resnet" else "") + " latency vs fp32 (p10–p90) |",
                  "|---|---|---|---:|---:|---:|---:|" + ("---:|" if key == "resnet" else "") + "---:|"]
        for k, s in summary.items():
            tool, m = k.split("-", 1)
            peer = summary.get(f"ort-{m}")
            speedup = (f"{peer['median_wall_s'] / s['median_wall_s']:.1f}×"
                       if tool == "ours" and peer and "failed" not in peer else "")
            if "failed" in s:
                error = s["failed"].strip().splitlines()[-1][:120] if s["failed"].strip() else "non-zero exit"
                lines.append(f"| {m} | {'ours' if tool == 'ours' else 'ORT quantize_static'} | failed after "
                             f"{' '.join(f'{w:.0f}' for w in s['walls_s'])} s: {error} | | {s['peak_rss_ratio']:.2f}× | | |"
                             + (" |" if key == "resnet" else "") + " |")
                continue
            if tool == "floor":
                infer = statistics.median(x["infer_s"] for x in runs[k])
                lines.append(f"| – | ONNX Runtime inference alone (the floor): session and runs, in process | {infer:.2f} "
                             f"(process {s['median_wall_s']:.2f}) | | {s['peak_rss_ratio']:.2f}× | | | "
                             + ("| " if key == "resnet" else "") + "|")
                continue
            lat = s.get("latency_ratio")
            lines.append(
                f"| {m} | {'ours' if tool == 'ours' else 'ORT quantize_static'} | {s['median_wall_s']:.2f} "
                f"({' '.join(f'{w:.2f}' for w in s['walls_s'])}) | {speedup} | {s['peak_rss_ratio']:.2f}× | "
                f"{(s['output_bytes'] or 0) / 1e6:.1f} | {s.get('cosine', float('nan')):.5f} |"
                + (f" {s.get('top1_agreement', float('nan')):.3f} |" if key == "resnet" else "")
                + (f" {lat:.2f}× ({s['latency_ratio_p10_p90'][0]:.2f}–{s['latency_ratio_p10_p90'][1]:.2f}) |" if lat else " |"))
        lines.append("")
    results["load_end"] = os.getloadavg()
    lines.append(f"Load average (1 min) at start {results['load_start'][0]:.1f}, at end {results['load_end'][0]:.1f}; "
                 f"onnxpress {commit}.")
    table = "\n".join(lines)
    results["markdown"] = table
    path = a.json or os.path.join(ROOT, "bench", "out", f"static-vs-ort-{a.models.replace(',', '-')}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print()
    print(table)


if __name__ == "__main__":
    main()
