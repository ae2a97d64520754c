// Which channels must go together. Removing output channel c of one layer removes position c of its
// output, and of every value that position flows into: through activations, normalization and
// pooling, into a residual Add or Sum (whose other inputs — and every layer writing into the same
// stream — must lose the same position), into a Concat (at the input's offset in the output), through
// depthwise convolutions (channel c in, channels c·m … c·m+m−1 out) and ShuffleNet's channel shuffle
// (Reshape → Transpose → Reshape, a fixed permutation). Each channel position of each value is a
// node of a union-find; positions that must go together end up in one set, a *unit*. A unit is
// removed whole or not at all. A value whose width cannot change (a model input or output, an op
// that mixes its channels, a weight shared with another layer) freezes its units, with the reason.
//
// Grouped convolutions (1 < group < channels) keep their group count: each group must lose the same
// number of input (or output) channels — a *balanced partition* the selection honours. Tying a
// group's inputs to its outputs (removing whole groups) would glue ShuffleNet's streams into one unit
// that nothing may remove; depthwise convolutions do lose whole groups.
import type { GraphIndex } from '../ir/graph.js';
import { type NodeProto, type TensorProto, DataType } from '../ir/onnx.js';
import { normalDomain } from '../ir/opset.js';
import { constantTensor, tensorValues, toNumber } from '../ir/tensor.js';
import { hasSubgraphs } from '../ir/walk.js';
import { paramOf, type Param } from './params.js';

/** A value whose channel positions are tracked: positions base … base+width−1 of the union-find. */
export interface ValueState {
  name: string;
  base: number;
  width: number;
  /** The channel axis counted from the end (−1 the last axis). */
  axis: number;
  rank?: number;
  /** Features per position as a MatMul/Gemm reads it after a Flatten (0: learned from that layer's weight). */
  factor: number;
}

/** A stored parameter as a node reads it, possibly through an Unsqueeze: `axisOf` maps an axis of what the node reads to the tensor's. */
export interface ParamView {
  param: Param;
  dims: number[];
  axisOf: (pos: number) => number | undefined;
  /** The nodes that must read it alone (the Unsqueeze between, if any). */
  readers: NodeProto[];
}

export type Edit =
  /** Keep the value's kept positions (each `factor` entries) along `axis` of the parameter. */
  | { kind: 'slice'; param: Param; axis: number; value: string; factor: number }
  /** A grouped Conv's weight [M, C/G, …]: each block of output rows keeps the input channels its group keeps. */
  | { kind: 'grouped-in'; param: Param; value: string; groups: number }
  /** A depthwise Conv's group count follows its input's width. */
  | { kind: 'group-attr'; node: NodeProto; value: string }
  /** A Reshape's shape constant: entry `entry` becomes the value's kept width divided by `divide`. */
  | { kind: 'shape'; tensor: TensorProto; entry: number; value: string; divide: number };

export interface Source {
  node: NodeProto;
  weight: Param;
  /** The weight's output-channel axis. */
  axis: number;
  value: string;
  kind: 'channels' | 'neurons';
  bias?: Param;
}

export interface Sink {
  node: NodeProto;
  weight: Param;
  value: string;
  /** Which axis of the weight indexes input features, and how many features each position expands to. */
  axis: number;
  factor: number;
  op: 'Conv' | 'MatMul' | 'Gemm';
  groups: number;
}

/** Positions of `value` in `blocks` equal blocks, each of which must lose as many as the others. */
export interface Partition {
  value: string;
  blocks: number;
  /** The grouped Conv that needs it. */
  node: NodeProto;
}

export interface ChannelGroup {
  values: Map<string, ValueState>;
  /** Union-find parents over all positions. */
  parent: Int32Array;
  /** Units (roots) that may not be removed, with the first reason found. */
  frozen: Map<number, string>;
  sources: Source[];
  sinks: Sink[];
  edits: Edit[];
  partitions: Partition[];
  /** Values whose shape changes beside the tracked ones (the shuffle's intermediates). */
  intermediates: Set<string>;
  /** Values reached through a residual join (an Add/Sum of two computed inputs), with the node's label. */
  residual: Map<string, string>;
}

