"""Larger than memory, shown: compress an external-data model several times the size of a memory cgroup.

Generates (once) a decoder-like stack of residual MLP blocks whose fp32 weights fill an external data file
(numpy, random weights, written one matrix at a time), then runs `onnxpress compress` on it with int8 and
int4 inside a memory cgroup (cgroup v1 `memory.limit_in_bytes` or v2 `memory.max`, whichever this machine
has: the script prints which), next to `cp` of the same files in the same cgroup. Each output is then run
in ONNX Runtime (outside the cgroup) on a one-token input and compared with a float64 numpy forward pass
that streams the original weights from the data file (np.memmap), so neither check needs the model in memory.

    .venv/bin/python bench/larger-than-memory.py [--gb 6] [--limit-mib 1024] [--dir bench/out/big] [--runs 1]

Needs root (to create the cgroup) and GNU time (peak RSS). Writes bench/out/big/result.json.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D = 4096
FFN = 16384
MATRIX_BYTES = D * FFN * 4


def build(path: str, blocks: int) -> None:
    """x ← x + Relu(x·W1ᵢ)·W2ᵢ for i < blocks; W1 ~ N(0, 1/D), W2 ~ N(0, 1/FFN) so values stay moderate."""
    data_name = os.path.basename(path) + ".data"
    data_path = os.path.join(os.path.dirname(path), data_name)
    rng = np.random.default_rng(0)
    inits, nodes, offset = [], [], 0
    x = "x"
    with open(data_path, "wb") as f:
        for i in range(blocks):
            for name, shape, std in ((f"block{i}.w1", (D, FFN), 1 / math.sqrt(D)), (f"block{i}.w2", (FFN, D), 1 / math.sqrt(FFN))):
                w = rng.standard_normal(shape, dtype=np.float32)
                w *= np.float32(std)
                f.write(w.tobytes())
                t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape)
                t.data_location = TensorProto.EXTERNAL
                for k, v in (("location", data_name), ("offset", str(offset)), ("length", str(w.nbytes))):
                    e = t.external_data.add()
                    e.key, e.value = k, v
                inits.append(t)
                offset += w.nbytes
            nodes += [
                helper.make_node("MatMul", [x, f"block{i}.w1"], [f"h{i}"]),
                helper.make_node("Relu", [f"h{i}"], [f"r{i}"]),
                helper.make_node("MatMul", [f"r{i}", f"block{i}.w2"], [f"y{i}"]),
                helper.make_node("Add", [x, f"y{i}"], [f"x{i + 1}"]),
            ]
            x = f"x{i + 1}"
            print(f"  block {i + 1}/{blocks} written ({offset / 2**30:.2f} GiB)", flush=True)
    nodes.append(helper.make_node("Identity", [x], ["out"]))
    graph = helper.make_graph(
        nodes, "big_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", D])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", D])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="bench/larger-than-memory.py")
    model.ir_version = 10
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def reference(path: str, blocks: int, x: np.ndarray) -> np.ndarray:
    """The fp32 model's output in float64, streaming each weight from the data file."""
    data = np.memmap(path + ".data", dtype=np.float32, mode="r")
    y = x.astype(np.float64)
    per = D * FFN
    for i in range(blocks):
        w1 = np.asarray(data[2 * i * per:(2 * i + 1) * per]).reshape(D, FFN)
        w2 = np.asarray(data[(2 * i + 1) * per:(2 * i + 2) * per]).reshape(FFN, D)
        y = y + np.maximum(y @ w1, 0) @ w2
    return y


