#!/usr/bin/env python3
"""Benchmark: quantization, onnxpress against ONNX Runtime's own Python quantizers.

Usage (from the repository root; ONNXPRESS is a pinned build from bench/build-ref.sh):

  # 1. speed: wall time, peak RSS and output size of each quantizer, interleaved
  .venv/bin/python bench/quantize.py speed bench/models/bert_base.onnx --onnxpress bench/out/ref-36853e6
  # 2-4. quality and ONNX Runtime latency of each output, all through `onnxpress eval`
  .venv/bin/python bench/quantize.py eval bench/models/bert_base.onnx --onnxpress bench/out/ref-36853e6 \
      --preset bert -- --dim b=1 --dim s=128
  .venv/bin/python bench/quantize.py eval fixtures/digits/model.onnx --preset digits --onnxpress ... \
      -- --data fixtures/digits/test_data_set_0 --labels fixtures/digits/labels.txt
  .venv/bin/python bench/quantize.py eval fixtures/charlm/model.onnx --preset charlm --onnxpress ... \
      -- --data fixtures/charlm/test_data_set_0

`speed` follows bench/roundtrip.py's method (it imports its helpers): the model is read once
(untimed) so it is in the page cache, `--warmup-rounds` (default 1) untimed rounds of every row,
then `--runs` (default 3) timed runs of every row, interleaved round-robin (cp, ours int8, ...,
ORT ..., cp, ...). Each run deletes its output first and calls `sync` after (untimed). Wall time
is spawn to reap of the one child process (so Python's interpreter start and `import
onnxruntime` count for ORT, as Node's start counts for ours); peak RSS from GNU time %M. Output
size is the output file (plus any external-data file next to it). The outputs of the last run
are kept under bench/out/quant/<model>/<row>.onnx, which `eval` then judges.

`eval` runs, one row at a time, in a fresh process each:
  node ONNXPRESS/bin/onnxpress eval OUT --reference MODEL --json --no-gzip --runs N --seed 0 \
       --threads 1 [ARGS after --]
(the same seeded synthesized inputs, or the same --data, for every row) and tabulates the
accuracy metric (top1 / perplexity / fidelity), each output's cosine and SNR against the fp32
model, and ONNX Runtime latency (the eval's own alternating reference/compressed timing, 1
intra-op thread; ratio = compressed mean / reference mean). Row `fp32` evaluates the model
against itself (a noise floor for the latency ratio). Missing outputs are made first (untimed).

Rows (`--rows a,b,c` picks; `--preset` gives a default set): see ROWS below. Commands use
{model} and {out}; `ours-int8-dynamic` appears only when `compress --list-passes` offers
int8 mode=dynamic.

Both subcommands write JSON (every run, commands, build, versions, load average, busy processes)
to bench/out/quantize-<speed|eval>-<model>[-<preset>].json and print Markdown tables.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import roundtrip as rt  # noqa: E402  (run_measured, warm, version, build_info, busy_processes)

ROOT = rt.ROOT
VENV_PY = rt.VENV_PY
PEER = [VENV_PY, os.path.join(HERE, "peer_ort_quantize.py")]


def load_sentence(load_start, load_end, busy_start, busy_end):
    """The machine's load around a run, as the tables' footers say it."""
    return (f"Load average (1 min) at start {load_start[0]:.2f}, at end {load_end[0]:.2f}"
            + (f"; busy processes at start: {busy_start}" if busy_start else "")
            + (f"; at end: {busy_end}" if busy_end else "") + ".")


def caveats(dropped, build_start, build_end):
    """Footer lines for rows that failed and for a build that changed during the run."""
    lines = []
    if dropped:
        lines.append(f"Rows left out: {'; '.join(dropped)}.")
    if build_end != build_start:
        lines.append(f"WARNING: the build changed during the run: {build_start} -> {build_end}")
    return lines


def ours(q):
    return lambda X: ["node", X["bin"], "compress", "{model}", "-o", "{out}", "--force", "--quantize", q]


def ours_weight(q):
    """An int8 row meant weight-only (DequantizeLinear). Builds whose int8 default is mode=auto
    (integer MatMul/Gemm) get mode=weight, so the row keeps its meaning across builds."""
    def build(X):
        spec = q + ((":" if ":" not in q else ",") + "mode=weight" if X.get("int8_auto") else "")
        return ours(spec)(X)
    return build


def peer(*args):
    return lambda X: [*PEER, args[0], "{model}", "{out}", *args[1:]]


# key: (label, command builder, peer row for the speed ratio, output form (for the latency table))
ROWS = {
    "cp": ("`cp` (baseline)", lambda X: ["cp", "{model}", "{out}"], None, "fp32 copy"),
    "ours-roundtrip": ("ours, no passes (round trip)",
                       lambda X: ["node", X["bin"], "compress", "{model}", "-o", "{out}", "--force"], "cp", "fp32 copy"),
    "ours-int8-auto": ("ours int8 (default: mode=auto, per-channel)", ours("int8"), "ort-dyn-channel",
                       "integer MatMul/Gemm, DQ elsewhere"),
    "ours-int8": ("ours int8 per-channel", ours_weight("int8"), "ort-dyn-channel", "DQ int8 (weight-only)"),
    "ours-int8-tensor": ("ours int8 per-tensor", ours_weight("int8:granularity=tensor"), "ort-dyn-tensor",
                         "DQ int8 per-tensor"),
    "ours-int8-dynamic": ("ours int8 mode=dynamic", ours("int8:mode=dynamic"), "ort-dyn-channel",
                          "ours dynamic int8"),
    "ours-int8-matmul": ("ours int8 ops=MatMul", ours_weight("int8:ops=MatMul"), "ort-dyn-channel",
                         "DQ int8, MatMul only"),
    "ours-int8-gather": ("ours int8 ops=Gather", ours_weight("int8:ops=Gather"), None, "DQ int8, Gather only"),
    "ours-int8-conv": ("ours int8 ops=Conv", ours_weight("int8:ops=Conv"), None, "DQ int8, Conv only"),
    "ours-int8-gemm": ("ours int8 ops=Gemm", ours_weight("int8:ops=Gemm"), None, "DQ int8, Gemm only"),
    "ort-dyn-channel": ("ORT quantize_dynamic per-channel", peer("dynamic"), None,
                        "ORT dynamic int8 (MatMulInteger/ConvInteger)"),
    "ort-dyn-tensor": ("ORT quantize_dynamic per-tensor", peer("dynamic", "--per-tensor"), None,
                       "ORT dynamic int8 per-tensor"),
    "ours-int4-b32": ("ours int4 block 32 (search=mse, default)", ours("int4:block=32"), "ort-nbits-b32-sym",
                      "int4 auto: MatMulNBits + DQ int4 (Gather)"),
    "ours-int4-b32-asym": ("ours int4 block 32 symmetric=false (search=mse)", ours("int4:block=32,symmetric=false"),
                           "ort-nbits-b32-asym", "int4 auto asymmetric"),
    "ours-int4-b32-hqq": ("ours int4 block 32 search=hqq", ours("int4:block=32,search=hqq"), "ort-nbits-b32-sym",
                          "int4 auto, HQQ"),
    "ours-int4-b32-none": ("ours int4 block 32 search=none", ours("int4:block=32,search=none"),
                           "ort-nbits-b32-sym", "int4 auto, search=none"),
    "ours-int4-b32-matmul": ("ours int4 block 32 ops=MatMul", ours("int4:block=32,ops=MatMul"),
                             "ort-nbits-b32-sym", "MatMulNBits int4, MatMul only"),
    "ours-int4-b32-matmul-none": ("ours int4 block 32 ops=MatMul search=none",
                                  ours("int4:block=32,ops=MatMul,search=none"), "ort-nbits-b32-sym",
                                  "MatMulNBits int4, MatMul only, search=none"),
    "ours-int4-b32-acc4": ("ours int4 block 32 accuracy-level=4", ours("int4:block=32,accuracy-level=4"),
                           None, "MatMulNBits int4 accuracy_level 4 + DQ int4 (Gather)"),
    "ours-int4-b32-dq": ("ours int4 block 32 format=dq", ours("int4:block=32,format=dq"), None,
                         "DQ int4 everywhere"),
    "ours-int4-b32-dq-matmul": ("ours int4 block 32 format=dq ops=MatMul",
                                ours("int4:block=32,format=dq,ops=MatMul"), None, "DQ int4, MatMul only"),
    "ours-int4-b32-gather": ("ours int4 block 32 ops=Gather", ours("int4:block=32,ops=Gather"), None,
                             "DQ int4, Gather only"),
    "ours-int4-b128": ("ours int4 block 128", ours("int4:block=128"), "ort-nbits-b128-sym",
                       "int4 auto, block 128"),
    "ours-int4-b128-matmul": ("ours int4 block 128 ops=MatMul", ours("int4:block=128,ops=MatMul"),
                              "ort-nbits-b128-sym", "MatMulNBits int4 block 128, MatMul only"),
    "ours-int4-b32-conv": ("ours int4 block 32 ops=Conv", ours("int4:block=32,ops=Conv"), None,
                           "DQ int4, Conv only"),
    "ours-int4-b32-gemm": ("ours int4 block 32 ops=Gemm", ours("int4:block=32,ops=Gemm"), None,
                           "DQ int4, Gemm only"),
    "ours-int4-b32-acc4-matmul": ("ours int4 block 32 ops=MatMul accuracy-level=4",
                                  ours("int4:block=32,ops=MatMul,accuracy-level=4"), None,
                                  "MatMulNBits int4 accuracy_level 4, MatMul only"),
    "ort-dyn-matmul": ("ORT quantize_dynamic per-channel op_types=[MatMul]", peer("dynamic", "--ops", "MatMul"), None,
                       "ORT dynamic int8, MatMul only"),
    "ort-dyn-gather": ("ORT quantize_dynamic per-channel op_types=[Gather]", peer("dynamic", "--ops", "Gather"), None,
                       "ORT dynamic (DQ int8), Gather only"),
    "ort-nbits-b32-sym": ("ORT MatMulNBitsQuantizer block 32 symmetric", peer("nbits", "--block", "32"), None,
                          "ORT MatMulNBits int4 sym"),
    "ort-nbits-b32-asym": ("ORT MatMulNBitsQuantizer block 32 (class default: asymmetric)",
                           peer("nbits", "--block", "32", "--asymmetric"), None, "ORT MatMulNBits int4 asym"),
    "ort-nbits-b32-qdq": ("ORT MatMulNBitsQuantizer block 32 symmetric QDQ",
                          peer("nbits", "--block", "32", "--qdq"), None, "ORT DQ int4 + MatMul"),
    "ort-nbits-b128-sym": ("ORT MatMulNBitsQuantizer block 128 symmetric", peer("nbits", "--block", "128"),
                           None, "ORT MatMulNBits int4 sym block 128"),
    "ort-nbits-b128-asym": ("ORT MatMulNBitsQuantizer block 128 (class default: asymmetric)",
                            peer("nbits", "--block", "128", "--asymmetric"), None,
                            "ORT MatMulNBits int4 asym block 128"),
}

ROWS.update({
    "ours-fp16": ("ours fp16 check=none (a streaming cast)", ours("fp16:check=none"), "ort-fp16", "fp16"),
    "ours-fp16-measure": ("ours fp16 (default: check=measure on synthesized inputs)", ours("fp16"), "ort-fp16", "fp16"),
    "ort-fp16": ("ORT float16.convert_float_to_float16 keep_io_types=True", peer("fp16"), None, "fp16"),
})

PRESETS = {
    # issue 17: float16 conversion against ONNX Runtime's converter
    "fp16": ["cp", "ours-fp16", "ours-fp16-measure", "ort-fp16"],
    "fp16-eval": ["fp32", "ours-fp16", "ours-fp16-measure", "ort-fp16"],
    # issue #8's list: cp, round trip, int8 per-channel, 4-bit block 32, and ORT's quantizers
    "issue8": ["cp", "ours-roundtrip", "ours-int8-auto", "ours-int8", "ort-dyn-channel",
               "ours-int4-b32", "ours-int4-b32-none", "ort-nbits-b32-sym"],
    "speed": ["cp", "ours-int8", "ours-int8-tensor", "ours-int8-dynamic", "ort-dyn-channel", "ort-dyn-tensor",
              "ours-int4-b32", "ours-int4-b32-none", "ours-int4-b32-matmul", "ours-int4-b32-matmul-none",
              "ort-nbits-b32-sym", "ort-nbits-b32-asym"],
    "bert": ["fp32", "ours-int8", "ours-int8-tensor", "ours-int8-dynamic", "ort-dyn-channel", "ort-dyn-tensor",
             "ours-int4-b32", "ours-int4-b32-none", "ours-int4-b32-matmul", "ours-int4-b32-matmul-none",
             "ort-nbits-b32-sym", "ort-nbits-b32-asym",
             # latency per output form / op type
             "ours-int8-matmul", "ours-int8-gather", "ours-int4-b32-acc4", "ours-int4-b32-dq",
             "ours-int4-b32-dq-matmul", "ours-int4-b32-gather", "ort-nbits-b32-qdq"],
    # ONNX Runtime latency per output form, one op type at a time (run with more --eval-runs)
    "bert-latency": ["fp32", "ours-int8-matmul", "ort-dyn-matmul", "ours-int4-b32-matmul", "ort-nbits-b32-sym",
                     "ours-int4-b32-acc4-matmul", "ours-int4-b32-dq-matmul", "ort-nbits-b32-qdq",
                     "ours-int8-gather", "ort-dyn-gather", "ours-int4-b32-gather",
                     "ours-int8", "ort-dyn-channel", "ours-int4-b32", "ours-int4-b32-acc4", "ours-int4-b32-dq"],
    "charlm-latency": ["fp32", "ours-int8-matmul", "ort-dyn-matmul", "ours-int4-b32-matmul", "ort-nbits-b32-sym",
                       "ours-int4-b32-acc4-matmul", "ours-int4-b32-dq-matmul", "ort-nbits-b32-qdq",
                       "ours-int8-gather", "ort-dyn-gather", "ours-int4-b32-gather",
                       "ours-int8", "ort-dyn-channel", "ours-int4-b32", "ours-int4-b32-acc4", "ours-int4-b32-dq"],
    "digits": ["fp32", "ours-int8", "ours-int8-tensor", "ours-int8-dynamic", "ort-dyn-channel", "ort-dyn-tensor",
               "ours-int8-conv", "ours-int8-gemm", "ours-int4-b32", "ours-int4-b32-conv", "ours-int4-b32-gemm"],
    "charlm": ["fp32", "ours-int8", "ours-int8-tensor", "ours-int8-dynamic", "ort-dyn-channel", "ort-dyn-tensor",
               "ours-int8-matmul",
               "ours-int4-b32", "ours-int4-b32-none", "ours-int4-b32-matmul", "ours-int4-b32-matmul-none",
               "ort-nbits-b32-sym", "ort-nbits-b32-asym",
               "ours-int4-b128", "ours-int4-b128-matmul", "ort-nbits-b128-sym", "ort-nbits-b128-asym",
               "ours-int4-b32-acc4", "ours-int4-b32-dq", "ours-int4-b32-dq-matmul", "ort-nbits-b32-qdq"],
}


def list_passes(binpath):
    return subprocess.run(["node", binpath, "compress", "--list-passes"], capture_output=True, text=True,
                          cwd=ROOT).stdout


def has_dynamic(passes_text):
    # `--quantize int8` block, a `mode=...` option naming dynamic
    m = re.search(r"--quantize int8:.*?(?=\n--quantize |\Z)", passes_text, re.S)
    return bool(m and re.search(r"mode=[^\s]*dynamic", m.group(0)))


def int8_default_auto(passes_text):
    # `--quantize int8` block whose mode option defaults to auto (integer MatMul/Gemm)
    m = re.search(r"--quantize int8:.*?(?=\n--quantize |\Z)", passes_text, re.S)
    return bool(m and re.search(r"mode=\S+ \(default auto\)", m.group(0)))


def pick_rows(a, X, default_preset):
    rows = a.rows.split(",") if a.rows else PRESETS[a.preset or default_preset]
    dropped = []
    if "ours-int8-dynamic" in rows and not X["dynamic"]:
        rows = [r for r in rows if r != "ours-int8-dynamic"]
        dropped.append("ours-int8-dynamic (this build's --list-passes has no int8 mode=dynamic)")
    for r in rows:
        if r != "fp32" and r not in ROWS:
            sys.exit(f"unknown row {r}; known: {', '.join(ROWS)}")
    return rows, dropped


def argv_for(row, X, model, out):
    return [x.replace("{model}", model).replace("{out}", out) for x in ROWS[row][1](X)]


def out_bytes(path):
    n = os.path.getsize(path) if os.path.exists(path) else None
    if n is not None and os.path.exists(path + ".data"):
        n += os.path.getsize(path + ".data")
    return n


def machine(load_start, load_end, busy_start, busy_end):
    ort = rt.version([VENV_PY, "-c", "import onnxruntime,onnx;print(onnxruntime.__version__, onnx.__version__)"])
    ort_node = None
    try:
        with open(os.path.join(ROOT, "node_modules", "onnxruntime-node", "package.json")) as f:
            ort_node = json.load(f).get("version")
    except OSError:
        pass
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "mem_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "platform": platform.platform(),
        "node": rt.version(["node", "--version"]),
        "python": platform.python_version(),
        "python_onnxruntime_onnx": ort,
        "onnxruntime_node": ort_node,
        "rss_method": "GNU time %M" if rt.GNU_TIME else "os.wait4 ru_maxrss (includes ~30 MB harness floor)",
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "busy_processes_start": busy_start,
        "busy_processes_end": busy_end,
    }


def setup(a):
    model = os.path.abspath(a.model)
    name = os.path.splitext(os.path.basename(model))[0]
    if name == "model":  # fixtures/<name>/model.onnx
        name = os.path.basename(os.path.dirname(model))
    tree = os.path.abspath(a.onnxpress)
    binpath = os.path.join(tree, "bin", "onnxpress")
    if not os.path.exists(os.path.join(tree, "dist", "cli", "main.js")):
        sys.exit(f"{tree}/dist/ is missing: run `npx tsc -p .` there (or bench/build-ref.sh)")
    passes = list_passes(binpath)
    X = {"bin": binpath, "dynamic": has_dynamic(passes), "int8_auto": int8_default_auto(passes)}
    outdir = os.path.abspath(a.outdir or os.path.join(ROOT, "bench", "out", "quant", name))
    os.makedirs(outdir, exist_ok=True)
    return model, name, tree, X, outdir, passes


def warn_busy():
    load = os.getloadavg()
    busy = rt.busy_processes()
    if load[0] > 1.5 or busy:
        print(f"WARNING: the machine is busy (load {load[0]:.2f}): {busy}; timings will be noisy", flush=True)
    return load, busy


def cmd_speed(a):
    model, name, tree, X, outdir, passes = setup(a)
    rows, dropped = pick_rows(a, X, "speed")
    size = os.path.getsize(model)
    build_start = rt.build_info(tree)
    load_start, busy_start = warn_busy()
    print(f"model {model} ({size / 1e6:.1f} MB); rows {rows}" + (f"; dropped {dropped}" if dropped else ""),
          flush=True)
    print(f"build {json.dumps(build_start)}", flush=True)
    rt.warm(model)

    def one(k):
        out = os.path.join(outdir, f"{k}.onnx")
        for p in (out, out + ".data"):
            if os.path.exists(p):
                os.unlink(p)
        os.sync()
        res = rt.run_measured(argv_for(k, X, model, out))
        os.sync()
        return out, res

    warmups = []
    for r in range(a.warmup_rounds):
        for k in rows:
            _, (wall, rss, rc, _, se) = one(k)
            warmups.append({"round": r + 1, "row": k, "wall_s": wall, "peak_rss_bytes": rss, "exit_code": rc})
            print(f"  warm-up {r + 1} {k:28s} {wall:7.2f}s rc={rc} (untimed)"
                  + (f"\n    stderr: {se.strip()[-800:]}" if rc else ""), flush=True)

    runs = {k: [] for k in rows}
    for r in range(a.runs):
        for k in rows:
            load = os.getloadavg()[0]
            out, (wall, rss, rc, so, se) = one(k)
            rec = {"run": r + 1, "wall_s": wall, "peak_rss_bytes": rss, "exit_code": rc, "loadavg_1m_before": load,
                   "output_bytes": out_bytes(out) if rc == 0 else None}
            if rc != 0:
                rec["stderr"] = se[-4000:]
                rec["stdout"] = so[-4000:]
            elif k.startswith("ort-"):
                try:
                    rec["phases"] = json.loads(so.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    rec["stdout"] = so[-2000:]
            elif k.startswith("ours-"):
                m = re.search(r"passes\s+(.*)", so)
                rec["passes_line"] = m.group(1).strip() if m else None
            runs[k].append(rec)
            print(f"  run {r + 1} {k:28s} {wall:7.2f}s  peak RSS {rss / 1e6:8.1f} MB  "
                  f"out {(rec['output_bytes'] or 0) / 1e6:7.1f} MB  rc={rc}"
                  + (f"\n    stderr: {se.strip()[-800:]}" if rc else ""), flush=True)
    build_end = rt.build_info(tree)
    load_end, busy_end = os.getloadavg(), rt.busy_processes()

    summary = {}
    for k in rows:
        ok = [x for x in runs[k] if x["exit_code"] == 0]
        walls = [x["wall_s"] for x in ok]
        summary[k] = {
            "label": ROWS[k][0],
            "command": " ".join(shlex.quote(x) for x in argv_for(k, X, "MODEL", "OUT")),
            "ok_runs": len(ok),
            "median_wall_s": statistics.median(walls) if ok else None,
            "min_wall_s": min(walls) if ok else None,
            "max_wall_s": max(walls) if ok else None,
            "walls_s": [x["wall_s"] for x in runs[k]],
            "max_peak_rss_bytes": max(x["peak_rss_bytes"] for x in runs[k]),
            "output_bytes": ok[-1]["output_bytes"] if ok else None,
            "peer": ROWS[k][2],
        }
        ph = [x["phases"] for x in ok if "phases" in x]
        if ph:
            summary[k]["median_phases_s"] = {p: statistics.median(x[p] for x in ph)
                                             for p in ph[0] if p.endswith("_s")}
        pl = [x.get("passes_line") for x in ok if x.get("passes_line")]
        if pl:
            summary[k]["passes_line"] = pl[-1]
    cp_t = summary.get("cp", {}).get("median_wall_s")
    for k, s in summary.items():
        m = s["median_wall_s"]
        s["ratio_vs_cp"] = m / cp_t if m and cp_t else None
        p = s["peer"]
        pm = summary.get(p, {}).get("median_wall_s") if p else None
        s["peer_speedup"] = pm / m if m and pm else None  # peer time / ours: >1 means ours is faster
        s["output_vs_peer"] = (s["output_bytes"] / summary[p]["output_bytes"]
                               if p in summary and s["output_bytes"] and summary[p]["output_bytes"] else None)

    lines = [
        f"Model `{os.path.relpath(model, ROOT)}` ({size / 1e6:.1f} MB); {a.warmup_rounds} untimed warm-up round(s), "
        f"then {a.runs} timed runs of each row, interleaved; median wall time, max peak RSS. onnxpress "
        f"{build_start['commit']}" + (f" (pinned build in {build_start['tree']})" if build_start["pinned"] else
                                      " (live checkout dist/)") + ".",
        "",
        "| row | median s | runs s | vs cp | peer | peer s / ours s | peak RSS MB | output MB | output / peer |",
        "|---|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for k in rows:
        s = summary[k]
        if s["median_wall_s"] is None:
            lines.append(f"| {s['label']} | failed | | | | | {s['max_peak_rss_bytes'] / 1e6:.0f} | | |")
            continue
        runs_s = " ".join(f"{w:.2f}" for w in s["walls_s"])
        peer_label = ROWS[s["peer"]][0] if s["peer"] in summary else ""
        speedup = f"{s['peer_speedup']:.2f}×" if s["peer_speedup"] else ""
        vs_peer = f"{s['output_vs_peer']:.3f}" if s["output_vs_peer"] else ""
        lines.append(
            f"| {s['label']} | {s['median_wall_s']:.2f} | {runs_s} | {s['ratio_vs_cp']:.1f}× | {peer_label} | "
            f"{speedup} | {s['max_peak_rss_bytes'] / 1e6:.0f} | {s['output_bytes'] / 1e6:.1f} | {vs_peer} |")
    lines.append("")
    lines.append(load_sentence(load_start, load_end, busy_start, busy_end))
    lines += caveats(dropped, build_start, build_end)
    table = "\n".join(lines)
    print()
    print(table)
    result = {
        "benchmark": "quantize-speed",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "model": {"path": os.path.relpath(model, ROOT), "bytes": size},
        "runs_per_row": a.runs, "warmup_rounds": a.warmup_rounds, "warmups": warmups,
        "rows": rows, "rows_dropped": dropped,
        "commands": {k: summary[k]["command"] for k in rows},
        "machine": machine(load_start, load_end, busy_start, busy_end),
        "build": {"start": build_start, "end": build_end, "int8_mode_dynamic": X["dynamic"], "int8_default_auto": X["int8_auto"]},
        "list_passes": passes,
        "summary": summary, "runs": runs, "outputs_dir": os.path.relpath(outdir, ROOT), "markdown": table,
    }
    json_path = a.json or os.path.join(ROOT, "bench", "out", f"quantize-speed-{name}.json")
    with open(json_path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {os.path.relpath(json_path, ROOT)}; outputs kept in {os.path.relpath(outdir, ROOT)}")


def cmd_eval(a, eval_args):
    model, name, tree, X, outdir, passes = setup(a)
    rows, dropped = pick_rows(a, X, name if name in PRESETS else "bert")
    build_start = rt.build_info(tree)
    load_start, busy_start = warn_busy()
    print(f"model {model}; rows {rows}" + (f"; dropped {dropped}" if dropped else ""), flush=True)
    made = {}
    results = {}
    for k in rows:
        if k == "fp32":
            out = model
        else:
            out = os.path.join(outdir, f"{k}.onnx")
            if a.remake or not os.path.exists(out):
                for p in (out, out + ".data"):
                    if os.path.exists(p):
                        os.unlink(p)
                wall, rss, rc, so, se = rt.run_measured(argv_for(k, X, model, out))
                made[k] = {"wall_s": wall, "peak_rss_bytes": rss, "exit_code": rc, "stderr": se[-2000:] if rc else None}
                print(f"  made {k:28s} {wall:6.2f}s rc={rc} (untimed here)", flush=True)
                if rc != 0:
                    results[k] = {"exit_code": rc, "stage": "quantize", "stderr": se[-4000:], "stdout": so[-2000:]}
                    print(f"    FAILED: {se.strip()[-800:]}", flush=True)
                    continue
        argv = ["node", X["bin"], "eval", out, "--reference", model, "--json", "--no-gzip", "--runs", str(a.eval_runs),
                "--seed", "0", "--threads", "1", *eval_args]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        p = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        rec = {"command": " ".join(shlex.quote(os.path.relpath(x, ROOT) if os.path.isabs(x) else x) for x in argv),
               "exit_code": p.returncode, "wall_s": wall, "loadavg_1m_before": load, "output_bytes": out_bytes(out)}
        if p.returncode != 0:
            rec.update(stage="eval", stderr=p.stderr[-4000:], stdout=p.stdout[-2000:])
            print(f"  eval {k:28s} FAILED rc={p.returncode}: {p.stderr.strip()[-800:]}", flush=True)
        else:
            try:
                rep = json.loads(p.stdout)
                rec["accuracy"] = rep.get("accuracy")
                rec["latency"] = rep.get("latency")
                rec["sizeRatio"] = rep.get("sizeRatio")
                rec["output_parameters"] = rep.get("output", {}).get("parameters")
            except ValueError:
                rec.update(stage="parse", stdout=p.stdout[-4000:], stderr=p.stderr[-2000:])
            acc, lat = rec.get("accuracy") or {}, rec.get("latency") or {}
            fid = acc.get("fidelity") or {}
            worst = min(fid.values(), key=lambda f: f.get("cosine", 1)) if fid else {}
            print(f"  eval {k:28s} {acc.get('metric')} {acc.get('reference')} -> {acc.get('compressed')}  "
                  f"cos {worst.get('cosine')}  latency ratio {lat.get('ratio')}  ({wall:.1f}s)", flush=True)
        results[k] = rec
    build_end = rt.build_info(tree)
    load_end, busy_end = os.getloadavg(), rt.busy_processes()

    # tables
    metric = next((r["accuracy"]["metric"] for r in results.values() if r.get("accuracy")), None)
    outs = []
    for r in results.values():
        for o in (r.get("accuracy") or {}).get("fidelity", {}):
            if o not in outs:
                outs.append(o)
    head = "| row | output size | "
    if metric == "top1":
        head += "top-1 | drop (points) | "
    elif metric == "perplexity":
        head += "perplexity | rel. increase | "
    head += " | ".join(f"cosine `{o}` | SNR dB `{o}`" for o in outs)
    head += " | ORT ms (fp32 → this) | latency ratio |"
    lines = [head, "|" + "---|" + "---:|" * (head.count("|") - 2)]
    for k in rows:
        r = results.get(k, {})
        label = "fp32 (the model itself)" if k == "fp32" else ROWS[k][0]
        if r.get("exit_code") != 0 or not r.get("accuracy"):
            lines.append(f"| {label} | failed at {r.get('stage')} (rc {r.get('exit_code')}) |")
            continue
        acc, lat = r["accuracy"], r.get("latency") or {}
        cells = [label, f"{r['output_bytes'] / 1e6:.2f}" if r["output_bytes"] > 1e6 else f"{r['output_bytes'] / 1e3:.1f} kB"]
        if metric == "top1":
            cells += [f"{acc['reference']:.4f} → {acc['compressed']:.4f}", f"{acc['drop'] * 100:+.2f}"]
        elif metric == "perplexity":
            cells += [f"{acc['reference']:.4f} → {acc['compressed']:.4f}", f"{acc['drop'] * 100:+.2f}%"]
        for o in outs:
            f = acc["fidelity"].get(o, {})
            snr = f.get("snrDb")
            cells += [f"{f.get('cosine', float('nan')):.6f}",
                      f"{snr:.1f}" if isinstance(snr, (int, float)) and snr < 1e6 else "∞" if snr is None or
                      isinstance(snr, (int, float)) or "inf" in str(snr).lower() else str(snr)]
        if lat:
            cells += [f"{lat['reference']['meanMs']:.2f} → {lat['compressed']['meanMs']:.2f}", f"{lat['ratio']:.3f}"]
        else:
            cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"`onnxpress eval OUT --reference {os.path.relpath(model, ROOT)} --json --no-gzip --runs {a.eval_runs} "
                 f"--seed 0 --threads 1 {' '.join(eval_args)}`; latency: mean of {a.eval_runs} runs after 5 warm-up, "
                 f"reference and compressed alternated in one process. "
                 + load_sentence(load_start, load_end, busy_start, busy_end))
    lines += caveats(dropped, build_start, build_end)
    table = "\n".join(lines)
    print()
    print(table)
    result = {
        "benchmark": "quantize-eval",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "model": {"path": os.path.relpath(model, ROOT), "bytes": os.path.getsize(model)},
        "eval_args": eval_args, "eval_runs": a.eval_runs, "rows": rows, "rows_dropped": dropped,
        "commands": {k: " ".join(shlex.quote(x) for x in argv_for(k, X, "MODEL", "OUT")) for k in rows if k != "fp32"},
        "made_here": made,
        "machine": machine(load_start, load_end, busy_start, busy_end),
        "build": {"start": build_start, "end": build_end, "int8_mode_dynamic": X["dynamic"], "int8_default_auto": X["int8_auto"]},
        "results": results, "markdown": table,
    }
    suffix = f"-{a.preset}" if a.preset and a.preset != name else ""
    json_path = a.json or os.path.join(ROOT, "bench", "out", f"quantize-eval-{name}{suffix}.json")
    with open(json_path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {os.path.relpath(json_path, ROOT)}")


def main():
    argv = sys.argv[1:]
    eval_args = []
    if "--" in argv:
        i = argv.index("--")
        argv, eval_args = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["speed", "eval"])
    ap.add_argument("model")
    ap.add_argument("--onnxpress", default=ROOT, metavar="DIR",
                    help="tree whose bin/onnxpress is measured (default: this checkout); see bench/build-ref.sh")
    ap.add_argument("--rows", help="comma-separated row keys (default: the preset's)")
    ap.add_argument("--preset", choices=list(PRESETS), help="default row set (speed: speed; eval: by model name)")
    ap.add_argument("--runs", type=int, default=3, help="speed: timed runs per row (default 3)")
    ap.add_argument("--warmup-rounds", type=int, default=1, help="speed: untimed rounds first (default 1)")
    ap.add_argument("--eval-runs", type=int, default=10, help="eval: --runs passed to onnxpress eval (default 10)")
    ap.add_argument("--remake", action="store_true", help="eval: remake every output even if present")
    ap.add_argument("--outdir", help="where outputs go (default bench/out/quant/<model>)")
    ap.add_argument("--json", help="JSON output path")
    a = ap.parse_args(argv)
    if a.what == "speed":
        cmd_speed(a)
    else:
        cmd_eval(a, eval_args)


if __name__ == "__main__":
    main()