export function find(parent: Int32Array, p: number): number {
  let r = p;
  while (parent[r] !== r) r = parent[r]!;
  while (parent[p] !== r) {
    const next = parent[p]!;
    parent[p] = r;
    p = next;
  }
  return r;
}

const UNARY = new Set([
  'Relu',
  'LeakyRelu',
  'Sigmoid',
  'Tanh',
  'Erf',
  'Gelu',
  'Elu',
  'Selu',
  'Celu',
  'HardSigmoid',
  'HardSwish',
  'Softplus',
  'Softsign',
  'Abs',
  'Neg',
  'Sqrt',
  'Exp',
  'Log',
  'Identity',
  'Cast',
  'Clip',
  'Mish',
  'ThresholdedRelu',
  'Reciprocal',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'Dropout',
]);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'PRelu', 'Sum', 'Mean']);
const RESIDUAL = new Set(['Add', 'Sum', 'Sub', 'Mean']);
const POOL = new Set(['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'GlobalLpPool']);

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i !== undefined ? toNumber(a.i) : fallback;
}

function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a ? a.ints.map(toNumber) : undefined;
}

function intConstant(index: GraphIndex, name: string): { tensor: TensorProto; values: number[] } | undefined {
  const init = index.initializers.get(name);
  const producer = index.producer.get(name);
  const t = init ?? (producer ? constantTensor(producer) : undefined);
  if (!t || t.data_type !== DataType.INT64) return undefined;
  return { tensor: t, values: Array.from(tensorValues(t) as BigInt64Array, Number) };
}

/** A parameter read directly or through an Unsqueeze of a parameter (as BatchNorm folded into Mul/Add reads its scale). */
export function paramView(index: GraphIndex, name: string, opset: number): ParamView | undefined {
  const p = paramOf(index, name);
  if (p) return { param: p, dims: p.dims, axisOf: (pos) => pos, readers: [] };
  const producer = index.producer.get(name);
  if (producer?.op_type !== 'Unsqueeze' || normalDomain(producer.domain) !== '' || !producer.input[0]) return undefined;
  const inner = paramOf(index, producer.input[0]);
  if (!inner || index.consumersOf(producer.input[0]).length !== 1) return undefined;
  const axes = opset >= 13 && producer.input[1] ? intConstant(index, producer.input[1])?.values : attrInts(producer, 'axes');
  if (!axes) return undefined;
  const rank = inner.dims.length + axes.length;
  const inserted = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  const dims: number[] = [];
  const map = new Map<number, number>();
  let k = 0;
  for (let i = 0; i < rank; i++) {
    if (inserted.has(i)) dims.push(1);
    else {
      map.set(i, k);
      dims.push(inner.dims[k++]!);
    }
  }
  return { param: inner, dims, axisOf: (pos) => map.get(pos), readers: [producer] };
}

interface Options {
  opset: number;
  /** Why a layer may not be a source of removed channels (the pass's selection options), if it may not. */
  refuse: (node: NodeProto, weight: Param) => string | undefined;
}

