#!/usr/bin/env python3
"""Benchmark: the unchanged round trip (read a model, write it back, no passes).

Usage (from the repository root):
  .venv/bin/python bench/roundtrip.py bench/models/bert_base.onnx [--runs 3] [--keep]

In ONE run, for the given model file, measures each of these `--runs` times (interleaved
round-robin: cp, dd, ours, [variants], python, cp, dd, ...):
  cp      cp MODEL OUT                 (GNU cp: copy_file_range, in-kernel)
  dd      dd if=MODEL of=OUT bs=1M     (reference only: the same copy through user space)
  ours    node bin/onnxpress compress MODEL -o OUT --force
  python  .venv/bin/python bench/peer_onnx_roundtrip.py MODEL OUT   (onnx.load + onnx.save, fresh process)

Before timing, the model is read once (untimed) so every run sees it in the page cache, then
`--warmup-rounds` (default 1) untimed rounds of every tool are run: on this VM the first runs
after a pause are several times slower for every tool alike (fresh memory being faulted in),
and the warm-up keeps that out of the medians. The warm-up times are kept in the JSON.
Each child is started with subprocess and reaped with os.wait4, so wall time is that of that one
process; peak RSS is its ru_maxrss, taken from GNU time (/usr/bin/time -f %M) when installed
(see run_measured for why). OUT is deleted before each run and `sync` is called
(untimed) after each run so one run's dirty pages are not flushed during the next. None of the
tools fsyncs its output, so the times are to the page cache, not to disk.

Reports median wall seconds and the max peak RSS over the runs, checks (cmp) that our output is
byte-identical to the input (every run), and prints a Markdown table. Writes JSON to
bench/out/roundtrip-<model>.json.

`--onnxpress DIR` measures DIR/bin/onnxpress as `ours` instead of this checkout's (use a pinned
build from bench/build-ref.sh when the checkout is being edited and rebuilt during the run).
`--variant 'LABEL=COMMAND'` adds more rows (COMMAND with {model} and {out}), e.g. an older build
made by bench/build-ref.sh:
  --variant 'onnxpress@5337bd3=node bench/out/ref-5337bd3/bin/onnxpress compress {model} -o {out} --force'
The targets are judged on the `ours` row (the plain command), and, in the JSON, on every onnxpress row.
`--convert OPSET` adds a row `onnxpress convert MODEL -o OUT --opset OPSET --force` (same tree as
`ours`) and prints its median over the round trip's, with the ratio of each round; variants whose
command runs `convert` are reported the same way (neither is compared with the input).

The JSON records which build was measured (commit, dist/'s newest mtime, at start and at end: a
rebuild during the run is flagged), the load average, and any other busy process.

Single-file models only (no external data): cp of the .onnx file is the whole copy.
"""
import argparse
import datetime
import filecmp
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_measured(argv, cwd=ROOT):
    """Runs argv; returns (wall seconds, peak RSS bytes, exit code, stdout, stderr)."""
    return run_measured_cpu(argv, cwd)[:5]


def run_measured_cpu(argv, cwd=ROOT):
    """Runs argv; returns (wall seconds, peak RSS bytes, exit code, stdout, stderr, CPU seconds), the
    CPU seconds being user + system of the command and every child it waited for.

    Wall time: from spawn to reap, measured here. Peak RSS: the child's ru_maxrss, read with
    os.wait4. Linux carries ru_maxrss across exec, so a child forked from this Python process
    starts at this process's RSS (~30 MB), which would hide small peaks (cp, dd). When GNU time is
    installed, the command is run under `/usr/bin/time -f %M` (a small process that forks the
    command), and its figure is used instead; time's own cost is about a millisecond.
    """
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as fr:
        cmd = [GNU_TIME, "-q", "-f", "%M", "-o", fr.name, *argv] if GNU_TIME else argv
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=fo, stderr=fe)
        # os.wait4 (not p.wait) so we get this one child's rusage.
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # tell Popen the child is reaped
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
        rss = ru.ru_maxrss * 1024
        if GNU_TIME:
            try:
                rss = int(fr.read().strip().splitlines()[-1]) * 1024
            except (ValueError, IndexError):
                pass
    return wall, rss, p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), ru.ru_utime + ru.ru_stime


def warm(path):
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