class Cgroup:
    """A child memory cgroup with a hard limit; `prefix` runs a command inside it."""

    def __init__(self, limit: int):
        self.limit = limit
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            self.kind, self.path = "v2", "/sys/fs/cgroup/onnxpress-bench"
            os.makedirs(self.path, exist_ok=True)
            self._write("memory.max", str(limit))
            self._write("memory.swap.max", "0")
        elif os.path.isdir("/sys/fs/cgroup/memory"):
            self.kind, self.path = "v1", "/sys/fs/cgroup/memory/onnxpress-bench"
            os.makedirs(self.path, exist_ok=True)
            self._write("memory.limit_in_bytes", str(limit))
        else:
            sys.exit("no cgroup memory controller (v1 or v2) on this machine")

    def _write(self, name: str, value: str) -> None:
        try:
            with open(os.path.join(self.path, name), "w") as f:
                f.write(value)
        except OSError as e:
            if name != "memory.swap.max":
                raise SystemExit(f"cannot set {name} in {self.path}: {e} (run as root)")

    def _read(self, name: str) -> str | None:
        try:
            with open(os.path.join(self.path, name)) as f:
                return f.read().strip()
        except OSError:
            return None

    def reset_peak(self) -> None:
        if self.kind == "v1":
            self._write("memory.max_usage_in_bytes", "0")
            self._write("memory.failcnt", "0")
        else:
            self._write("memory.peak", "0") if self._read("memory.peak") is not None else None

    def peak(self) -> int | None:
        v = self._read("memory.max_usage_in_bytes" if self.kind == "v1" else "memory.peak")
        return int(v) if v and v.isdigit() else None

    def ooms(self) -> int:
        if self.kind == "v1":
            ctl = self._read("memory.oom_control") or ""
            return next((int(line.split()[1]) for line in ctl.splitlines() if line.startswith("oom_kill ")), 0)
        ev = self._read("memory.events") or ""
        return next((int(line.split()[1]) for line in ev.splitlines() if line.startswith("oom_kill ")), 0)

    def run(self, argv: list[str]) -> dict:
        self.reset_peak()
        before = self.ooms()
        timed = ["/usr/bin/time", "-f", "%M"] if os.path.exists("/usr/bin/time") else []
        wrapped = ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "sh", *timed, *argv]
        t0 = time.perf_counter()
        p = subprocess.run(wrapped, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        rss = None
        if timed and p.stderr.strip():
            last = p.stderr.strip().splitlines()[-1]
            rss = int(last) * 1024 if last.isdigit() else None
        return {"argv": argv, "rc": p.returncode, "wall_s": round(wall, 2), "peak_rss": rss,
                "cgroup_peak": self.peak(), "oom_kills": self.ooms() - before,
                "stderr_tail": p.stderr.strip().splitlines()[-3:]}


def drop_caches() -> None:
    subprocess.run(["sync"])
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
    except OSError:
        pass


def files_bytes(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + ".data") if os.path.exists(p))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=6.0, help="fp32 weight bytes to generate, in GB (10^9)")
    ap.add_argument("--limit-mib", type=int, default=1024)
    ap.add_argument("--dir", default=os.path.join(ROOT, "bench", "out", "big"))
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    blocks = max(1, math.ceil(args.gb * 1e9 / (2 * MATRIX_BYTES)))
    os.makedirs(args.dir, exist_ok=True)
    model = os.path.join(args.dir, f"mlp_{blocks}x{D}x{FFN}.onnx")
    if not os.path.exists(model + ".data") or os.path.getsize(model + ".data") != 2 * blocks * MATRIX_BYTES:
        print(f"generating {model} ({2 * blocks * MATRIX_BYTES / 1e9:.2f} GB of fp32 weights)", flush=True)
        build(model, blocks)
    size = files_bytes(model)
    cg = Cgroup(args.limit_mib * 2**20)
    print(f"cgroup {cg.kind}: {cg.path} limited to {args.limit_mib} MiB; model {size / 1e9:.2f} GB "
          f"({size / cg.limit:.1f}× the limit)", flush=True)

    cp_out = os.path.join(args.dir, "cp-copy.onnx")
    rows = {
        "cp": ["sh", "-c", f'cp "{model}" "{cp_out}" && cp "{model}.data" "{cp_out}.data"'],
        "int8": ["node", "bin/onnxpress", "compress", model, "-o", os.path.join(args.dir, "out-int8.onnx"),
                 "--quantize", "int8", "--force", "--json"],
        "int4": ["node", "bin/onnxpress", "compress", model, "-o", os.path.join(args.dir, "out-int4.onnx"),
                 "--quantize", "int4", "--force", "--json"],
    }
    results: dict[str, list[dict]] = {k: [] for k in rows}
    for r in range(args.runs):
        for name, argv in rows.items():
            drop_caches()  # every row starts from disk: the model cannot stay cached in a 1 GiB cgroup anyway
            res = cg.run(argv)
            results[name].append(res)
            print(f"  run {r + 1} {name}: rc {res['rc']} {res['wall_s']} s, peak RSS "
                  f"{(res['peak_rss'] or 0) / 2**20:.0f} MiB, cgroup peak {(res['cgroup_peak'] or 0) / 2**20:.0f} MiB, "
                  f"oom kills {res['oom_kills']}", flush=True)
            if res["rc"] != 0:
                print("\n".join(res["stderr_tail"]))
    shutil.rmtree(cp_out, ignore_errors=True) if os.path.isdir(cp_out) else None
    for p in (cp_out, cp_out + ".data"):
        if os.path.exists(p):
            os.remove(p)

    import onnxruntime as ort
    x = np.random.default_rng(1).standard_normal((1, D), dtype=np.float32)
    ref = reference(model, blocks, x).ravel()
    checks = {}
    for name in ("int8", "int4"):
        out = os.path.join(args.dir, f"out-{name}.onnx")
        if results[name][-1]["rc"] != 0:
            continue
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        sess = ort.InferenceSession(out, so, providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x": x})[0].astype(np.float64).ravel()
        del sess
        cos = float(got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref)))
        checks[name] = {"output_bytes": files_bytes(out), "cosine_vs_fp32": round(cos, 6),
                        "ratio": round(files_bytes(out) / size, 4)}
        print(f"  {name}: output {files_bytes(out) / 1e9:.2f} GB ({checks[name]['ratio']}×), "
              f"ORT one-token output cosine vs fp32 (numpy, streamed) {cos:.6f}", flush=True)

    med = {k: float(np.median([r["wall_s"] for r in v])) for k, v in results.items()}
    summary = {"cgroup": cg.kind, "limit_bytes": cg.limit, "model": model, "model_bytes": size, "blocks": blocks,
               "median_wall_s": med, "ratio_vs_cp": {k: round(med[k] / med["cp"], 2) for k in med},
               "runs": results, "checks": checks}
    with open(os.path.join(args.dir, "result.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({k: summary[k] for k in ("cgroup", "model_bytes", "median_wall_s", "ratio_vs_cp", "checks")}, indent=1))


if __name__ == "__main__":
    main()
