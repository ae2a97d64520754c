#!/usr/bin/env python3
"""Peer for static int8's latency: ONNX Runtime's own quantize_static on the same model and calibration data.

Usage:
  .venv/bin/python bench/static-peer.py MODEL CALIBRATION_FOLDER OUT

onnxruntime.quantization.quant_pre_process(MODEL) (shape inference and ORT's basic graph
optimizations, as ORT's documentation asks before quantize_static), then quantize_static(
quant_format=QDQ, per_channel=True, activation_type=QUInt8, weight_type=QInt8,
calibrate_method=MinMax) reading CALIBRATION_FOLDER's input_K.pb one sample at a time (what
`--quantize int8:mode=static,calibration=FOLDER` measures ranges on, method=minmax). Saved with IR
version 10 (onnxruntime 1.30 reads no later). Prints the output's size and its ratio to MODEL's.
"""
import glob
import os
import sys

import onnx
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process


class FolderReader(CalibrationDataReader):
    def __init__(self, folder):
        tensors = [onnx.load_tensor(p) for p in sorted(glob.glob(os.path.join(folder, "input_*.pb")))]
        arrays = [numpy_helper.to_array(t) for t in tensors]
        samples = arrays[0].shape[0]
        self.feeds = iter([{t.name: a[i : i + 1] for t, a in zip(tensors, arrays)} for i in range(samples)])

    def get_next(self):
        return next(self.feeds, None)


def main():
    model, calibration, out = sys.argv[1:4]
    prepared = out + ".pre.onnx"
    quant_pre_process(model, prepared, skip_symbolic_shape=True)
    quantize_static(
        prepared,
        out,
        FolderReader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    os.remove(prepared)
    m = onnx.load(out)
    m.ir_version = 10
    onnx.save(m, out)
    print(f"{out}: {os.path.getsize(out)} bytes, {os.path.getsize(out) / os.path.getsize(model):.3f}x of {model}")


if __name__ == "__main__":
    main()