/** Analyses the group of channels tied to output `start` of layer `seed`. */
export function channelGroup(index: GraphIndex, seed: NodeProto, opts: Options): ChannelGroup {
  const values = new Map<string, ValueState>();
  const parents: number[] = [];
  const freezes: [string, string][] = [];
  const sources: Source[] = [];
  const sinks: Sink[] = [];
  const edits: Edit[] = [];
  const partitions: Partition[] = [];
  const intermediates = new Set<string>();
  const residual = new Map<string, string>();
  const queue: ValueState[] = [];
  // Nodes handled from their output (producers) and from their input (consumers): a Conv may be both.
  const produced = new Set<NodeProto>();
  const consumed = new Set<NodeProto>();
  const outputs = index.outputs;

  const union = (a: number, b: number) => {
    const ra = rootOf(a),
      rb = rootOf(b);
    if (ra !== rb) parents[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const rootOf = (p: number): number => {
    let r = p;
    while (parents[r] !== r) r = parents[r]!;
    return r;
  };
  const freeze = (value: string, reason: string) => freezes.push([value, reason]);
  const label = (node: NodeProto) => node.name || node.op_type || '';

  const register = (name: string, width: number, axis: number, rank: number | undefined, factor: number, via?: string): ValueState => {
    const known = values.get(name);
    if (known) {
      if (known.width !== width || known.axis !== axis) freeze(name, `'${name}' is reached with two different channel layouts`);
      return known;
    }
    const state: ValueState = { name, base: parents.length, width, axis, rank, factor };
    for (let i = 0; i < width; i++) parents.push(parents.length);
    values.set(name, state);
    if (via) residual.set(name, via);
    queue.push(state);
    return state;
  };
  const tie = (a: ValueState, b: ValueState, map: (p: number) => number = (p) => p) => {
    for (let p = 0; p < a.width; p++) union(a.base + p, b.base + map(p));
  };

  /** Slices a parameter read by `user` along the value's channel axis (broadcast axes need nothing). */
  const alignParam = (view: ParamView, user: NodeProto, v: ValueState): string | undefined => {
    const pos = view.dims.length + v.axis;
    if (pos < 0) return undefined;
    const dim = view.dims[pos]!;
    if (dim === 1) return undefined;
    const factor = v.factor || dim / v.width;
    if (!Number.isInteger(factor) || dim !== v.width * factor)
      return `'${view.param.name}' has ${dim} entries on the pruned axis, expected ${v.width}`;
    for (const r of [view.param.name, ...view.readers.map((n) => n.output[0]!)]) {
      const readers = index.consumersOf(r);
      const allowed = new Set([user, ...view.readers]);
      if (readers.some((n) => !allowed.has(n))) return `'${view.param.name}' is shared with other nodes`;
    }
    const axis = view.axisOf(pos);
    if (axis === undefined) return undefined;
    edits.push({ kind: 'slice', param: view.param, axis, value: v.name, factor });
    return undefined;
  };

  /** The channel count of `name` on an axis counted from the end, where the graph tells it. */
  const widthOf = (name: string, axis: number, depth = 0): number | undefined => {
    if (values.has(name)) return values.get(name)!.width;
    if (depth > 200) return undefined;
    const declared = [...index.graph.input, ...index.graph.value_info, ...index.graph.output].find((v) => v.name === name);
    const dims = declared?.type?.tensor_type?.shape?.dim;
    if (dims && dims.length + axis >= 0) {
      const d = dims[dims.length + axis]?.dim_value;
      if (d !== undefined && toNumber(d) > 0) return toNumber(d);
    }
    const node = index.producer.get(name);
    if (!node || normalDomain(node.domain) !== '') return undefined;
    const op = node.op_type ?? '';
    const weight = node.input[1] ? paramOf(index, node.input[1]) : undefined;
    if (op === 'Conv' && weight) return weight.dims[0];
    if (op === 'Gemm' && weight?.dims.length === 2) return attrInt(node, 'transB', 0) ? weight.dims[0] : weight.dims[1];
    if (op === 'MatMul' && weight?.dims.length === 2 && axis === -1) return weight.dims[1];
    if (UNARY.has(op) || POOL.has(op) || op === 'BatchNormalization' || op === 'InstanceNormalization')
      return widthOf(node.input[0]!, axis, depth + 1);
    if (BINARY.has(op)) {
      for (const i of node.input) if (i && !paramView(index, i, opts.opset)) return widthOf(i, axis, depth + 1);
      return undefined;
    }
    if (op === 'Concat') {
      let sum = 0;
      for (const i of node.input) {
        const w = widthOf(i, axis, depth + 1);
        if (w === undefined) return undefined;
        sum += w;
      }
      return sum;
    }
    return undefined;
  };

  const concatAxisMatches = (node: NodeProto, v: ValueState): boolean | undefined => {
    const a = attrInt(node, 'axis', 1);
    if (a < 0) return a === v.axis;
    if (v.rank === undefined) return undefined;
    return a - v.rank === v.axis;
  };

  /** ShuffleNet's channel shuffle x → Reshape [N, G, C/G, …] → Transpose(0, 2, 1, …) → Reshape [N, C, …]. */
  const shuffleFrom = (first: NodeProto, x: ValueState) => {
    if (first.op_type !== 'Reshape' || x.rank === undefined || x.axis !== 1 - x.rank || !first.input[1]) return undefined;
    const s1 = intConstant(index, first.input[1]);
    if (!s1 || s1.values.length !== x.rank + 1 || s1.values[1]! * s1.values[2]! !== x.width) return undefined;
    const mid = index.consumersOf(first.output[0]!);
    const t = mid[0];
    if (mid.length !== 1 || t?.op_type !== 'Transpose') return undefined;
    const perm = attrInts(t, 'perm');
    if (!perm || perm.length !== x.rank + 1 || perm[0] !== 0 || perm[1] !== 2 || perm[2] !== 1 || perm.slice(3).some((p, i) => p !== i + 3))
      return undefined;
    const next = index.consumersOf(t.output[0]!);
    const second = next[0];
    if (next.length !== 1 || second?.op_type !== 'Reshape' || !second.input[1]) return undefined;
    const s2 = intConstant(index, second.input[1]);
    if (!s2 || s2.values.length !== x.rank || s2.values[1] !== x.width) return undefined;
    if (index.consumersOf(first.input[1]).length !== 1 || index.consumersOf(second.input[1]).length !== 1) return undefined;
    return { groups: s1.values[1]!, perGroup: s1.values[2]!, s1: s1.tensor, s2: s2.tensor, t, second };
  };
  const shuffle = (first: NodeProto, x: ValueState): boolean => {
    const s = shuffleFrom(first, x);
    if (!s) return false;
    for (const n of [first, s.t, s.second]) {
      produced.add(n);
      consumed.add(n);
    }
    const out = register(s.second.output[0]!, x.width, x.axis, x.rank, 1);
    // Input channel g·K + r lands at r·G + g. The same r goes from every group at once, so what is
    // kept stays a G × K' grid that the same shuffle (with K' per group) permutes.
    tie(x, out, (p) => (p % s.perGroup) * s.groups + Math.floor(p / s.perGroup));
    for (let p = s.perGroup; p < x.width; p++) union(x.base + p, x.base + (p % s.perGroup));
    edits.push({ kind: 'shape', tensor: s.s1, entry: 2, value: x.name, divide: s.groups });
    edits.push({ kind: 'shape', tensor: s.s2, entry: 1, value: out.name, divide: 1 });
    intermediates.add(first.output[0]!);
    intermediates.add(s.t.output[0]!);
    return true;
  };

  const ownWeight = (node: NodeProto, slot: number): Param | string => {
    const name = node.input[slot];
    const p = name ? paramOf(index, name) : undefined;
    if (!p) return `'${label(node)}' reads '${name}', which is not a stored parameter`;
    if (index.consumersOf(p.name).length !== 1) return `'${p.name}' is shared by several nodes`;
    return p;
  };
  const ownBias = (node: NodeProto, v: ValueState): Param | undefined | string => {
    const name = node.input[2];
    if (!name) return undefined;
    const p = paramOf(index, name);
    if (!p || index.consumersOf(name).length !== 1) return `its bias '${name}' is not a parameter of its own`;
    if (p.dims.length !== 1 || p.dims[0] !== v.width) return `its bias '${name}' does not have one entry per channel`;
    return p;
  };

  /** Where the value's positions come from. */
  const backward = (v: ValueState) => {
    const node = index.producer.get(v.name);
    if (!node) {
      freeze(v.name, index.initializers.has(v.name) ? `'${v.name}' is a parameter` : `'${v.name}' is an input of the model`);
      return;
    }
    if (produced.has(node)) return;
    produced.add(node);
    const op = normalDomain(node.domain) === '' ? (node.op_type ?? '') : `${node.domain}.${node.op_type}`;
    if (hasSubgraphs(node)) return freeze(v.name, `'${label(node)}' (${op}) has subgraphs`);
    const channelFirst = v.rank !== undefined && v.axis === 1 - v.rank;
    if (op === 'Conv' || op === 'MatMul' || op === 'Gemm') {
      const w = ownWeight(node, 1);
      if (typeof w === 'string') return freeze(v.name, w);
      if (op === 'Conv') {
        if (!channelFirst) return freeze(v.name, `'${label(node)}' writes channels on another axis`);
        const groups = attrInt(node, 'group', 1);
        const bias = ownBias(node, v);
        if (typeof bias === 'string') return freeze(v.name, bias);
        if (groups > 1 && w.dims[1] === 1) {
          // Depthwise: input channel c makes outputs c·m … c·m+m−1; it loses whole groups.
          const m = w.dims[0]! / groups;
          const x = register(node.input[0]!, groups, v.axis, v.rank, 1);
          tie(x, v, (p) => p * m);
          for (let j = 1; j < m; j++) tie(x, v, (p) => p * m + j);
          edits.push({ kind: 'slice', param: w, axis: 0, value: v.name, factor: 1 });
          if (bias) edits.push({ kind: 'slice', param: bias, axis: 0, value: v.name, factor: 1 });
          edits.push({ kind: 'group-attr', node, value: x.name });
          return;
        }
        const refused = opts.refuse(node, w);
        if (refused) return freeze(v.name, refused);
        sources.push({ node, weight: w, axis: 0, value: v.name, kind: 'channels', bias: bias || undefined });
        if (groups > 1) partitions.push({ value: v.name, blocks: groups, node });
        return;
      }
      if (w.dims.length !== 2) return freeze(v.name, `'${label(node)}' has a ${w.dims.length}-D weight`);
      if (v.axis !== -1) return freeze(v.name, `'${label(node)}' writes features on another axis`);
      if (op === 'Gemm' && attrInt(node, 'transA', 0) !== 0) return freeze(v.name, `'${label(node)}' is a Gemm with transA`);
      const bias = op === 'Gemm' ? ownBias(node, v) : undefined;
      if (typeof bias === 'string') return freeze(v.name, bias);
      const refused = opts.refuse(node, w);
      if (refused) return freeze(v.name, refused);
      const axis = op === 'Gemm' && attrInt(node, 'transB', 0) ? 0 : 1;
      sources.push({ node, weight: w, axis, value: v.name, kind: 'neurons', bias: bias || undefined });
      return;
    }
    if (UNARY.has(op) || POOL.has(op) || op === 'BatchNormalization' || op === 'InstanceNormalization') {
      if ((POOL.has(op) || op.endsWith('Normalization')) && !channelFirst)
        return freeze(v.name, `'${label(node)}' (${op}) works on another axis than the pruned one`);
      if (op === 'Clip' && node.input.slice(1).some((i) => i && !paramOf(index, i)))
        return freeze(v.name, `'${label(node)}' clips with a computed bound`);
      if (node.output[0] !== v.name) return freeze(v.name, `'${v.name}' is a secondary output of '${label(node)}'`);
      // A normalization's parameters are per channel: one vector entry per position.
      for (const p of op.endsWith('Normalization') ? node.input.slice(1) : []) {
        if (!p) continue;
        const w = ownWeight(node, node.input.indexOf(p));
        if (typeof w === 'string') return freeze(v.name, w);
        if (w.dims.length !== 1 || w.dims[0] !== v.width) return freeze(v.name, `'${w.name}' does not have one entry per channel`);
        edits.push({ kind: 'slice', param: w, axis: 0, value: v.name, factor: 1 });
      }
      const x = register(node.input[0]!, v.width, v.axis, v.rank, v.factor);
      tie(x, v);
      return;
    }
    if (BINARY.has(op)) return elementwise(node, v, op);
    if (op === 'Concat') {
      const same = concatAxisMatches(node, v);
      if (same === undefined) return freeze(v.name, `'${label(node)}' concatenates on an axis that cannot be placed`);
      let offset = 0;
      const inputs: [string, number][] = [];
      for (const i of node.input) {
        const w = same ? widthOf(i, v.axis) : v.width;
        if (w === undefined) return freeze(v.name, `'${label(node)}' concatenates '${i}', whose channel count is not known`);
        inputs.push([i, w]);
      }
      if (same && inputs.reduce((n, [, w]) => n + w, 0) !== v.width)
        return freeze(v.name, `'${label(node)}' concatenates inputs whose channels do not add up`);
      for (const [i, w] of inputs) {
        const x = register(i, w, v.axis, v.rank, v.factor);
        const at = offset;
        tie(x, v, (p) => (same ? at + p : p));
        if (same) offset += w;
      }
      return;
    }
    if (op === 'Reshape') {
      // The second Reshape of a channel shuffle: follow back to the shuffle's input.
      const t = node.input[0] ? index.producer.get(node.input[0]) : undefined;
      const first = t?.op_type === 'Transpose' && t.input[0] ? index.producer.get(t.input[0]) : undefined;
      if (first?.op_type === 'Reshape' && first.input[0] && v.rank !== undefined) {
        const probe: ValueState = { name: first.input[0], base: -1, width: v.width, axis: v.axis, rank: v.rank, factor: 1 };
        if (shuffleFrom(first, probe)?.second === node) {
          shuffle(first, register(first.input[0], v.width, v.axis, v.rank, 1));
          return;
        }
      }
    }
    freeze(v.name, `'${label(node)}' (${op}) would have to change with it, and onnxpress cannot rewrite that op consistently`);
  };

  /** Elementwise ops: computed inputs are tied (a residual join), parameters sliced. */
  const elementwise = (node: NodeProto, v: ValueState, op: string) => {
    const out = node.output[0]!;
    const computed = node.input.filter((i) => i && !paramView(index, i, opts.opset));
    const join = computed.length > 1 && RESIDUAL.has(op) ? `${op} '${label(node)}'` : undefined;
    const states: ValueState[] = [];
    for (const i of computed) {
      const w = widthOf(i, v.axis) ?? (values.has(i) ? values.get(i)!.width : undefined);
      if (w === 1) continue; // broadcast over the channels
      if (w !== undefined && w !== v.width) return freeze(v.name, `'${label(node)}' broadcasts '${i}' against the pruned channels`);
      states.push(register(i, v.width, v.axis, v.rank, v.factor, join));
    }
    const o = register(out, v.width, v.axis, v.rank, v.factor, join);
    for (const s of states) tie(s, o);
    for (const i of node.input) {
      if (!i || computed.includes(i)) continue;
      const problem = alignParam(paramView(index, i, opts.opset)!, node, v);
      if (problem) return freeze(v.name, problem);
    }
  };

  /** Where the value's positions go. */
  const forward = (v: ValueState) => {
    if (outputs.has(v.name)) freeze(v.name, `'${v.name}' is an output of the model, whose shape must not change`);
    const channelFirst = v.rank !== undefined && v.axis === 1 - v.rank;
    for (const node of index.consumersOf(v.name)) {
      if (consumed.has(node)) continue;
      const op = normalDomain(node.domain) === '' ? (node.op_type ?? '') : `${node.domain}.${node.op_type}`;
      if (hasSubgraphs(node)) {
        freeze(v.name, `'${label(node)}' (${op}) reads it inside a subgraph`);
        continue;
      }
      if (BINARY.has(op) || op === 'Concat' || UNARY.has(op) || POOL.has(op) || op.endsWith('Normalization')) {
        // These are handled from their output, which ties every input.
        if (op.endsWith('Normalization') && node.input[0] !== v.name) {
          freeze(v.name, `'${label(node)}' reads it as a parameter`);
          continue;
        }
        if (op === 'Concat' && concatAxisMatches(node, v) === true) {
          const w = widthOf(node.output[0]!, v.axis);
          if (w === undefined) {
            freeze(v.name, `'${label(node)}' concatenates inputs whose channel count is not known`);
            continue;
          }
          register(node.output[0]!, w, v.axis, v.rank, v.factor);
        } else if (op === 'Concat' && concatAxisMatches(node, v) === undefined) {
          freeze(v.name, `'${label(node)}' concatenates on an axis that cannot be placed`);
          continue;
        } else if (BINARY.has(op)) {
          const computed = node.input.filter((i) => i && !paramView(index, i, opts.opset));
          register(
            node.output[0]!,
            v.width,
            v.axis,
            v.rank,
            v.factor,
            computed.length > 1 && RESIDUAL.has(op) ? `${op} '${label(node)}'` : undefined,
          );
        } else register(node.output[0]!, v.width, v.axis, v.rank, v.factor);
        continue;
      }
      if (op === 'Conv' || op === 'ConvTranspose') {
        const groups = attrInt(node, 'group', 1);
        if (node.input[0] !== v.name || !channelFirst) {
          freeze(v.name, `'${label(node)}' (${op}) reads it in a way that cannot shrink (as a weight, or on another axis)`);
          continue;
        }
        const w = ownWeight(node, 1);
        if (typeof w === 'string') {
          freeze(v.name, w);
          continue;
        }
        if (op === 'ConvTranspose') {
          if (groups !== 1) freeze(v.name, `'${label(node)}' is a grouped ConvTranspose`);
          else edits.push({ kind: 'slice', param: w, axis: 0, value: v.name, factor: 1 });
          continue;
        }
        if (groups > 1 && w.dims[1] === 1) {
          // Depthwise: handled from its output, which ties input channel c to outputs c·m ….
          register(node.output[0]!, w.dims[0]!, v.axis, v.rank, 1);
          continue;
        }
        consumed.add(node);
        sinks.push({ node, weight: w, value: v.name, axis: 1, factor: 1, op: 'Conv', groups });
        if (groups > 1) {
          partitions.push({ value: v.name, blocks: groups, node });
          edits.push({ kind: 'grouped-in', param: w, value: v.name, groups });
        } else edits.push({ kind: 'slice', param: w, axis: 1, value: v.name, factor: 1 });
        continue;
      }
      if (op === 'MatMul' || op === 'Gemm') {
        if (node.input[0] !== v.name || v.axis !== -1 || (op === 'Gemm' && attrInt(node, 'transA', 0) !== 0)) {
          freeze(v.name, `'${label(node)}' (${op}) does not reduce over the pruned axis`);
          continue;
        }
        const w = ownWeight(node, 1);
        if (typeof w === 'string') {
          freeze(v.name, w);
          continue;
        }
        if (w.dims.length !== 2) {
          freeze(v.name, `'${label(node)}' has a ${w.dims.length}-D weight`);
          continue;
        }
        const axis = op === 'Gemm' && attrInt(node, 'transB', 0) ? 1 : 0;
        const factor = v.factor || w.dims[axis]! / v.width;
        if (!Number.isInteger(factor) || w.dims[axis] !== factor * v.width) {
          freeze(v.name, `'${w.name}' has ${w.dims[axis]} input features, not a multiple of the ${v.width} channels flattened into it`);
          continue;
        }
        consumed.add(node);
        sinks.push({ node, weight: w, value: v.name, axis, factor, op, groups: 1 });
        edits.push({ kind: 'slice', param: w, axis, value: v.name, factor });
        continue;
      }
      if (op === 'Flatten') {
        if (!channelFirst || attrInt(node, 'axis', 1) !== 1) {
          freeze(v.name, `'${label(node)}' flattens across the batch axis`);
          continue;
        }
        consumed.add(node);
        produced.add(node);
        const out = register(node.output[0]!, v.width, -1, 2, 0);
        tie(v, out);
        continue;
      }
      if (op === 'Reshape' && shuffle(node, v)) continue;
      freeze(v.name, `'${label(node)}' (${op}) would have to change with it, and onnxpress cannot rewrite that op consistently`);
    }
  };

  const seedWeight = paramOf(index, seed.input[1]!)!;
  const seedOut =
    seed.op_type === 'Conv'
      ? register(seed.output[0]!, seedWeight.dims[0]!, 1 - seedWeight.dims.length, seedWeight.dims.length, 1)
      : register(
          seed.output[0]!,
          seed.op_type === 'Gemm' && attrInt(seed, 'transB', 0) ? seedWeight.dims[0]! : seedWeight.dims[1]!,
          -1,
          seed.op_type === 'Gemm' ? 2 : undefined,
          1,
        );
  void seedOut;
  while (queue.length > 0) {
    const v = queue.shift()!;
    backward(v);
    forward(v);
  }
  const parent = Int32Array.from(parents);
  const frozen = new Map<number, string>();
  for (const [value, reason] of freezes) {
    const v = values.get(value)!;
    for (let p = 0; p < v.width; p++) {
      const r = find(parent, v.base + p);
      if (!frozen.has(r)) frozen.set(r, reason);
    }
  }
  return { values, parent, frozen, sources, sinks, edits, partitions, intermediates, residual };
}
