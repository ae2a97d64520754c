// Finding the weights of a model: initializers (and float Constant values) used as the weight
// input of MatMul (either input), Gemm, Conv, ConvTranspose, Gather or LSTM/GRU/RNN (W and R), in any graph, with the axes that matter for
// each use. Names are resolved through scopes, so a weight declared in the main graph and used inside
// an If/Loop/Scan body is found with that use.
import { subgraphsOf } from './walk.js';
import type { GraphProto, NodeProto, TensorProto } from './onnx.js';
import { dtypeInfo } from './dtype.js';
import type { Model } from './model.js';
import { normalDomain } from './opset.js';
import { constantTensor, toNumber } from './tensor.js';

/**
 * matmul: MatMul's B [K, N]; matmul-a: a constant A [M, K] (output rows, axis 0); recurrent: W
 * [directions, gates·hidden, input] or R [directions, gates·hidden, hidden] of LSTM, GRU or RNN
 * (output rows on axis 1, summed over axis 2; the layout attribute moves only the activations).
 */
export type WeightRole = 'matmul' | 'matmul-a' | 'gemm' | 'conv' | 'conv-transpose' | 'gather' | 'recurrent' | 'einsum' | 'attention';

export interface WeightUse {
  node: NodeProto;
  /** The graph holding the node (may be a subgraph of the weight's home). */
  graph: GraphProto;
  inputIndex: number;
  role: WeightRole;
  /** Axis of the weight that indexes output channels/features (per-channel quantization, structured pruning). */
  outputAxis: number;
  /** Axis summed over by the op (blocks of 4-bit quantization, N:M pruning). */
  reductionAxis: number;
}

export interface Weight {
  name: string;
  tensor: TensorProto;
  /** The graph that declares it. */
  home: GraphProto;
  depth: number;
  /** Set when the value comes from a Constant node rather than an initializer. */
  constant?: NodeProto;
  /** Uses in a weight role. */
  uses: WeightUse[];
  /** Every other node that reads it (elementwise ops, shape ops, ...). */
  otherUses: NodeProto[];
  /** Whether it is a graph output or a graph input (IR < 4 style) of its home graph. */
  isGraphOutput: boolean;
  isGraphInput: boolean;
}

function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i !== undefined ? toNumber(a.i) : fallback;
}

/** The weight role of input `index` of `node`, with its axes, given the weight's rank. */
export function weightRole(node: NodeProto, index: number, rank: number): Omit<WeightUse, 'node' | 'graph' | 'inputIndex'> | undefined {
  const domain = normalDomain(node.domain);
  // com.microsoft Attention's weights: [hidden, 3·hidden] of the Q, K and V projections side by side.
  if (domain === 'com.microsoft' && node.op_type === 'Attention')
    return index === 1 && rank === 2 ? { role: 'attention', outputAxis: 1, reductionAxis: 0 } : undefined;
  if (domain !== '') return undefined;
  switch (node.op_type) {
    case 'MatMul':
      if (rank !== 2) return undefined;
      if (index === 1) return { role: 'matmul', outputAxis: 1, reductionAxis: 0 };
      return index === 0 ? { role: 'matmul-a', outputAxis: 0, reductionAxis: 1 } : undefined;
    case 'Gemm':
      if (index !== 1 || rank !== 2) return undefined;
      return attrInt(node, 'transB', 0)
        ? { role: 'gemm', outputAxis: 0, reductionAxis: 1 }
        : { role: 'gemm', outputAxis: 1, reductionAxis: 0 };
    case 'Conv':
      return index === 1 && rank >= 3 ? { role: 'conv', outputAxis: 0, reductionAxis: 1 } : undefined;
    case 'ConvTranspose':
      return index === 1 && rank >= 3 ? { role: 'conv-transpose', outputAxis: 1, reductionAxis: 0 } : undefined;
    case 'Gather':
      return index === 0 && rank === 2 && attrInt(node, 'axis', 0) === 0 ? { role: 'gather', outputAxis: 0, reductionAxis: 1 } : undefined;
    case 'LSTM':
    case 'GRU':
    case 'RNN':
      return (index === 1 || index === 2) && rank === 3 ? { role: 'recurrent', outputAxis: 1, reductionAxis: 2 } : undefined;
    case 'Einsum':
      return einsumRole(node, index, rank);
    default:
      return undefined;
  }
}

