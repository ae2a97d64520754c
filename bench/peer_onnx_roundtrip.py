#!/usr/bin/env python3
"""Peer baseline for the unchanged round trip: onnx.load(MODEL) + onnx.save(model, OUT).

Usage: python bench/peer_onnx_roundtrip.py MODEL OUT

Runs in a fresh process (the harness launches it once per measurement). Prints one JSON line
with the in-process phase timings (import, load, save) so the harness can separate interpreter
start-up and `import onnx` from the real work.
"""
import json
import sys
import time

t0 = time.perf_counter()
import onnx  # noqa: E402

t1 = time.perf_counter()


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    t2 = time.perf_counter()
    model = onnx.load(src)
    t3 = time.perf_counter()
    onnx.save(model, dst)
    t4 = time.perf_counter()
    print(json.dumps({
        "onnx_version": onnx.__version__,
        "import_s": t1 - t0,
        "load_s": t3 - t2,
        "save_s": t4 - t3,
    }))


if __name__ == "__main__":
    main()