def version(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return None


def fmt_ratio(x):
    return f"{x:.2f}×"


def dist_mtime(tree):
    newest = 0.0
    for d, _, files in os.walk(os.path.join(tree, "dist")):
        for f in files:
            newest = max(newest, os.path.getmtime(os.path.join(d, f)))
    return datetime.datetime.fromtimestamp(newest, datetime.timezone.utc).isoformat()


def build_info(tree):
    """Which onnxpress is measured: a pinned tree from bench/build-ref.sh (its COMMIT file), or the
    live checkout (git HEAD, and whether src/ differs from it)."""
    pinned = os.path.join(tree, "COMMIT")
    if os.path.exists(pinned):
        with open(pinned) as f:
            return {"tree": os.path.relpath(tree, ROOT), "commit": f.read().strip()[:7], "pinned": True,
                    "dist_newest_mtime": dist_mtime(tree)}
    return {
        "tree": os.path.relpath(tree, ROOT),
        "commit": version(["git", "-C", tree, "rev-parse", "--short", "HEAD"]),
        "pinned": False,
        "src_differs_from_head": bool(version(["git", "-C", tree, "status", "--porcelain", "--", "src"])),
        "dist_newest_mtime": dist_mtime(tree),
    }


def busy_processes():
    """Other processes using CPU right now (ps %CPU >= 20), to flag a noisy machine."""
    out = version(["ps", "-eo", "pid=,pcpu=,args="]) or ""
    busy = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and int(parts[0]) != os.getpid():
            try:
                if float(parts[1]) >= 20:
                    busy.append(f"{parts[0]} {parts[1]}% {parts[2][:120]}")
            except ValueError:
                pass
    return busy


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup-rounds", type=int, default=1,
                    help="untimed rounds of every tool before the timed runs (default 1)")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=COMMAND",
                    help="another command to measure; {model} and {out} are substituted")
    ap.add_argument("--convert", type=int, metavar="OPSET",
                    help="also time `onnxpress convert MODEL -o OUT --opset OPSET` (row `convert`, measured by the "
                         "same tree as `ours`; its output is not the input, so no byte comparison) and report "
                         "its median over the round trip's")
    ap.add_argument("--onnxpress", default=ROOT, metavar="DIR",
                    help="tree whose bin/onnxpress is measured as `ours` (default: this checkout and its dist/); "
                         "bench/build-ref.sh makes a pinned one under bench/out/ref-<commit>")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "bench", "out", "tmp"),
                    help="where outputs are written (same file system as the model)")
    ap.add_argument("--json", help="JSON output path (default bench/out/roundtrip-<model>.json)")
    ap.add_argument("--keep", action="store_true", help="keep the last output files")
    a = ap.parse_args()

    model = os.path.abspath(a.model)
    name = os.path.splitext(os.path.basename(model))[0]
    size = os.path.getsize(model)
    if os.path.exists(model + ".data"):
        sys.exit(f"{model}: has external data; this harness measures single-file models only")
    tree = os.path.abspath(a.onnxpress)
    if not os.path.exists(os.path.join(tree, "dist", "cli", "main.js")):
        sys.exit(f"{tree}/dist/ is missing: run `npx tsc -p .` there first")
    os.makedirs(a.workdir, exist_ok=True)
    json_path = a.json or os.path.join(ROOT, "bench", "out", f"roundtrip-{name}.json")
    build_start = build_info(tree)
    load_start = os.getloadavg()
    busy_start = busy_processes()
    if load_start[0] > 1.5 or busy_start:
        print(f"WARNING: the machine is busy (load {load_start[0]:.2f}): {busy_start}; timings will be noisy",
              flush=True)

    ours_cmd = ["node", os.path.join(tree, "bin", "onnxpress"), "compress"]
    tools = {
        "cp": lambda out: ["cp", model, out],
        # Reference only (no target): a copy through user space (read + write, 1 MiB blocks).
        # GNU cp uses copy_file_range, an in-kernel copy that never brings the bytes into the process.
        "dd": lambda out: ["dd", f"if={model}", f"of={out}", "bs=1M", "status=none"],
        "ours": lambda out: [*ours_cmd, model, "-o", out, "--force"],
    }
    labels = {
        "cp": "`cp` (copy_file_range)",
        "dd": "`dd bs=1M` (read+write, reference)",
        "ours": "onnxpress compress (no passes)",
    }
    onnxpress_rows = ["ours"]
    converting = set()  # rows whose output is a converted model, not the input: no byte comparison
    for v in a.variant:
        label, _, cmd = v.partition("=")
        key = "variant_" + re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")
        tools[key] = (lambda cmd: lambda out: [x.replace("{model}", model).replace("{out}", out)
                                               for x in shlex.split(cmd)])(cmd)
        labels[key] = label
        if "convert" in shlex.split(cmd):
            converting.add(key)
        else:
            onnxpress_rows.append(key)
    if a.convert is not None:
        tools["convert"] = lambda out: ["node", os.path.join(tree, "bin", "onnxpress"), "convert", model, "-o", out,
                                        "--opset", str(a.convert), "--force"]
        labels["convert"] = f"onnxpress convert --opset {a.convert}"
        converting.add("convert")
    tools["python"] = lambda out: [VENV_PY, os.path.join(ROOT, "bench", "peer_onnx_roundtrip.py"), model, out]
    labels["python"] = "python onnx.load + onnx.save"

    print(f"model {model} ({size} bytes, {size / 1e6:.1f} MB)", flush=True)
    print(f"build {json.dumps(build_start)}", flush=True)
    t = time.perf_counter()
    warm(model)
    print(f"warm-up read (untimed) {time.perf_counter() - t:.2f}s", flush=True)

    def one(k, mk):
        out = os.path.join(a.workdir, f"{name}.{k}.onnx")
        if os.path.exists(out):
            os.unlink(out)
        os.sync()
        res = run_measured(mk(out))
        os.sync()
        return out, res

    warmups = []
    for r in range(a.warmup_rounds):
        for k, mk in tools.items():
            _, (wall, rss, rc, _, _) = one(k, mk)
            warmups.append({"round": r + 1, "tool": k, "wall_s": wall, "peak_rss_bytes": rss, "exit_code": rc})
            print(f"  warm-up {r + 1} {k:12s} {wall:7.2f}s (untimed)", flush=True)

    runs = {k: [] for k in tools}
    for r in range(a.runs):
        for k, mk in tools.items():
            out, (wall, rss, rc, so, se) = one(k, mk)
            rec = {"run": r + 1, "wall_s": wall, "peak_rss_bytes": rss, "exit_code": rc}
            if rc != 0:
                rec["stderr"] = se[-4000:]
                rec["stdout"] = so[-4000:]
            if rc == 0 and os.path.exists(out):
                rec["output_bytes"] = os.path.getsize(out)
            if rc == 0 and os.path.exists(out) and k not in converting:
                rec["identical"] = filecmp.cmp(model, out, shallow=False)
            if k in converting:
                rec["stdout"] = so.strip()[-4000:]
            if k in onnxpress_rows:
                rec["stdout"] = so.strip()[-4000:]
                rec["tool_says_identical"] = bool(re.search(r"identical\s+yes", so)) if rc == 0 else None
            if k == "python" and rc == 0:
                try:
                    rec["phases"] = json.loads(so.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    rec["stdout"] = so
            runs[k].append(rec)
            print(f"  run {r + 1} {k:12s} {wall:7.2f}s  peak RSS {rss / 1e6:8.1f} MB  rc={rc}"
                  + (f"  identical={rec.get('identical')}" if "identical" in rec else "")
                  + (f"\n    stderr: {se.strip()[-500:]}" if rc != 0 else ""), flush=True)
    build_end = build_info(tree)
    load_end = os.getloadavg()

    summary = {}
    for k, recs in runs.items():
        ok = [x for x in recs if x["exit_code"] == 0]
        summary[k] = {
            "label": labels[k],
            "command": " ".join(shlex.quote(x) for x in tools[k]("OUT")),
            "ok_runs": len(ok),
            "median_wall_s": statistics.median(x["wall_s"] for x in ok) if ok else None,
            "min_wall_s": min(x["wall_s"] for x in ok) if ok else None,
            "max_wall_s": max(x["wall_s"] for x in ok) if ok else None,
            "max_peak_rss_bytes": max(x["peak_rss_bytes"] for x in recs),
            "identical_all_runs": all(x.get("identical") for x in recs) if recs else None,
        }
        if k in converting:
            del summary[k]["identical_all_runs"]
    cp_t = summary["cp"]["median_wall_s"]
    py_t = summary["python"]["median_wall_s"]
    for k, s in summary.items():
        m = s["median_wall_s"]
        s["ratio_vs_cp"] = m / cp_t if m and cp_t else None
        s["ratio_vs_python"] = m / py_t if m and py_t else None
        s["rss_over_model_size"] = s["max_peak_rss_bytes"] / size
    py_phases = [x["phases"] for x in runs["python"] if "phases" in x]
    if py_phases:
        summary["python"]["median_phases_s"] = {p: statistics.median(x[p] for x in py_phases)
                                                for p in ("import_s", "load_s", "save_s")}

    def judge(k):
        s = summary[k]
        m = s["median_wall_s"]
        return {
            "at_least_3x_faster_than_python": bool(m and py_t / m >= 3),
            "speedup_vs_python": py_t / m if m and py_t else None,
            "at_most_2x_cp": bool(m and m <= 2 * cp_t),
            "byte_identical": bool(s["identical_all_runs"]),
            "peak_rss_under_1.5x_file_size": s["rss_over_model_size"] < 1.5,
        }
    targets = {k: judge(k) for k in onnxpress_rows}

    lines = [
        f"Model `{os.path.relpath(model, ROOT)}`: {size:,} bytes ({size / 1e6:.1f} MB); "
        f"{a.warmup_rounds} untimed warm-up round(s), then {a.runs} timed runs of each tool, interleaved; "
        f"median wall time, max peak RSS. onnxpress (`ours`): {build_start['commit']}"
        + (f" (pinned build in {build_start['tree']})" if build_start["pinned"] else " (live checkout dist/)")
        + (" (src/ differs from HEAD)" if build_start.get("src_differs_from_head") else "") + ".",
        "",
        "| tool | median s | vs cp | vs python | peak RSS MB | peak RSS / model size |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k in tools:
        s = summary[k]
        if s["median_wall_s"] is None:
            lines.append(f"| {labels[k]} | failed | | | {s['max_peak_rss_bytes'] / 1e6:.0f} | |")
            continue
        lines.append(f"| {labels[k]} | {s['median_wall_s']:.2f} | {fmt_ratio(s['ratio_vs_cp'])} | "
                     f"{fmt_ratio(s['ratio_vs_python'])} | {s['max_peak_rss_bytes'] / 1e6:.0f} | "
                     f"{s['rss_over_model_size']:.2f}× |")
    lines.append("")
    for k in onnxpress_rows:
        lines.append(f"{labels[k]}: output byte-identical to the input (cmp, every run): "
                     f"{'yes' if summary[k]['identical_all_runs'] else 'NO'}; its own report says identical: "
                     f"{'yes' if all(x.get('tool_says_identical') for x in runs[k]) else 'NO'}.  ")
    if "convert" in summary and summary["convert"]["median_wall_s"] and summary["ours"]["median_wall_s"]:
        c, o = summary["convert"]["median_wall_s"], summary["ours"]["median_wall_s"]
        paired = [x["wall_s"] / y["wall_s"] for x, y in zip(runs["convert"], runs["ours"])
                  if x["exit_code"] == 0 and y["exit_code"] == 0]
        summary["convert"]["ratio_vs_roundtrip"] = c / o
        summary["convert"]["paired_ratios_vs_roundtrip"] = paired
        lines.append(f"convert --opset {a.convert} / round trip (medians): **{c / o:.2f}×** "
                     f"({c:.3f} s / {o:.3f} s; per round: {', '.join(f'{x:.2f}' for x in paired)}).  ")
    for k in sorted(converting - {"convert"}):
        if summary[k]["median_wall_s"] and summary["ours"]["median_wall_s"]:
            summary[k]["ratio_vs_roundtrip"] = summary[k]["median_wall_s"] / summary["ours"]["median_wall_s"]
            lines.append(f"{labels[k]} / round trip (medians): {summary[k]['ratio_vs_roundtrip']:.2f}×.  ")
    lines.append(f"Python's output byte-identical: {'yes' if summary['python']['identical_all_runs'] else 'no'}.")
    if py_phases:
        ph = summary["python"]["median_phases_s"]
        lines.append(f"Python phases (median, in-process): import onnx {ph['import_s']:.2f}s, "
                     f"load {ph['load_s']:.2f}s, save {ph['save_s']:.2f}s.")
    lines.append(f"Load average (1 min) at start {load_start[0]:.2f}, at end {load_end[0]:.2f}"
                 + (f"; other busy processes at start: {len(busy_start)}" if busy_start else "") + ".")
    if build_end != build_start:
        lines.append(f"WARNING: dist/ or HEAD changed during the run: {build_start} -> {build_end}")
    table = "\n".join(lines)
    print()
    print(table)
    print()
    print("targets:", json.dumps(targets, indent=1))

    result = {
        "benchmark": "unchanged-roundtrip",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "model": {"path": os.path.relpath(model, ROOT), "bytes": size},
        "runs_per_tool": a.runs,
        "warmup_rounds": a.warmup_rounds,
        "warmups": warmups,
        "commands": {k: summary[k]["command"] for k in tools},
        "machine": {
            "cpus": os.cpu_count(),
            "mem_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "platform": platform.platform(),
            "node": version(["node", "--version"]),
            "python": platform.python_version(),
            "rss_method": "GNU time %M" if GNU_TIME else "os.wait4 ru_maxrss (includes ~30 MB harness floor)",
            "loadavg_start": load_start,
            "loadavg_end": load_end,
            "busy_processes_start": busy_start,
        },
        "build": {"start": build_start, "end": build_end},
        "summary": summary,
        "targets": targets,
        "runs": runs,
        "markdown": table,
    }
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {os.path.relpath(json_path, ROOT)}")
    if not a.keep:
        for k in tools:
            p = os.path.join(a.workdir, f"{name}.{k}.onnx")
            if os.path.exists(p):
                os.unlink(p)


if __name__ == "__main__":
    main()