/**
 * An Einsum operand's axes from the equation: the output axis is its last subscript that the output
 * keeps, the reduction axis its first one summed away (`bij,jk->bik`: the constant jk has output
 * axis 1 (k) and reduction axis 0 (j)). Equations with an ellipsis, or an implicit output, are left alone.
 */
function einsumRole(node: NodeProto, index: number, rank: number): Omit<WeightUse, 'node' | 'graph' | 'inputIndex'> | undefined {
  const equation = node.attribute.find((a) => a.name === 'equation')?.s;
  if (!equation) return undefined;
  const text = new TextDecoder().decode(equation).replace(/\s+/g, '');
  if (text.includes('...') || !text.includes('->')) return undefined;
  const [inputs, output] = text.split('->') as [string, string];
  const subscripts = inputs.split(',')[index];
  if (subscripts === undefined || subscripts.length !== rank) return undefined;
  const kept = [...subscripts].map((c) => output.includes(c));
  const outputAxis = kept.lastIndexOf(true),
    reductionAxis = kept.indexOf(false);
  return outputAxis < 0 || reductionAxis < 0 ? undefined : { role: 'einsum', outputAxis, reductionAxis };
}

/** Every floating-point initializer or Constant value of the model, with its uses. */
export function findWeights(model: Model): Weight[] {
  const all: Weight[] = [];
  const visit = (graph: GraphProto, depth: number, outer: Map<string, Weight | null>) => {
    const scope = new Map(outer);
    const initNames = new Set(graph.initializer.map((t) => t.name ?? ''));
    for (const i of graph.input) if (!initNames.has(i.name ?? '')) scope.set(i.name ?? '', null);
    for (const n of graph.node) for (const o of n.output) if (o) scope.set(o, null);
    const outputs = new Set(graph.output.map((o) => o.name ?? ''));
    const inputs = new Set(graph.input.map((i) => i.name ?? ''));
    const declare = (tensor: TensorProto, name: string, constant?: NodeProto) => {
      if (!dtypeInfo(tensor.data_type)?.isFloat) return;
      const w: Weight = {
        name,
        tensor,
        home: graph,
        depth,
        constant,
        uses: [],
        otherUses: [],
        isGraphOutput: outputs.has(name),
        isGraphInput: inputs.has(name),
      };
      all.push(w);
      scope.set(name, w);
    };
    for (const t of graph.initializer) declare(t, t.name ?? '');
    for (const n of graph.node) {
      const value = constantTensor(n);
      if (value && n.output[0] && n.attribute.some((a) => a.name === 'value')) declare(value, n.output[0], n);
    }
    for (const node of graph.node) {
      node.input.forEach((name, index) => {
        const w = name ? scope.get(name) : undefined;
        if (!w) return;
        const role = weightRole(node, index, w.tensor.dims.length);
        if (role) w.uses.push({ node, graph, inputIndex: index, ...role });
        else if (!w.otherUses.includes(node)) w.otherUses.push(node);
      });
      for (const g of subgraphsOf(node)) visit(g, depth + 1, scope);
    }
  };
  if (model.proto.graph) visit(model.proto.graph, 0, new Map());
  return all;
}

/** The output-channel axis all of a weight's uses agree on, or undefined. */
export function channelAxis(w: Weight): number | undefined {
  const axes = new Set(w.uses.map((u) => u.outputAxis));
  return axes.size === 1 ? [...axes][0] : undefined;
}

/** The ops whose weights passes look at unless told otherwise. */
export const WEIGHT_OPS = 'MatMul,Gemm,Conv,ConvTranspose,Gather';

/** The recurrent ops, whose W and R int8 quantizes (weight-only) by default. */
export const RECURRENT_OPS = 'LSTM,GRU,RNN';

/** Shell-style name patterns: * and ?, alternatives separated by |. */
export function namePattern(pattern: string): RegExp {
  const alternatives = pattern
    .split('|')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) =>
      p
        .replace(/[.+^${}()[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.'),
    );
  return new RegExp(`^(?:${alternatives.join('|')})$`);
}
