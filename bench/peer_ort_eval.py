#!/usr/bin/env python3
"""Peer baseline for `onnxpress eval`: ONNX Runtime's own Python API doing the same work.

  python bench/peer_ort_eval.py CANDIDATE REFERENCE [--batches 4] [--runs 20] [--warmup 5] [--dim NAME=N ...]

Creates a session for each model (1 intra-op thread, as `eval --threads 1`), runs both on `--batches`
synthesized inputs (seeded; symbolic dimensions from --dim, else 1; eval synthesizes 4) and compares
the outputs (cosine), then `--warmup` untimed and `--runs` timed runs of each, alternating, as eval
times latency. Prints one JSON line (phase timings, the cosine, the latency ratio).
"""
import argparse
import json
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

t_import = time.perf_counter() - t0

TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
         "tensor(float16)": np.float16, "tensor(bool)": np.bool_}


def inputs_for(session, dims, rng):
    feeds = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else dims.get(d, 1) for d in i.shape]
        dtype = TYPES[i.type]
        if np.issubdtype(dtype, np.integer):
            feeds[i.name] = rng.integers(0, 100, size=shape, dtype=dtype)
        elif dtype == np.bool_:
            feeds[i.name] = rng.integers(0, 2, size=shape).astype(np.bool_)
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("candidate")
    ap.add_argument("reference")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--dim", action="append", default=[])
    a = ap.parse_args()
    dims = {k: int(v) for k, v in (d.split("=") for d in a.dim)}
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    t1 = time.perf_counter()
    ref = ort.InferenceSession(a.reference, so, providers=["CPUExecutionProvider"])
    cand = ort.InferenceSession(a.candidate, so, providers=["CPUExecutionProvider"])
    t_sessions = time.perf_counter() - t1
    rng = np.random.default_rng(0)
    batches = [inputs_for(ref, dims, rng) for _ in range(a.batches)]
    t2 = time.perf_counter()
    cosine = 1.0
    for feeds in batches:
        r = ref.run(None, feeds)[0].astype(np.float64).ravel()
        c = cand.run(None, feeds)[0].astype(np.float64).ravel()
        cosine = min(cosine, float(r @ c / (np.linalg.norm(r) * np.linalg.norm(c))))
    feeds = batches[0]
    for _ in range(a.warmup):
        ref.run(None, feeds)
        cand.run(None, feeds)
    times = {"ref": [], "cand": []}
    for _ in range(a.runs):
        for key, s in (("ref", ref), ("cand", cand)):
            t = time.perf_counter()
            s.run(None, feeds)
            times[key].append(time.perf_counter() - t)
    t_runs = time.perf_counter() - t2
    print(json.dumps({"import_s": round(t_import, 3), "sessions_s": round(t_sessions, 3), "runs_s": round(t_runs, 3),
                      "cosine": cosine, "latency_ratio": float(np.mean(times["cand"]) / np.mean(times["ref"])),
                      "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
