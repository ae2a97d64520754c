// Finding the weights of a model: initializers (and float Constant values) used as the weight
// input of MatMul (either input), Gemm, Conv, ConvTranspose, Gather or LSTM/GRU/RNN (W and R), in any graph, with the axes that matter for
// each use. Names are resolved through scopes, so a weight declared in the main graph and used inside
// an If/Loop/Scan body is found with that use.
import { subgraphsOf } from './walk.js';
import type { GraphProto, NodeProto, TensorProto } from './onnx.js';
import { dtypeInfo } from './dtype.js';
import type { Model } from './model.js';
import { normalDomain } from './opset.js';
import { DataType } from './onnx.js';
import { constantTensor, numElements, tensorValues, toNumber } from './tensor.js';

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
  /**
   * Uses in a weight role of a value made from this one by ops that only move elements (Slice,
   * Concat, Split, Transpose, Unsqueeze, Squeeze, Identity): an LSTM whose W the exporter cut into
   * gates and put back in another order. Their axes are this tensor's (-1: not one of its axes).
   */
  movedUses: WeightUse[];
  /** Whether such a moved value is also read by an op that is neither a weight use nor a move. */
  movedElsewhere: boolean;
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

/** The ops that only move a tensor's elements, through which a weight is followed to its use. */
const MOVES = new Set(['Identity', 'Slice', 'Concat', 'Split', 'Transpose', 'Unsqueeze', 'Squeeze']);

/** A value made from a weight by moves: for each of its axes, the weight's axis it came from (-1: none). */
interface Moved {
  weight: Weight;
  axes: number[];
}

/** Where a value comes from: a weight, a weight moved, or anything else (null). */
type Source = Weight | Moved | null;

const isMoved = (s: Source): s is Moved => s !== null && 'axes' in s;

/**
 * The axes of a move's output, from those of its data input; undefined where they cannot be told
 * (Squeeze without axes, axes not constant) or the node is not a move of that input.
 */
function movedAxes(node: NodeProto, index: number, axes: number[], ints: ReadonlyMap<string, number[]>): number[] | undefined {
  if ((node.domain ?? '') !== '' || !MOVES.has(node.op_type ?? '')) return undefined;
  const listed = (): number[] | undefined => {
    const a = node.attribute.find((x) => x.name === 'axes');
    return a ? a.ints.map(toNumber) : node.input[1] ? ints.get(node.input[1]) : undefined;
  };
  switch (node.op_type) {
    case 'Identity':
    case 'Slice':
    case 'Split':
      return index === 0 ? axes : undefined;
    case 'Concat':
      return axes;
    case 'Transpose': {
      const perm = node.attribute.find((x) => x.name === 'perm')?.ints.map(toNumber) ?? axes.map((_, i) => axes.length - 1 - i);
      return perm.length === axes.length ? perm.map((p) => axes[p] ?? -1) : undefined;
    }
    case 'Unsqueeze': {
      const added = listed();
      if (index !== 0 || !added) return undefined;
      const rank = axes.length + added.length;
      const at = new Set(added.map((a) => (a < 0 ? a + rank : a)));
      const out: number[] = [];
      let next = 0;
      for (let i = 0; i < rank; i++) out.push(at.has(i) ? -1 : (axes[next++] ?? -1));
      return out;
    }
    case 'Squeeze': {
      const removed = listed();
      if (index !== 0 || !removed) return undefined;
      const at = new Set(removed.map((a) => (a < 0 ? a + axes.length : a)));
      return axes.filter((_, i) => !at.has(i));
    }
    default:
      return undefined;
  }
}

/** Integer constants of a graph (initializers and Constant nodes), by name: a move's axes. */
function integerConstants(graph: GraphProto, outer: ReadonlyMap<string, number[]>): Map<string, number[]> {
  const ints = new Map(outer);
  const add = (name: string | undefined, t: TensorProto | undefined) => {
    if (!name || !t || (t.data_type !== DataType.INT64 && t.data_type !== DataType.INT32) || numElements(t.dims) > 16) return;
    ints.set(name, Array.from(tensorValues(t) as BigInt64Array | Int32Array, Number));
  };
  for (const t of graph.initializer) add(t.name, t);
  for (const n of graph.node) if (n.op_type === 'Constant') add(n.output[0], constantTensor(n));
  return ints;
}

/** Every floating-point initializer or Constant value of the model, with its uses. */
export function findWeights(model: Model): Weight[] {
  const all: Weight[] = [];
  const visit = (graph: GraphProto, depth: number, outer: Map<string, Source>, outerInts: ReadonlyMap<string, number[]>) => {
    const scope = new Map(outer);
    const ints = integerConstants(graph, outerInts);
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
        movedUses: [],
        movedElsewhere: false,
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
        const source = name ? scope.get(name) : undefined;
        if (!source) return;
        const w = isMoved(source) ? source.weight : source;
        const axes = isMoved(source) ? source.axes : w.tensor.dims.map((_, i) => i);
        const role = weightRole(node, index, axes.length);
        if (role && isMoved(source))
          w.movedUses.push({
            node,
            graph,
            inputIndex: index,
            ...role,
            outputAxis: axes[role.outputAxis] ?? -1,
            reductionAxis: axes[role.reductionAxis] ?? -1,
          });
        else if (role) w.uses.push({ node, graph, inputIndex: index, ...role });
        else {
          if (!isMoved(source) && !w.otherUses.includes(node)) w.otherUses.push(node);
          const next = movedAxes(node, index, axes, ints);
          if (next) for (const o of node.output) if (o) scope.set(o, { weight: w, axes: next });
          if (!next && isMoved(source)) w.movedElsewhere = true;
          if (!next && !isMoved(source) && MOVES.has(node.op_type ?? '')) w.movedElsewhere = true;
        }
      });
      for (const g of subgraphsOf(node)) visit(g, depth + 1, scope, ints);
    }
  };
  if (model.proto.graph) visit(model.proto.graph, 0, new Map(), new Map());
  return all;
}

/**
 * The output-channel axis all of a weight's uses agree on, or undefined. A weight with no direct use
 * takes its moved uses' axis (see `movedUses`).
 */
export function channelAxis(w: Weight): number | undefined {
  const axes = new Set((w.uses.length > 0 ? w.uses : w.movedUses).map((u) => u.outputAxis));
  const [axis] = axes;
  return axes.size === 1 && axis !== undefined && axis >= 0 ? axis : undefined;
}

/**
 * Whether a weight is read only through moves, each ending as a weight (no direct use, nothing else
 * reading the moved values, not a graph output): a DequantizeLinear in its place is then exactly what
 * every use reads, moved.
 */
export function onlyMoved(w: Weight): boolean {
  return (
    w.uses.length === 0 &&
    w.movedUses.length > 0 &&
    !w.movedElsewhere &&
    !w.isGraphOutput &&
    w.otherUses.every((n) => (n.domain ?? '') === '' && MOVES.has(n.op_type ?? ''))
  );
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
