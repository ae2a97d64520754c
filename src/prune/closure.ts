// What removing output channels of one layer drags along. Starting from the layer's output, the
// pruned axis is followed forward through ops that keep it (activations, normalization, pooling,
// elementwise ops with broadcastable constants) up to the layers that consume it (whose input
// channels shrink). Anything that would mix the pruned channels with a branch that is not pruned
// the same way (a residual Add, a Concat, a Reshape) stops the analysis with a reason.
import type { GraphProto, NodeProto, TensorProto } from '../io/types.js';
import type { GraphIndex } from '../ir/graph.js';
import { constantTensor, toNumber } from '../ir/tensor.js';
import { normalDomain } from '../ir/opset.js';

/** An initializer to slice: keep `keep` (expanded by `factor` consecutive entries each) along `axis`. */
export interface SliceEdit {
  tensor: TensorProto;
  axis: number;
  /** Entries along the axis are grouped `factor` at a time (a Flatten of C×H×W gives factor H·W). */
  factor: number;
}

export interface Closure {
  edits: SliceEdit[];
  /** Values whose shape changes (their value_info entries must go). */
  values: Set<string>;
}

const UNARY = new Set(['Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Erf', 'Gelu', 'Elu', 'Selu', 'Celu', 'HardSigmoid', 'HardSwish',
  'Softplus', 'Softsign', 'Abs', 'Neg', 'Sqrt', 'Exp', 'Log', 'Identity', 'Cast', 'Clip', 'Mish', 'ThresholdedRelu', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sign']);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'PRelu']);
const POOL = new Set(['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'GlobalLpPool']);

function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i !== undefined ? toNumber(a.i) : fallback;
}

export class Blocked extends Error {}

interface PrunedValue {
  /** The pruned axis counted from the end (−1 the last axis). */
  axis: number;
  /** The value's rank when known (needed for channel-first ops). */
  rank?: number;
  factor: number;
}

/**
 * Follows the pruned channels of `start` (axis `axis` from the end, of `channels` entries) forward.
 * Throws Blocked with a reason when the channels cannot be removed consistently.
 */
export function followChannels(graph: GraphProto, index: GraphIndex, start: string, axis: number, rank: number | undefined, channels: number): Closure {
  const edits: SliceEdit[] = [];
  const values = new Set<string>();
  const states = new Map<string, PrunedValue>();
  const queue: string[] = [start];
  states.set(start, { axis, rank, factor: 1 });
  const outputs = new Set(graph.output.map((o) => o.name));
  const constant = (name: string): TensorProto | undefined => {
    const init = index.initializers.get(name);
    if (init) return init;
    const producer = index.producer.get(name);
    return producer ? constantTensor(producer) : undefined;
  };
  const ownInitializer = (name: string, user: NodeProto): TensorProto => {
    const t = index.initializers.get(name);
    if (!t) throw new Blocked(`'${user.name || user.op_type}' reads '${name}', which is not an initializer`);
    if (index.consumersOf(name).some((c) => c !== user)) throw new Blocked(`'${name}' is shared with other nodes`);
    return t;
  };
  // A Flatten leaves the number of features per channel (H·W) to be read off the consuming weight.
  const factorFor = (t: TensorProto, axis: number, state: PrunedValue): number => {
    if (state.factor !== 0) return state.factor;
    const dim = toNumber(t.dims[axis]!);
    if (dim % channels !== 0) throw new Blocked(`'${t.name}' has ${dim} input features, not a multiple of the ${channels} channels flattened into it`);
    return dim / channels;
  };
  const sliceAligned = (name: string, user: NodeProto, state: PrunedValue) => {
    const t = constant(name);
    if (!t) throw new Blocked(`'${user.name || user.op_type}' mixes the pruned channels with '${name}', a branch that is not pruned the same way (a residual or skip connection)`);
    const rank = t.dims.length;
    const pos = rank + state.axis;
    if (pos < 0) return; // broadcast over the pruned axis
    const dim = toNumber(t.dims[pos]!);
    if (dim === 1) return;
    const factor = factorFor(t, pos, state);
    if (dim !== channels * factor) throw new Blocked(`'${name}' has ${dim} entries on the pruned axis, expected ${channels * factor}`);
    edits.push({ tensor: ownInitializer(name, user), axis: pos, factor });
  };
  const done = new Set<NodeProto>();
  // A binary op whose other input is not pruned yet may be waiting for a branch still in the queue
  // (GELU multiplies x by a function of x): such nodes are retried once the queue runs dry.
  let deferred: { node: NodeProto; name: string; reason: string }[] = [];
  const visit = (node: NodeProto, name: string): string | undefined => {
    const state = states.get(name)!;
    const op = normalDomain(node.domain) === '' ? node.op_type ?? '' : `${node.domain}.${node.op_type}`;
    const label = node.name || op;
    if (node.attribute.some((a) => a.g || a.graphs.length)) throw new Blocked(`'${label}' (${op}) reads it inside a subgraph`);
    const forward = (out: string | undefined, s: PrunedValue = state) => {
      if (!out || states.has(out)) return;
      states.set(out, s);
      queue.push(out);
    };
    const channelFirst = state.rank !== undefined && state.axis === 1 - state.rank;
    if (UNARY.has(op) || op === 'Dropout') {
      if (op === 'Clip') for (const extra of node.input.slice(1)) if (extra && !constant(extra)) throw new Blocked(`'${label}' clips with a computed bound`);
      forward(node.output[0]);
    } else if (BINARY.has(op)) {
      for (const other of node.input) {
        if (!other || other === name || states.has(other)) continue;
        if (!constant(other)) return `'${label}' mixes the pruned channels with '${other}', a branch that is not pruned the same way (a residual or skip connection)`;
      }
      for (const other of node.input) if (other && other !== name && !states.has(other)) sliceAligned(other, node, state);
      forward(node.output[0]);
    } else if (op === 'BatchNormalization' || op === 'InstanceNormalization') {
      if (!channelFirst || node.input[0] !== name) throw new Blocked(`'${label}' normalizes over an axis other than the pruned one`);
      for (const p of node.input.slice(1)) if (p) edits.push({ tensor: ownInitializer(p, node), axis: 0, factor: 1 });
      forward(node.output[0]);
    } else if (POOL.has(op)) {
      if (!channelFirst) throw new Blocked(`'${label}' pools an input whose pruned axis is not the channel axis`);
      forward(node.output[0]);
    } else if (op === 'Conv' || op === 'ConvTranspose') {
      if (node.input[0] !== name || !channelFirst || attrInt(node, 'group', 1) !== 1) throw new Blocked(`'${label}' (${op}) reads it in a way that cannot shrink (grouped, or as a weight)`);
      // Conv weights are [M, C, ...] (input channels on axis 1); ConvTranspose weights [C, M, ...] (axis 0).
      edits.push({ tensor: ownInitializer(node.input[1]!, node), axis: op === 'Conv' ? 1 : 0, factor: 1 });
    } else if (op === 'MatMul') {
      if (node.input[0] !== name || state.axis !== -1) throw new Blocked(`'${label}' (MatMul) does not reduce over the pruned axis`);
      const w = ownInitializer(node.input[1]!, node);
      if (w.dims.length !== 2) throw new Blocked(`'${label}' has a ${w.dims.length}-D weight`);
      edits.push({ tensor: w, axis: 0, factor: factorFor(w, 0, state) });
    } else if (op === 'Gemm') {
      if (node.input[0] !== name || state.axis !== -1 || attrInt(node, 'transA', 0) !== 0) throw new Blocked(`'${label}' (Gemm) does not reduce over the pruned axis`);
      const w = ownInitializer(node.input[1]!, node);
      const wAxis = attrInt(node, 'transB', 0) ? 1 : 0;
      edits.push({ tensor: w, axis: wAxis, factor: factorFor(w, wAxis, state) });
    } else if (op === 'Flatten') {
      if (!channelFirst || attrInt(node, 'axis', 1) !== 1) throw new Blocked(`'${label}' flattens across the batch axis`);
      // [N, C, H, W] → [N, C·H·W]: each channel becomes H·W consecutive features; H·W is learned from the consumer.
      forward(node.output[0], { axis: -1, rank: 2, factor: 0 });
    } else {
      throw new Blocked(`'${label}' (${op}) would have to change with it, and onnxpress cannot rewrite that op consistently`);
    }
    return undefined;
  };
  for (;;) {
    while (queue.length > 0) {
      const name = queue.shift()!;
      values.add(name);
      if (outputs.has(name)) throw new Blocked(`'${name}' is an output of the model, whose shape must not change`);
      for (const node of index.consumersOf(name)) {
        if (done.has(node)) continue;
        const wait = visit(node, name);
        if (wait) deferred.push({ node, name, reason: wait });
        else done.add(node);
      }
    }
    const retry = deferred.filter((d) => !done.has(d.node));
    deferred = [];
    let progress = false;
    for (const d of retry) {
      const wait = visit(d.node, d.name);
      if (wait) deferred.push({ ...d, reason: wait });
      else { done.add(d.node); progress = true; }
    }
    if (deferred.length === 0 && queue.length === 0) break;
    if (!progress && queue.length === 0) throw new Blocked(deferred[0]!.reason);
  }
  return { edits, values };
}
