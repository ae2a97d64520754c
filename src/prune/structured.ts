// Structured pruning: whole output channels of Conv layers, or output features (neurons) of
// MatMul/Gemm layers, are removed, and every tensor that depends on them is sliced to match (the
// layer's bias, a following BatchNormalization, the input channels of the next layers, through
// activations and pooling), so the model itself becomes smaller and faster. Layers whose channels
// cannot be removed consistently are left alone, with the reason.
import type { TensorProto } from "../io/types.js";
import { GraphIndex } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { floatValues, tensorBytes, tensorByteLength, toNumber } from "../ir/tensor.js";
import { dtypeInfo } from '../ir/dtype.js';
import type { Weight } from '../ir/weights.js';
import { SELECTION_OPTIONS, type OptionSpec, type OptionValues } from '../pipeline/options.js';
import { emptySummary, type Pass, type PassContext, type PassSummary } from '../pipeline/pass.js';
import { Blocked, followChannels, type SliceEdit } from './closure.js';
import { prunableWeights } from './select.js';

/** Keeps entries `keep` (each expanded to `factor` consecutive entries) along `axis` of a tensor. */
export function sliceTensor(model: Model, t: TensorProto, axis: number, keep: number[], factor: number): void {
  const dims = t.dims.map(toNumber);
  const size = dtypeInfo(t.data_type)!.bits / 8;
  if (!Number.isInteger(size) || size <= 0) throw new Error(`cannot slice a ${t.data_type} tensor`);
  const bytes = tensorBytes(model, t);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1) * size;
  const length = dims[axis]!;
  const kept = keep.length * factor;
  const out = new Uint8Array(outer * kept * inner);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const k of keep) {
      const from = (o * length + k * factor) * inner;
      const n = factor * inner;
      out.set(bytes.subarray(from, from + n), at);
      at += n;
    }
  }
  dims[axis] = kept;
  t.dims = dims;
  t.raw_data = out;
  for (const f of ['float_data', 'int32_data', 'int64_data', 'double_data', 'uint64_data'] as const) (t as unknown as Record<string, unknown>)[f] = [];
  delete t.data_location;
  t.external_data = [];
  model.external.delete(t);
}

/** Channel scores: the L1 or L2 norm of each slice along `axis`. */
export function channelNorms(values: Float32Array, dims: number[], axis: number, norm: 'l1' | 'l2'): Float64Array {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const scores = new Float64Array(channels);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      for (let i = 0; i < inner; i++) {
        const v = values[base + i]!;
        scores[c]! += norm === 'l1' ? Math.abs(v) : v * v;
      }
    }
  }
  return norm === 'l2' ? scores.map(Math.sqrt) : scores;
}

interface Source {
  weight: Weight;
  /** Axis of the weight indexing output channels. */
  axis: number;
  /** The value whose channels shrink, its pruned axis (from the end) and rank when known. */
  output: string;
  outputAxis: number;
  rank?: number;
  kind: 'channels' | 'neurons';
  bias?: string;
}

function sourceOf(w: Weight, model: Model): Source | string {
  if (w.home !== model.graph) return 'inside a subgraph';
  if (w.uses.length !== 1 || w.otherUses.length > 0) return 'shared by several nodes';
  const use = w.uses[0]!;
  const node = use.node;
  const rank = w.tensor.dims.length;
  if (use.role === 'conv') {
    if (toNumber(node.attribute.find((a) => a.name === 'group')?.i ?? 1) !== 1) return 'a grouped or depthwise Conv';
    return { weight: w, axis: 0, output: node.output[0]!, outputAxis: 1 - rank, rank, kind: 'channels', bias: node.input[2] || undefined };
  }
  if (use.role === 'matmul') return { weight: w, axis: 1, output: node.output[0]!, outputAxis: -1, kind: 'neurons' };
  if (use.role === 'gemm') return { weight: w, axis: use.outputAxis, output: node.output[0]!, outputAxis: -1, rank: 2, kind: 'neurons', bias: node.input[2] || undefined };
  return `a ${use.role} weight`;
}

