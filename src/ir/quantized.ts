// Recognising weights that are already quantized: integer initializers (or Constant values) read
// as the weight of a quantized form. QDQ (an int8/uint8/int4/uint4 tensor dequantized by
// DequantizeLinear: per-tensor, per-axis or blocked), QOperator (QLinearConv, QLinearMatMul and
// com.microsoft QGemm weights), the integer forms ConvInteger and MatMulInteger (input 1), and the
// com.microsoft 4-bit forms MatMulNBits (B) and GatherBlockQuantized (data). Names are resolved
// through scopes, so a tensor of the main graph read inside an If/Loop/Scan body is found.
import { DataType, type GraphProto, type NodeProto, type TensorProto } from './onnx.js';
import { dtypeName } from './dtype.js';
import type { Model } from './model.js';
import { normalDomain } from './opset.js';
import { constantTensor, numElements, tensorByteLength, toNumber } from './tensor.js';
import { subgraphsOf } from './walk.js';

export type QuantizedForm =
  | 'DequantizeLinear'
  | 'QLinearConv'
  | 'QLinearMatMul'
  | 'QGemm'
  | 'ConvInteger'
  | 'MatMulInteger'
  | 'MatMulNBits'
  | 'GatherBlockQuantized';

export type QuantizedGranularity = 'per-tensor' | 'per-axis' | 'blocked';

export interface QuantizedWeight {
  name: string;
  tensor: TensorProto;
  /** The graph that declares it. */
  home: GraphProto;
  /** The op that reads it as a quantized weight (the first, when several do). */
  node: NodeProto;
  form: QuantizedForm;
  /** The stored type: int8, uint8, int4, uint4 (MatMulNBits stores its 4-bit codes packed in uint8). */
  dtype: string;
  /** Bits per code. */
  bits: number;
  /** How scales are shared, where the form has a choice (DequantizeLinear, QLinearConv, QLinearMatMul, QGemm). */
  granularity?: QuantizedGranularity;
  /** Elements of the weight the codes stand for (K·N for MatMulNBits, two a byte for packed 4-bit GatherBlockQuantized). */
  elements: number;
  /** Bytes of the stored codes (scales and zero points not counted). */
  bytes: number;
  /** "DequantizeLinear int8 per-axis", "ConvInteger uint8", "MatMulNBits 4-bit". */
  label: string;
  /** The same without the granularity: "DequantizeLinear int8". */
  short: string;
  /** What a pass that leaves it alone says: "already int8 (DequantizeLinear per-axis)". */
  reason: string;
}

const CODE_TYPES = new Set<number>([DataType.INT8, DataType.UINT8, DataType.INT4, DataType.UINT4]);

function attr(node: NodeProto, name: string): number | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i !== undefined ? toNumber(a.i) : undefined;
}

/** For input `index` of `node`: the form it is the quantized weight of, with the index of its scale. */
function formOf(node: NodeProto, index: number): { form: QuantizedForm; scale?: number } | undefined {
  const domain = normalDomain(node.domain);
  if (domain === '') {
    switch (node.op_type) {
      case 'DequantizeLinear':
        return index === 0 ? { form: 'DequantizeLinear', scale: 1 } : undefined;
      case 'QLinearConv':
        return index === 3 ? { form: 'QLinearConv', scale: 4 } : undefined;
      case 'QLinearMatMul':
        return index === 3 ? { form: 'QLinearMatMul', scale: 4 } : undefined;
      case 'ConvInteger':
        return index === 1 ? { form: 'ConvInteger' } : undefined;
      case 'MatMulInteger':
        return index === 1 ? { form: 'MatMulInteger' } : undefined;
      default:
        return undefined;
    }
  }
  if (domain === 'com.microsoft') {
    switch (node.op_type) {
      case 'DequantizeLinear':
        return index === 0 ? { form: 'DequantizeLinear', scale: 1 } : undefined;
      case 'QGemm':
        return index === 3 ? { form: 'QGemm', scale: 4 } : undefined;
      case 'MatMulNBits':
        return index === 1 ? { form: 'MatMulNBits' } : undefined;
      case 'GatherBlockQuantized':
        return index === 0 ? { form: 'GatherBlockQuantized' } : undefined;
      default:
        return undefined;
    }
  }
  return undefined;
}

