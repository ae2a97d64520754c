#!/usr/bin/env python3
"""Peer baseline for quantization: ONNX Runtime's own Python quantizers, one per fresh process.

Usage:
  python bench/peer_ort_quantize.py dynamic MODEL OUT [--per-tensor]
      onnxruntime.quantization.quantize_dynamic(MODEL, OUT, per_channel=True|False,
      weight_type=QuantType.QInt8[, op_types_to_quantize=OPS]): int8 weights, activations
      quantized at run time (uint8); MatMul (and, in the outputs seen here, Gemm) ->
      DynamicQuantizeLinear + MatMulInteger, Conv -> ConvInteger, Gather -> DequantizeLinear of
      int8 weights. Default: all its op types (Conv, MatMul, Attention, LSTM, Gather, Transpose,
      EmbedLayerNormalization); `--ops MatMul,Gather` restricts.
  python bench/peer_ort_quantize.py nbits MODEL OUT [--block 32] [--symmetric|--asymmetric]
      [--accuracy-level N] [--qdq]
      MatMulNBitsQuantizer(onnx.load(MODEL), bits=4, block_size=B, is_symmetric=S,
      accuracy_level=A) .process(), then .model.save_model_to_file(OUT) (single file).
      MatMul weights only (its default op_types_to_quantize) -> com.microsoft.MatMulNBits
      (or DequantizeLinear+MatMul with --qdq). The class's own default is is_symmetric=False
      (its command line's default is symmetric); --asymmetric is the class default.

  python bench/peer_ort_quantize.py fp16 MODEL OUT
      onnxruntime.transformers.float16.convert_float_to_float16(onnx.load(MODEL),
      keep_io_types=True): every float32 initializer and value to float16 (its default op block
      list kept in float32 with Casts), graph inputs and outputs float32 — the conversion ONNX
      Runtime's own tools use, and `fp16` with keep-io=true's peer.

  python bench/peer_ort_quantize.py static MODEL OUT --calibration DATA.npz [--method minmax|entropy|percentile]
      quantize_static(MODEL, OUT, reader, quant_format=QuantFormat.QDQ, per_channel=True,
      activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=METHOD)
      with its defaults otherwise (all its op types; CalibPercentile 99.999, as ours): the
      reader yields the .npz's samples one at a time (the first dimension of each array, named
      by the model's inputs), as ONNX Runtime's examples feed it. `onnxpress --quantize
      int8:mode=static,calibration=DATA.npz`'s peer.

  python bench/peer_ort_quantize.py infer MODEL - --calibration DATA.npz
      No quantization: the model's session created and run once on each sample of DATA.npz (2
      threads, not spinning): what any calibration on that data costs at least.

Saves a single-file model (no external data; ORT's quantizers' own __main__ for MatMulNBits
saves with external data, which would make the size comparison meaningless).
Prints one JSON line with the in-process phase timings (import, quantize, save) and versions.
ORT's quantizer logs one INFO line per node to stderr; that is left as is (the harness
captures it to a temporary file), so its cost is part of the measured time, as for a user.
"""
import argparse
import json
import logging
import sys
import time

t0 = time.perf_counter()
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer  # noqa: E402
from onnxruntime.quantization.quant_utils import QuantFormat  # noqa: E402

t1 = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["dynamic", "nbits", "fp16", "static", "infer"])
    ap.add_argument("--calibration", help="static: a .npz of calibration inputs, samples along the first dimension")
    ap.add_argument("--method", choices=["minmax", "entropy", "percentile"], default="minmax")
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--per-tensor", action="store_true")
    ap.add_argument("--ops", help="dynamic: op_types_to_quantize, comma-separated (default: all)")
    ap.add_argument("--block", type=int, default=32)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--symmetric", dest="symmetric", action="store_true", default=True)
    g.add_argument("--asymmetric", dest="symmetric", action="store_false")
    ap.add_argument("--accuracy-level", type=int, default=None)
    ap.add_argument("--qdq", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="silence ORT's per-node INFO logging")
    a = ap.parse_args()
    if a.quiet:
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)

    t2 = time.perf_counter()
    phases = {}
    if a.kind == "dynamic":
        quantize_dynamic(a.model, a.out, per_channel=not a.per_tensor, weight_type=QuantType.QInt8,
                         op_types_to_quantize=a.ops.split(",") if a.ops else None)
        t4 = time.perf_counter()
        phases = {"quantize_and_save_s": t4 - t2}
    elif a.kind == "infer":
        # The floor of any calibration: the model run once on each calibration sample (2 threads, no spinning, as ours).
        import numpy as np
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 2
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
        arrays = dict(np.load(a.calibration))
        for i in range(next(iter(arrays.values())).shape[0]):
            session.run(None, {k: v[i:i + 1] for k, v in arrays.items()})
        phases = {"infer_s": time.perf_counter() - t2}
    elif a.kind == "static":
        import numpy as np
        from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self, path):
                arrays = dict(np.load(path))
                n = next(iter(arrays.values())).shape[0]
                self.samples = iter([{k: v[i:i + 1] for k, v in arrays.items()} for i in range(n)])

            def get_next(self):
                return next(self.samples, None)

        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[a.method]
        quantize_static(a.model, a.out, Reader(a.calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=method)
        phases = {"quantize_and_save_s": time.perf_counter() - t2}
    elif a.kind == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16
        model = onnx.load(a.model)
        t3 = time.perf_counter()
        converted = convert_float_to_float16(model, keep_io_types=True)
        t4 = time.perf_counter()
        onnx.save(converted, a.out)
        t5 = time.perf_counter()
        phases = {"load_s": t3 - t2, "convert_s": t4 - t3, "save_s": t5 - t4}
    else:
        model = onnx.load(a.model)
        t3 = time.perf_counter()
        q = MatMulNBitsQuantizer(
            model,
            bits=4,
            block_size=a.block,
            is_symmetric=a.symmetric,
            accuracy_level=a.accuracy_level,
            quant_format=QuantFormat.QDQ if a.qdq else QuantFormat.QOperator,
        )
        q.process()
        t4 = time.perf_counter()
        q.model.save_model_to_file(a.out, use_external_data_format=False)
        t5 = time.perf_counter()
        phases = {"load_s": t3 - t2, "quantize_s": t4 - t3, "save_s": t5 - t4}
    print(json.dumps({
        "onnxruntime_version": onnxruntime.__version__,
        "onnx_version": onnx.__version__,
        "import_s": t1 - t0,
        **phases,
        "total_in_process_s": time.perf_counter() - t0,
    }))


if __name__ == "__main__":
    sys.exit(main())
