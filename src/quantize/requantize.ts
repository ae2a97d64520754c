// `int4:requantize=true`: weights a model already holds as 8-bit codes behind a DequantizeLinear
// (per tensor or per axis, constant codes, scale and zero point) are put back as the float32 values
// that DequantizeLinear computes — y = (x − zero_point) · scale — under the DequantizeLinear's own
// output name, so that the 4-bit pass then quantizes them like any float weight. What 8 bits
// already lost stays lost; the 4-bit error is measured against these dequantized values.
import { setData } from '../ir/data.js';
import { GraphEditor } from '../ir/editor.js';
import type { Model } from '../ir/model.js';
import { DataType, type NodeProto, type TensorProto } from '../ir/onnx.js';
import { normalDomain } from '../ir/opset.js';
import { emptyTensor, floatValues, tensorValues, toNumber } from '../ir/tensor.js';

export interface Restored {
  name: string;
  /** 'int8 per-axis', 'uint8 per-tensor'. */
  from: string;
}

function intAttr(node: NodeProto, name: string): number | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i === undefined ? undefined : toNumber(a.i);
}

/** The dequantized values, or undefined where the form is not one this handles (blocked, 4-bit, other dtypes). */
function dequantized(
  x: TensorProto,
  scale: TensorProto,
  zero: TensorProto | undefined,
  node: NodeProto,
): { values: Float32Array; granularity: string } | undefined {
  if (x.data_type !== DataType.INT8 && x.data_type !== DataType.UINT8) return undefined;
  if (scale.data_type !== DataType.FLOAT || (zero && zero.data_type !== x.data_type)) return undefined;
  if ((intAttr(node, 'block_size') ?? 0) > 0) return undefined;
  const codes = tensorValues(x) as Int8Array | Uint8Array;
  const scales = floatValues(scale);
  const zeros = zero ? (tensorValues(zero) as Int8Array | Uint8Array) : undefined;
  const dims = x.dims.map(toNumber);
  const values = new Float32Array(codes.length);
  if (scales.length === 1) {
    const z = zeros?.[0] ?? 0;
    for (let i = 0; i < codes.length; i++) values[i] = (codes[i]! - z) * scales[0]!;
    return { values, granularity: 'per-tensor' };
  }
  let axis = intAttr(node, 'axis') ?? 1;
  if (axis < 0) axis += dims.length;
  if (dims[axis] !== scales.length) return undefined;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < codes.length; i++) {
    const c = Math.floor(i / inner) % scales.length;
    values[i] = (codes[i]! - (zeros?.[c] ?? 0)) * scales[c]!;
  }
  return { values, granularity: 'per-axis' };
}

/**
 * Replaces each constant 8-bit DequantizeLinear of the main graph by an initializer of its float32
 * output (same name); the codes, scales and zero points no other node reads go. Returns what it restored.
 */
export function restoreInt8Weights(model: Model): Restored[] {
  const graph = model.graph;
  const editor = new GraphEditor(graph);
  const initializers = new Map(graph.initializer.map((t) => [t.name ?? '', t]));
  const outputs = new Set(graph.output.map((o) => o.name ?? ''));
  const restored: Restored[] = [];
  for (const node of [...graph.node]) {
    if (node.op_type !== 'DequantizeLinear' || normalDomain(node.domain) !== '' || node.output.length !== 1) continue;
    const [xName, sName, zName] = node.input;
    const x = initializers.get(xName ?? ''),
      scale = initializers.get(sName ?? '');
    const zero = zName ? initializers.get(zName) : undefined;
    const y = node.output[0]!;
    if (!x || !scale || (zName && !zero) || outputs.has(y)) continue;
    const result = dequantized(x, scale, zero, node);
    if (!result) continue;
    const tensor: TensorProto = { ...emptyTensor(), name: y, dims: [...x.dims], data_type: DataType.FLOAT };
    setData(tensor, new Uint8Array(result.values.buffer));
    editor.removeNode(node);
    editor.addInitializer(tensor);
    initializers.set(y, tensor);
    // The codes, scale and zero point go where nothing else reads them (a scale may be shared).
    for (const name of [xName, sName, zName]) if (name && !editor.isRead(name) && !outputs.has(name)) editor.removeInitializer(name);
    restored.push({ name: y, from: `${x.data_type === DataType.INT8 ? 'int8' : 'uint8'} ${result.granularity}` });
  }
  return restored;
}
