#!/usr/bin/env python3
"""A ResNet-50 with trained-like statistics from ONNX's light model zoo, for bench/static-vs-ort.py.

Usage: .venv/bin/python bench/make_light_resnet.py OUT.onnx

onnx ships `backend/test/data/light/light_resnet50.onnx`: ResNet-50's graph (Caffe2 export, opset 9)
with every weight a ConstantOfShape of one value. This gives it seeded random weights (He-normal
convolutions, BatchNormalization scales 0.5–1, 0.1–0.3 on each residual branch's last one) and sets
each BatchNormalization's mean and variance to those of its input on 8 seeded images, in one pass
over the graph in torch, so every layer's output is normalized as in a trained network. Then the
BatchNormalizations are folded into the Convs before them (as a deployed model has them, and as
ONNX Runtime's quant_pre_process would; both quantizers get the same graph), Sum becomes Add,
Reshape becomes Flatten (so the batch dimension is free: `N`), and the final Softmax is dropped so
the output is the logits. Opset 13, IR 10. Deterministic: the same file every time.
"""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_resnet50.onnx")


def images(seed, n):
    """Smooth seeded images, 3×224×224, about zero mean and unit variance (as normalized photos)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 3, 8, 8, generator=g)
    fine = torch.randn(n, 3, 56, 56, generator=g) * 0.3
    x = F.interpolate(coarse, size=224, mode="bicubic", align_corners=False)
    x = x + F.interpolate(fine, size=224, mode="bilinear", align_corners=False) + 0.05 * torch.randn(n, 3, 224, 224, generator=g)
    return ((x - x.mean()) / x.std()).numpy().astype(np.float32)


def main():
    out = sys.argv[1]
    m = onnx.load(LIGHT)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    rng = np.random.default_rng(0)
    params = {}
    shapes = {n.output[0]: tuple(int(d) for d in inits[n.input[0]]) for n in m.graph.node if n.op_type == "ConstantOfShape"}
    shapes.update({k: v.shape for k, v in inits.items() if not k.endswith("__SHAPE") and "_bn_" in k})
    for name, shape in sorted(shapes.items()):
        if name.endswith("_w_0") and len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            v = rng.normal(0, np.sqrt(2 / fan_in), shape)
        elif name.endswith("_bn_s_0"):
            v = rng.uniform(0.1, 0.3, shape) if "branch2c" in name else rng.uniform(0.5, 1.0, shape)
        elif name.endswith("_bn_b_0"):
            v = rng.normal(0, 0.1, shape)
        elif name.endswith("_bn_rm_0"):
            v = np.zeros(shape)
        elif name.endswith("_bn_riv_0"):
            v = np.ones(shape)
        elif name == "gpu_0/pred_w_0":
            v = rng.normal(0, 1 / np.sqrt(shape[1]), shape)
        elif name == "gpu_0/pred_b_0":
            v = rng.normal(0, 0.01, shape)
        else:
            raise SystemExit(f"unexpected weight {name} {shape}")
        params[name] = v.astype(np.float32)

    # One pass in torch: each BatchNormalization takes its input's statistics, then normalizes.
    env = {"gpu_0/data_0": torch.from_numpy(images(3, 8))}
    P = {k: torch.from_numpy(v) for k, v in params.items()}
    attrs = lambda n: {a.name: helper.get_attribute_value(a) for a in n.attribute}  # noqa: E731
    for n in m.graph.node:
        a = attrs(n)
        if n.op_type == "ConstantOfShape":
            continue
        x = env[n.input[0]]
        if n.op_type == "Conv":
            p = a.get("pads", [0, 0, 0, 0])
            y = F.conv2d(x, P[n.input[1]], stride=a.get("strides", [1, 1]), padding=(p[0], p[1]), groups=a.get("group", 1))
        elif n.op_type == "BatchNormalization":
            mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
            P[n.input[3]], P[n.input[4]] = mean, var
            params[n.input[3]], params[n.input[4]] = mean.numpy(), var.numpy()
            y = F.batch_norm(x, mean, var, P[n.input[1]], P[n.input[2]], False, 0.0, a["epsilon"])
        elif n.op_type == "Relu":
            y = F.relu(x)
        elif n.op_type == "MaxPool":
            y = F.max_pool2d(x, a["kernel_shape"], a["strides"], a["pads"][0])
        elif n.op_type == "AveragePool":
            y = F.avg_pool2d(x, a["kernel_shape"], a["strides"])
        elif n.op_type == "Sum":
            y = sum(env[i] for i in n.input)
        elif n.op_type == "Reshape":
            y = x.flatten(1)
        elif n.op_type == "Gemm":
            y = x @ P[n.input[1]].T + P[n.input[2]]
        elif n.op_type == "Softmax":
            y = x
        else:
            raise SystemExit(f"unexpected op {n.op_type}")
        env[n.output[0]] = y

    # Fold each BatchNormalization into the Conv that alone feeds it.
    producer = {o: n for n in m.graph.node for o in n.output}
    nodes, initializers, renamed = [], [], {}
    folded = set()
    for n in m.graph.node:
        if n.op_type == "BatchNormalization":
            conv = producer[n.input[0]]
            eps = attrs(n)["epsilon"]
            k = params[n.input[1]] / np.sqrt(params[n.input[4]] + eps)
            w = params[conv.input[1]] * k[:, None, None, None]
            b = params[n.input[2]] - params[n.input[3]] * k
            initializers += [numpy_helper.from_array(w.astype(np.float32), conv.input[1]),
                             numpy_helper.from_array(b.astype(np.float32), conv.input[1].replace("_w_0", "_b_0"))]
            folded.add(conv.input[1])
            renamed[n.output[0]] = conv.output[0]
    for n in m.graph.node:
        if n.op_type in ("ConstantOfShape", "BatchNormalization", "Softmax"):
            continue
        ins = [renamed.get(i, i) for i in n.input]
        if n.op_type == "Conv":
            nodes.append(helper.make_node("Conv", ins[:2] + [ins[1].replace("_w_0", "_b_0")], list(n.output), n.name,
                                          **{a.name: helper.get_attribute_value(a) for a in n.attribute}))
        elif n.op_type == "Sum":
            nodes.append(helper.make_node("Add", ins, list(n.output), n.name))
        elif n.op_type == "Reshape":
            nodes.append(helper.make_node("Flatten", ins[:1], list(n.output), n.name, axis=1))
        else:
            nodes.append(helper.make_node(n.op_type, ins, list(n.output), n.name,
                                          **{a.name: helper.get_attribute_value(a) for a in n.attribute}))
    assert all(c in folded for c in (n.input[1] for n in nodes if n.op_type == "Conv"))
    initializers += [numpy_helper.from_array(params[k], k) for k in ("gpu_0/pred_w_0", "gpu_0/pred_b_0")]
    nodes[-1].output[0] = "logits"
    graph = helper.make_graph(
        nodes, "resnet50_light",
        [helper.make_tensor_value_info("gpu_0/data_0", onnx.TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", 1000])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="bench/make_light_resnet.py")
    model.ir_version = 10
    onnx.checker.check_model(model)
    onnx.save(model, out)
    print(f"wrote {out}: {os.path.getsize(out) / 1e6:.1f} MB, {len(nodes)} nodes")


if __name__ == "__main__":
    main()
