"""Writes ONNX's node backend test cases (model.onnx + test_data_set_N) under a folder, as ONNX's
own data/node folder holds them, from the case definitions in the installed onnx wheel (some
wheels ship the definitions without the data). For exploration and scripts/convert-check.mjs only;
npm test never runs Python.
    .venv/bin/python scripts/backend-node-data.py OUT_DIR
"""
import os
import sys

from onnx import numpy_helper
from onnx.backend.test.case import node as node_cases


def main(out: str) -> None:
    count = 0
    for case in node_cases.collect_testcases(None):
        d = os.path.join(out, case.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        for i, (inputs, outputs) in enumerate(case.data_sets or []):
            s = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(s, exist_ok=True)
            for prefix, values, infos in (("input", inputs, case.model.graph.input), ("output", outputs, case.model.graph.output)):
                for j, value in enumerate(values):
                    if not infos[j].type.HasField("tensor_type"):
                        continue
                    with open(os.path.join(s, f"{prefix}_{j}.pb"), "wb") as f:
                        t = value if hasattr(value, "SerializeToString") else numpy_helper.from_array(value, infos[j].name)
                        f.write(t.SerializeToString())
        count += 1
    print(f"{count} cases written to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
