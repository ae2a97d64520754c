# ONNX Runtime alone running a model on a calibration set: the floor of time and memory for any
# tool that calibrates through ONNX Runtime (our calibrated passes run the same model in an ONNX
# Runtime child, with more outputs). One session (CPU, default options), the set's samples in
# batches of BATCH along the first axis, every output fetched; prints wall seconds, peak RSS and its
# ratio to the model file's bytes.
#   .venv/bin/python bench/ort-floor.py MODEL DATA_DIR [--batch 16]
# DATA_DIR holds test_data_set_*/input_*.pb (ONNX TensorProto, the inputs in the model's order).
import argparse
import glob
import os
import resource
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("data")
ap.add_argument("--batch", type=int, default=16)
a = ap.parse_args()
start = time.perf_counter()
session = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
names = [i.name for i in session.get_inputs()]
runs = 0
for folder in sorted(glob.glob(os.path.join(a.data, "test_data_set_*"))):
    arrays = [numpy_helper.to_array(onnx.load_tensor(os.path.join(folder, f"input_{i}.pb"))) for i in range(len(names))]
    for b in range(0, arrays[0].shape[0], a.batch):
        session.run(None, {n: x[b : b + a.batch] for n, x in zip(names, arrays)})
        runs += 1
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
size = os.path.getsize(a.model)
print(f"{runs} runs of up to {a.batch} samples: {seconds:.2f} s, peak RSS {peak / 2**20:.0f} MiB = {peak / size:.2f}x the model ({size / 1e6:.1f} MB)")
