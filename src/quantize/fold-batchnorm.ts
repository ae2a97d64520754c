// BatchNormalization folded into the Conv before it, before static quantization: a Conv whose output
// goes through a BatchNormalization cannot be fused into an integer QLinearConv (ONNX Runtime's own
// Conv+BN fusion stops at the QuantizeLinear between them), and the folded Conv computes the same
// function with per-channel weights W·γ/√(σ²+ε) and bias (b − μ)·γ/√(σ²+ε) + β. ONNX Runtime's
// quantization tools ask for the same folding first (quant_pre_process).
import { setData } from '../ir/data.js';
import type { GraphEditor } from '../ir/editor.js';
import type { NameAllocator } from '../ir/names.js';
import { DataType, type NodeProto, type TensorProto } from '../ir/onnx.js';
import { constantTensor, floatValues, makeTensor, numElements, toNumber } from '../ir/tensor.js';

function attribute(node: NodeProto, name: string): number | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a === undefined ? undefined : a.f !== undefined ? a.f : a.i !== undefined ? toNumber(a.i) : undefined;
}

/**
 * Folds every BatchNormalization (inference mode, one output) that alone reads a Conv's output into
 * that Conv, when the Conv's weight and bias and the normalization's parameters are float32
 * initializers nobody else reads. `foldable` says which Convs may change (the pass's selection).
 * Returns the folded Conv nodes.
 */
export function foldBatchNorms(g: GraphEditor, names: NameAllocator, foldable: (conv: NodeProto) => boolean): NodeProto[] {
  const graph = g.graph;
  const outputs = g.outputNames();
  const onlyReader = (value: string, node: NodeProto) => !outputs.has(value) && g.readers(value).every((n) => n === node);
  // A float32 initializer of the graph or the value of a Constant node in it (paddle2onnx's exports
  // keep every weight in Constant nodes), by the name its readers use, with the way to remove it.
  const constantOrInitializer = (name: string | undefined): { name: string; tensor: TensorProto; remove: () => void } | undefined => {
    if (!name) return undefined;
    const t = graph.initializer.find((x) => x.name === name);
    if (t) return t.data_type === DataType.FLOAT ? { name, tensor: t, remove: () => g.removeInitializer(t) } : undefined;
    const producer = g.producer(name);
    const value = producer && constantTensor(producer);
    if (!producer || !value || value.data_type !== DataType.FLOAT || !producer.attribute.some((a) => a.name === 'value')) return undefined;
    return { name, tensor: value, remove: () => g.removeNode(producer) };
  };
  const folded: NodeProto[] = [];
  for (const bn of [...graph.node]) {
    if (bn.op_type !== 'BatchNormalization' || (bn.domain ?? '') !== '' || bn.output.filter((o) => o).length !== 1) continue;
    if ((attribute(bn, 'training_mode') ?? 0) !== 0) continue;
    const conv = g.producer(bn.input[0] ?? '');
    if (conv?.op_type !== 'Conv' || (conv.domain ?? '') !== '' || !foldable(conv) || !onlyReader(conv.output[0]!, bn)) continue;
    const weight = constantOrInitializer(conv.input[1]);
    const bias = conv.input[2] ? constantOrInitializer(conv.input[2]) : undefined;
    const params = bn.input.slice(1, 5).map(constantOrInitializer);
    if (!weight || (conv.input[2] && !bias) || params.some((p) => !p)) continue;
    if (!onlyReader(weight.name, conv) || (bias && !onlyReader(bias.name, conv)) || params.some((p) => !onlyReader(p!.name, bn))) continue;
    // The same tensor read twice (one Constant for γ and β) cannot be removed twice.
    if (new Set(params.map((p) => p!.name)).size !== 4) continue;
    const [gamma, beta, mean, variance] = params.map((p) => floatValues(p!.tensor));
    const channels = toNumber(weight.tensor.dims[0]!);
    if ([gamma, beta, mean, variance].some((v) => v!.length !== channels)) continue;
    const epsilon = attribute(bn, 'epsilon') ?? 1e-5;
    const w = Float32Array.from(floatValues(weight.tensor));
    const b = bias ? Float32Array.from(floatValues(bias.tensor)) : new Float32Array(channels);
    const inner = numElements(weight.tensor.dims) / channels;
    for (let c = 0; c < channels; c++) {
      const factor = gamma![c]! / Math.sqrt(variance![c]! + epsilon);
      for (let i = c * inner; i < (c + 1) * inner; i++) w[i] = w[i]! * factor;
      b[c] = (b[c]! - mean![c]!) * factor + beta![c]!;
    }
    setData(weight.tensor, new Uint8Array(w.buffer));
    if (bias) setData(bias.tensor, new Uint8Array(b.buffer));
    else {
      const added: TensorProto = makeTensor(
        names.fresh(`${conv.name || weight.name}_bias`),
        DataType.FLOAT,
        [channels],
        new Uint8Array(b.buffer),
      );
      g.addInitializer(added);
      g.setInput(conv, 2, added.name!);
    }
    // The Conv now writes the normalization's output, under its name.
    g.removeNode(bn);
    g.setOutput(conv, 0, bn.output[0]!);
    for (const p of params) p!.remove();
    folded.push(conv);
  }
  return folded;
}