/** Every quantized weight of the model, once each, in graph order. */
export function findQuantizedWeights(model: Model): QuantizedWeight[] {
  const found: QuantizedWeight[] = [];
  const seen = new Set<TensorProto>();
  type Entry = { tensor: TensorProto; home: GraphProto } | null;
  const visit = (graph: GraphProto, outer: Map<string, Entry>) => {
    const scope = new Map(outer);
    const initNames = new Set(graph.initializer.map((t) => t.name ?? ''));
    for (const i of graph.input) if (!initNames.has(i.name ?? '')) scope.set(i.name ?? '', null);
    for (const n of graph.node) for (const o of n.output) if (o) scope.set(o, null);
    for (const t of graph.initializer) scope.set(t.name ?? '', { tensor: t, home: graph });
    for (const n of graph.node) {
      const value = constantTensor(n);
      if (value && n.output[0] && n.attribute.some((a) => a.name === 'value')) scope.set(n.output[0], { tensor: value, home: graph });
    }
    for (const node of graph.node) {
      node.input.forEach((name, index) => {
        const entry = name ? scope.get(name) : undefined;
        if (!entry || seen.has(entry.tensor)) return;
        const f = formOf(node, index);
        if (!f || !CODE_TYPES.has(entry.tensor.data_type ?? 0)) return;
        seen.add(entry.tensor);
        found.push(
          describe(
            name,
            entry.tensor,
            entry.home,
            node,
            f.form,
            f.scale === undefined ? undefined : scope.get(node.input[f.scale] ?? '')?.tensor,
          ),
        );
      });
      for (const g of subgraphsOf(node)) visit(g, scope);
    }
  };
  if (model.proto.graph) visit(model.proto.graph, new Map());
  return found;
}

function describe(
  name: string,
  tensor: TensorProto,
  home: GraphProto,
  node: NodeProto,
  form: QuantizedForm,
  scale: TensorProto | undefined,
): QuantizedWeight {
  const dtype = dtypeName(tensor.data_type);
  const fourBit = tensor.data_type === DataType.INT4 || tensor.data_type === DataType.UINT4;
  let bits = fourBit ? 4 : 8;
  if (form === 'MatMulNBits' || form === 'GatherBlockQuantized') bits = attr(node, 'bits') ?? 4;
  let granularity: QuantizedGranularity | undefined;
  if (form === 'DequantizeLinear') {
    if ((attr(node, 'block_size') ?? 0) > 0) granularity = 'blocked';
    else if (scale) granularity = scale.dims.reduce<number>((a, d) => a * toNumber(d), 1) > 1 ? 'per-axis' : 'per-tensor';
    else granularity = 'per-tensor';
  } else if (form === 'QLinearConv' || form === 'QLinearMatMul' || form === 'QGemm') {
    granularity = scale && scale.dims.reduce<number>((a, d) => a * toNumber(d), 1) > 1 ? 'per-axis' : 'per-tensor';
  }
  const packed = form === 'MatMulNBits' || form === 'GatherBlockQuantized';
  const short = packed ? `${form} ${bits}-bit` : `${form} ${dtype}`;
  const label = granularity ? `${short} ${granularity}` : short;
  const reason = packed ? `already ${bits}-bit (${form})` : `already ${dtype} (${form}${granularity ? ` ${granularity}` : ''})`;
  const k = attr(node, 'K'),
    n = attr(node, 'N');
  let elements = numElements(tensor.dims);
  if (form === 'MatMulNBits' && k !== undefined && n !== undefined) elements = k * n;
  else if (form === 'GatherBlockQuantized' && tensor.data_type === DataType.UINT8 && bits === 4) elements *= 2;
  return { name, tensor, home, node, form, dtype, bits, granularity, elements, bytes: tensorByteLength(tensor), label, short, reason };
}

/** Counts by a key, most first, then by name. */
export function countBy(weights: QuantizedWeight[], key: (q: QuantizedWeight) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const q of weights) counts[key(q)] = (counts[key(q)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}
