#!/usr/bin/env python3
"""Speed and scale in one harness run (issue 24): every target as a ratio against a peer measured in the same run.

    .venv/bin/python bench/speed.py [--runs 3] [--only roundtrip,int8,...] [--results]

Tasks (a task whose model is missing is skipped with the command that makes it):
  roundtrip  BERT-base: `cp` vs ours with no pass                          target ours/cp ≤ 1.3
  int8       BERT-base: `cp` vs ours int8 (check=none: the quantization; the default adds the fidelity
             guard's ONNX Runtime runs) and ORT quantize_dynamic            target int8:check=none/cp ≤ 1.3
  int4       BERT-base: ours int4 (default search) vs ORT MatMulNBitsQuantizer block 32 symmetric
                                                                            target ours/ORT ≤ 0.2 (5× faster)
  fp16       BERT-base: `cp` vs ours fp16 (check=none, and the default with its check); and the fill
             alone (bench/fp16-floor.mjs: the weights converted by our kernel on two threads, no model
             work at all), which bounds what any build of ours can do   target fp16:check=none/cp ≤ 2
  convert    BERT-base exported at opset 13: ours with no pass vs ours `convert --opset 21`
                                                                            target convert/round trip ≤ 1.2
  external   the 2.6 GB llama-style model (external data): `cp` of both files vs ours int8
                                                                            target ours/cp ≤ 1.5
  eval       BERT-base against itself, 20 timed runs: ours `eval --no-gzip --no-node-errors` vs ONNX Runtime's
             Python API doing the same runs (bench/peer_ort_eval.py: two sessions, 4 compared batches, 5
             warm-up and 20 timed runs each); the default eval (with the per-node table) in its own row
                                                                            target ours/peer ≤ 1.2
  memory     bench/larger-than-memory.py: a 6.4 GB external-data model compressed (int8, int4) inside a
             1 GiB memory cgroup, outputs checked in ONNX Runtime           target: no OOM kill, outputs run

Method (as bench/roundtrip.py): every model file is read once untimed (page cache), one untimed
warm-up round of every row, then --runs timed rounds with the rows interleaved; each run deletes its
outputs first and calls `sync` after (untimed); the figure is the median wall time (spawn to reap)
and the peak RSS (GNU time), and the median CPU seconds (user + system of the command and every child
it waited for: on this 2-vCPU machine, a run that takes C CPU seconds cannot take less than C / 2 of
wall time, whatever it overlaps). Writes bench/out/speed.json; --results appends the table to
bench/RESULTS.md.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import roundtrip as rt  # noqa: E402

ROOT = rt.ROOT
PY = rt.VENV_PY
BIN = ["node", os.path.join(ROOT, "bin", "onnxpress")]
MODELS = os.path.join(HERE, "models")
BERT = os.path.join(MODELS, "bert_base.onnx")
BERT13 = os.path.join(MODELS, "opset13", "bert_base.onnx")
LLAMA = os.path.join(MODELS, "llama_big.onnx")
BERT_DIMS = ["--dim", "b=1", "--dim", "s=128"]


def ours_compress(*passes):
    return [*BIN, "compress", "{model}", "-o", "{out}", "--force", *passes]


def peer_quantize(*args):
    return [PY, os.path.join(HERE, "peer_ort_quantize.py"), args[0], "{model}", "{out}", *args[1:]]


# name: (model, make-command hint, rows {row: argv}, targets [(label, row, baseline row, max ratio)])
TASKS = {
    "roundtrip": (BERT, "bench/make-models.sh a", {
        "cp": ["cp", "{model}", "{out}"],
        "ours": ours_compress(),
    }, [("round trip ≤ 1.3× cp", "ours", "cp", 1.3)]),
    "int8": (BERT, "bench/make-models.sh a", {
        "cp": ["cp", "{model}", "{out}"],
        "ours int8 check=none": ours_compress("--quantize", "int8:check=none"),
        "ours int8 (default, guard)": ours_compress("--quantize", "int8"),
        "ORT quantize_dynamic": peer_quantize("dynamic"),
    }, [("int8 per-channel ≤ 1.3× cp", "ours int8 check=none", "cp", 1.3)]),
    "int4": (BERT, "bench/make-models.sh a", {
        "ours int4 (default)": ours_compress("--quantize", "int4"),
        "ORT MatMulNBitsQuantizer": peer_quantize("nbits", "--block", "32"),
    }, [("int4 ≥ 5× faster than MatMulNBitsQuantizer", "ours int4 (default)", "ORT MatMulNBitsQuantizer", 0.2)]),
    "fp16": (BERT, "bench/make-models.sh a", {
        "cp": ["cp", "{model}", "{out}"],
        "ours fp16 check=none": ours_compress("--quantize", "fp16:check=none"),
        "ours fp16 (default, measured)": ours_compress("--quantize", "fp16"),
        "floor: the fp16 fill alone": ["node", os.path.join(HERE, "fp16-floor.mjs"), "{model}", "{out}"],
        "ORT float16 converter": peer_quantize("fp16"),
    }, [("fp16 ≤ 2× cp", "ours fp16 check=none", "cp", 2.0)]),
    "convert": (BERT13, "OPSET=13 bench/make-models.sh a", {
        "ours round trip": ours_compress(),
        "ours convert --opset 21": [*BIN, "convert", "{model}", "-o", "{out}", "--opset", "21", "--force"],
    }, [("opset conversion ≤ 1.2× round trip", "ours convert --opset 21", "ours round trip", 1.2)]),
    "external": (LLAMA, "bench/make-models.sh c", {
        "cp": ["sh", "-c", 'cp "$0" "$1" && cp "$0.data" "$1.data"', "{model}", "{out}"],
        "ours int8": ours_compress("--quantize", "int8"),
    }, [("external-data int8 ≤ 1.5× cp", "ours int8", "cp", 1.5)]),
    "eval": (BERT, "bench/make-models.sh a", {
        # The same runs as the peer: the per-node error table (a third run of each model exposing every
        # value) is extra work, measured in its own row.
        "ours eval --no-node-errors": [*BIN, "eval", "{model}", "--reference", "{model}", "--runs", "20", "--threads", "1",
                                       "--json", "--no-gzip", "--no-node-errors", *BERT_DIMS],
        "ours eval (default)": [*BIN, "eval", "{model}", "--reference", "{model}", "--runs", "20", "--threads", "1",
                                "--json", "--no-gzip", *BERT_DIMS],
        "ORT Python API": [PY, os.path.join(HERE, "peer_ort_eval.py"), "{model}", "{model}", "--runs", "20",
                           "--dim", "b=1", "--dim", "s=128"],
    }, [("eval ≤ 1.2× ORT's own (same runs)", "ours eval --no-node-errors", "ORT Python API", 1.2)]),
}


def remove_outputs(out):
    for p in (out, out + ".data"):
        if os.path.exists(p):
            os.remove(p)


def run_task(name, runs, outdir):
    model, hint, rows, targets = TASKS[name]
    if not os.path.exists(model):
        return {"task": name, "skipped": f"{os.path.relpath(model, ROOT)} is missing (make it with {hint})"}
    for p in (model, model + ".data"):
        if os.path.exists(p):
            rt.warm(p)
    times = {row: [] for row in rows}
    cpu = {row: [] for row in rows}
    rss = {row: [] for row in rows}
    failures = {}
    for rnd in range(runs + 1):  # round 0 is the untimed warm-up
        for row, argv in rows.items():
            out = os.path.join(outdir, f"{name}-{row.split()[0]}-{abs(hash(row)) % 10**6}.onnx")
            remove_outputs(out)
            cmd = [a.replace("{model}", model).replace("{out}", out) for a in argv]
            wall, peak, rc, _, err, cpu_s = rt.run_measured_cpu(cmd)
            subprocess.run(["sync"])
            remove_outputs(out)
            if rc != 0:
                failures[row] = err.strip().splitlines()[-1:] or [f"exit {rc}"]
            elif rnd > 0:
                times[row].append(wall)
                cpu[row].append(cpu_s)
                rss[row].append(peak)
        print(f"  {name}: round {rnd} done", file=sys.stderr, flush=True)
    med = {row: statistics.median(t) for row, t in times.items() if t}
    size = sum(os.path.getsize(p) for p in (model, model + ".data") if os.path.exists(p))
    checks = []
    for label, row, base, limit in targets:
        if row in med and base in med:
            ratio = med[row] / med[base]
            checks.append({"target": label, "ratio": round(ratio, 3), "limit": limit, "met": ratio <= limit})
        else:
            checks.append({"target": label, "ratio": None, "limit": limit, "met": False})
    return {"task": name, "model": os.path.relpath(model, ROOT), "model_bytes": size, "median_s": med,
            "median_cpu_s": {row: round(statistics.median(c), 3) for row, c in cpu.items() if c},
            "peak_rss_over_model": {row: round(max(v) / size, 3) for row, v in rss.items() if v},
            "runs": times, "failures": failures, "checks": checks}


def run_memory():
    script = os.path.join(HERE, "larger-than-memory.py")
    p = subprocess.run([PY, script, "--runs", "1"], capture_output=True, text=True, cwd=ROOT)
    path = os.path.join(ROOT, "bench", "out", "big", "result.json")
    if p.returncode != 0 or not os.path.exists(path):
        return {"task": "memory", "failures": {"larger-than-memory.py": p.stderr.strip().splitlines()[-3:]}, "checks": []}
    with open(path) as f:
        r = json.load(f)
    ok = all(x[-1]["rc"] == 0 and x[-1]["oom_kills"] == 0 for x in r["runs"].values()) and len(r["checks"]) == 2
    return {"task": "memory", "model_bytes": r["model_bytes"], "cgroup": r["cgroup"], "limit_bytes": r["limit_bytes"],
            "median_s": r["median_wall_s"], "cosines": {k: v["cosine_vs_fp32"] for k, v in r["checks"].items()},
            "checks": [{"target": f"{r['model_bytes'] / 1e9:.1f} GB model in a {r['limit_bytes'] >> 20} MiB cgroup "
                        f"({r['cgroup']}): int8 and int4 without an OOM kill, outputs run",
                        "ratio": r["ratio_vs_cp"].get("int8"), "limit": None, "met": ok}]}


def table(results):
    lines = ["| task | target | ratio | met | medians (s) |", "|---|---|---|---|---|"]
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['task']} | — | — | skipped | {r['skipped']} |")
            continue
        cpus = r.get("median_cpu_s", {})
        meds = ", ".join(f"{k} {v:.2f}" + (f" (cpu {cpus[k]:.2f})" if k in cpus else "") for k, v in r.get("median_s", {}).items())
        for c in r["checks"]:
            ratio = "—" if c["ratio"] is None else f"{c['ratio']:.2f}×"
            lines.append(f"| {r['task']} | {c['target']} | {ratio} | {'yes' if c['met'] else '**no**'} | {meds} |")
        for row, why in r.get("failures", {}).items():
            lines.append(f"| {r['task']} | {row} failed | — | **no** | {' '.join(why)} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", help="comma-separated tasks (default: all): " + ", ".join([*TASKS, "memory"]))
    ap.add_argument("--results", action="store_true", help="append the table to bench/RESULTS.md")
    a = ap.parse_args()
    names = a.only.split(",") if a.only else [*TASKS, "memory"]
    outdir = os.path.join(ROOT, "bench", "out", "speed")
    os.makedirs(outdir, exist_ok=True)
    load_start = os.getloadavg()
    results = [run_memory() if n == "memory" else run_task(n, a.runs, outdir) for n in names]
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "build": rt.build_info(ROOT), "load_start": load_start, "load_end": os.getloadavg(), "results": results}
    with open(os.path.join(ROOT, "bench", "out", "speed.json"), "w") as f:
        json.dump(doc, f, indent=1)
    text = table(results)
    print(text)
    if a.results:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write(f"\n## Speed and scale, one harness run ({doc['date']}, `bench/speed.py --runs {a.runs}`)\n\n"
                    f"Build {doc['build']['commit']}{' (src differs from it)' if doc['build'].get('src_differs_from_head') else ''}; load average {load_start[0]:.1f} at start, {doc['load_end'][0]:.1f} at end "
                    f"(a shared 2-vCPU machine: ratios, not seconds).\n\n{text}\n")


if __name__ == "__main__":
    main()