export const structuredPass: Pass = {
  family: 'prune',
  method: 'structured',
  description: 'structured pruning: removes whole output channels (Conv) or neurons (MatMul/Gemm) and shrinks every tensor that depends on them',
  options: {
    ratio: { type: 'number', min: 0, max: 0.99, default: 0.3, description: 'fraction of each layer\'s output channels or neurons to remove (a layer keeps at least one)' },
    target: { type: 'enum', choices: ['channels', 'neurons', 'all'], default: 'all', description: 'channels: Conv output channels; neurons: MatMul/Gemm output features (e.g. transformer FFN); all: both' },
    score: { type: 'enum', choices: ['l1', 'l2'], default: 'l1', description: 'how channels are ranked: the L1 or L2 norm of their weights' },
    ops: { type: 'string', default: 'Conv,MatMul,Gemm', description: 'op types whose outputs are pruned' },
    ...SELECTION_OPTIONS,
    'min-size': { ...SELECTION_OPTIONS['min-size']!, default: 0 } as OptionSpec,
  },
  run(model: Model, options: OptionValues, _context: PassContext): PassSummary {
    const summary = emptySummary(this, options);
    const ratio = options.ratio as number;
    const target = options.target as 'channels' | 'neurons' | 'all';
    const { weights, skipped } = prunableWeights(model, options);
    summary.skipped.push(...skipped);
    const graph = model.graph;
    const bytesOf = new Map<TensorProto, number>();
    for (const w of weights) {
      const source = sourceOf(w, model);
      if (typeof source === 'string') { summary.skipped.push({ name: w.name, reason: source }); continue; }
      if (target !== 'all' && source.kind !== target) { summary.skipped.push({ name: w.name, reason: `its layer's ${source.kind} are not the target (${target})` }); continue; }
      // The analysis runs on the graph as already pruned by earlier layers.
      const index = new GraphIndex(graph);
      const dims = w.tensor.dims.map(toNumber);
      const channels = dims[source.axis]!;
      const remove = Math.min(channels - 1, Math.floor(channels * ratio));
      if (remove <= 0) { summary.skipped.push({ name: w.name, reason: `${channels} output channels: nothing to remove at ratio ${ratio}` }); continue; }
      let edits: SliceEdit[];
      let changed: Set<string>;
      try {
        const closure = followChannels(graph, index, source.output, source.outputAxis, source.rank, channels);
        edits = closure.edits;
        changed = closure.values;
        if (source.bias) {
          const bias = index.initializers.get(source.bias);
          if (!bias || index.consumersOf(source.bias).length !== 1) throw new Blocked(`its bias '${source.bias}' is not an initializer of its own`);
          edits.push({ tensor: bias, axis: bias.dims.length - 1, factor: 1 });
        }
      } catch (e) {
        if (e instanceof Blocked) { summary.skipped.push({ name: w.name, reason: e.message }); continue; }
        throw e;
      }
      const scores = channelNorms(floatValues(model, w.tensor), dims, source.axis, options.score as 'l1' | 'l2');
      const order = Array.from(scores.keys()).sort((a, b) => scores[a]! - scores[b]! || a - b);
      const removed = new Set(order.slice(0, remove));
      const keep = Array.from({ length: channels }, (_, i) => i).filter((i) => !removed.has(i));
      const touched = [w.tensor, ...edits.map((e) => e.tensor)];
      for (const t of touched) if (!bytesOf.has(t)) bytesOf.set(t, tensorByteLength(model, t));
      sliceTensor(model, w.tensor, source.axis, keep, 1);
      for (const e of edits) sliceTensor(model, e.tensor, e.axis, keep, e.factor);
      // Shapes recorded for the values that shrank are now wrong; ONNX Runtime infers them again.
      graph.value_info = graph.value_info.filter((v) => !changed.has(v.name ?? ''));
      const before = bytesOf.get(w.tensor)!;
      summary.tensors.push({
        name: w.name, shape: dims, dtypeBefore: 'float32', dtypeAfter: 'float32', bytesBefore: before, bytesAfter: tensorByteLength(model, w.tensor),
        form: `${remove} of ${channels} ${source.kind} removed (${options.score} norm)`,
        details: { removed: remove, kept: keep.length, dependents: edits.length },
      });
      for (const e of edits) {
        summary.tensors.push({
          name: e.tensor.name ?? '', shape: [], dtypeBefore: 'float32', dtypeAfter: 'float32', bytesBefore: bytesOf.get(e.tensor)!, bytesAfter: tensorByteLength(model, e.tensor),
          form: `sliced along axis ${e.axis} to follow ${w.name}`,
        });
      }
    }
    summary.bytesBefore = [...bytesOf.values()].reduce((a, b) => a + b, 0);
    summary.bytesAfter = [...bytesOf.keys()].reduce((n, t) => n + tensorByteLength(model, t), 0);
    return summary;
  },
};

