// Structured pruning: whole output channels of Conv layers, or output features (neurons) of
// MatMul/Gemm layers, are removed, and every tensor that depends on them is sliced to match (the
// layer's bias, a following BatchNormalization, the input channels of the next layers, through
// activations and pooling), so the model itself becomes smaller and faster. Layers whose channels
// cannot be removed consistently are left alone, with the reason.
import type { NodeProto, TensorProto } from '../ir/onnx.js';
import { GraphIndex } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { floatValues, tensorByteLength, tensorValues, toNumber } from '../ir/tensor.js';
import { parseOpList } from '../pass/ops.js';
import { selectionOptions } from '../pass/options.js';
import { definePass, emptySummary, type PassContext, type PassSummary } from '../pass/pass.js';
import { optionFilter } from '../pass/select.js';
import { Blocked, followChannels, paramOf, type Param, type SliceEdit } from './closure.js';
import { pruneHeads } from './heads.js';
import { sliceTensor } from './slice.js';
import { setData } from '../ir/data.js';

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
  node: NodeProto;
  weight: Param;
  /** Axis of the weight indexing output channels. */
  axis: number;
  /** The value whose channels shrink, its pruned axis (from the end) and rank when known. */
  output: string;
  outputAxis: number;
  rank?: number;
  kind: 'channels' | 'neurons';
  bias?: string;
}

function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i !== undefined ? toNumber(a.i) : fallback;
}

/** The layer `node` as a source of prunable output channels, or why it is not one. */
function sourceOf(node: NodeProto, index: GraphIndex): Source | string | undefined {
  const op = node.op_type;
  if ((node.domain ?? '') !== '' || (op !== 'Conv' && op !== 'MatMul' && op !== 'Gemm')) return undefined;
  const weight = node.input[1] ? paramOf(index, node.input[1]) : undefined;
  if (!weight) return undefined;
  if (index.consumersOf(weight.name).length !== 1) return 'shared by several nodes';
  const rank = weight.dims.length;
  if (op === 'Conv') {
    if (attrInt(node, 'group', 1) !== 1) return 'a grouped or depthwise Conv';
    return {
      node,
      weight,
      axis: 0,
      output: node.output[0]!,
      outputAxis: 1 - rank,
      rank,
      kind: 'channels',
      bias: node.input[2] || undefined,
    };
  }
  if (rank !== 2) return `a ${rank}-D weight`;
  if (op === 'MatMul') return { node, weight, axis: 1, output: node.output[0]!, outputAxis: -1, kind: 'neurons' };
  if (attrInt(node, 'transA', 0) !== 0) return 'a Gemm with transA';
  return {
    node,
    weight,
    axis: attrInt(node, 'transB', 0) ? 0 : 1,
    output: node.output[0]!,
    outputAxis: -1,
    rank: 2,
    kind: 'neurons',
    bias: node.input[2] || undefined,
  };
}

/** Rewrites the shape of a ConstantOfShape parameter so that `axis` has `size` entries. */
function setShape(shape: TensorProto, axis: number, size: number): void {
  const values = Array.from(tensorValues(shape) as BigInt64Array);
  values[axis] = BigInt(size);
  setData(shape, new Uint8Array(BigInt64Array.from(values).buffer));
}

export const structuredPass = definePass({
  family: 'prune',
  method: 'structured',
  description:
    'structured pruning: removes whole output channels (Conv) or neurons (MatMul/Gemm) and shrinks every tensor that depends on them',
  options: {
    ratio: {
      type: 'number',
      min: 0,
      max: 0.99,
      default: 0.3,
      description: "fraction of each layer's output channels or neurons to remove (a layer keeps at least one)",
    },
    target: {
      type: 'enum',
      choices: ['channels', 'neurons', 'heads', 'all'],
      default: 'all',
      description:
        'channels: Conv output channels; neurons: MatMul/Gemm output features (e.g. transformer FFN); heads: attention heads (as --prune heads); all: channels and neurons',
    },
    multiple: {
      type: 'integer',
      min: 1,
      max: 256,
      default: 1,
      description: 'keep a multiple of this many channels per layer (8 or 16 suit vectorized kernels); fewer are removed to round up',
    },
    score: {
      type: 'enum',
      choices: ['l1', 'l2'],
      default: 'l1',
      description: 'how channels are ranked: the L1 or L2 norm of their weights',
    },
    ops: { type: 'string', default: 'Conv,MatMul,Gemm', description: 'op types whose outputs are pruned' },
    ...selectionOptions(0),
  },
  run(model: Model, options, _context: PassContext): PassSummary {
    const summary = emptySummary(this, options);
    const { ratio, target } = options;
    if (target === 'heads') {
      pruneHeads(model, ratio, summary);
      return summary;
    }
    const ops = parseOpList(options.ops);
    const byOptions = optionFilter(options);
    const graph = model.graph;
    const bytesOf = new Map<TensorProto, number>();
    for (const layer of [...graph.node]) {
      if (!ops.has(layer.op_type ?? '')) continue;
      // The analysis runs on the graph as already pruned by earlier layers.
      const index = new GraphIndex(graph);
      const source = sourceOf(layer, index);
      if (source === undefined) continue;
      const name = typeof source === 'string' ? (layer.input[1] ?? layer.name ?? '') : source.weight.name;
      if (typeof source === 'string') {
        summary.skipped.push({ name, reason: source });
        continue;
      }
      const unwanted = byOptions(
        [name, layer.name ?? ''].filter((n) => n !== ''),
        source.weight.dims.reduce((a, b) => a * b, 1),
      );
      if (unwanted) {
        summary.skipped.push({ name, reason: unwanted, chosen: true });
        continue;
      }
      if (target !== 'all' && source.kind !== target) {
        summary.skipped.push({ name, reason: `its layer's ${source.kind} are not the target (${target})` });
        continue;
      }
      const dims = source.weight.dims;
      const channels = dims[source.axis]!;
      const multiple = options.multiple;
      const kept = Math.min(channels, Math.max(1, Math.ceil((channels - Math.floor(channels * ratio)) / multiple) * multiple));
      const remove = channels - kept;
      if (remove <= 0) {
        summary.skipped.push({ name, reason: `${channels} output channels: nothing to remove at ratio ${ratio}` });
        continue;
      }
      let edits: SliceEdit[];
      let changed: Set<string>;
      try {
        const closure = followChannels(graph, index, source.output, source.outputAxis, source.rank, channels);
        edits = closure.edits;
        changed = closure.values;
        if (source.bias) {
          const bias = paramOf(index, source.bias);
          if (!bias || index.consumersOf(source.bias).length !== 1)
            throw new Blocked(`its bias '${source.bias}' is not a parameter of its own`);
          edits.push({ tensor: bias.tensor, axis: bias.dims.length - 1, factor: 1, shapeOnly: bias.shapeOnly || undefined });
        }
      } catch (e) {
        if (e instanceof Blocked) {
          summary.skipped.push({ name, reason: e.message });
          continue;
        }
        throw e;
      }
      // Parameters generated by ConstantOfShape hold one value everywhere: every channel scores the same.
      const scores = source.weight.shapeOnly
        ? new Float64Array(channels)
        : channelNorms(floatValues(source.weight.tensor), dims, source.axis, options.score);
      const order = Array.from(scores.keys()).sort((a, b) => scores[a]! - scores[b]! || a - b);
      const removed = new Set(order.slice(0, remove));
      const keep = Array.from({ length: channels }, (_, i) => i).filter((i) => !removed.has(i));
      const all: SliceEdit[] = [
        { tensor: source.weight.tensor, axis: source.axis, factor: 1, shapeOnly: source.weight.shapeOnly || undefined },
        ...edits,
      ];
      for (const e of all) if (!bytesOf.has(e.tensor)) bytesOf.set(e.tensor, tensorByteLength(e.tensor));
      for (const e of all) {
        if (e.shapeOnly) setShape(e.tensor, e.axis, keep.length * e.factor);
        else sliceTensor(e.tensor, e.axis, keep, e.factor);
      }
      // Shapes recorded for the values that shrank are now wrong: value_info entries go (ONNX Runtime
      // infers them again), and initializers listed as graph inputs (IR < 4) get their new shape.
      const parameters = new Map<string, number[]>();
      for (const e of all) {
        const p = e.shapeOnly
          ? [...index.producer.values()].find((n) => n.op_type === 'ConstantOfShape' && n.input[0] === e.tensor.name)?.output[0]
          : e.tensor.name;
        if (p) parameters.set(p, e.shapeOnly ? Array.from(tensorValues(e.tensor) as BigInt64Array, Number) : e.tensor.dims.map(toNumber));
      }
      graph.value_info = graph.value_info.filter((v) => !changed.has(v.name ?? '') && !parameters.has(v.name ?? ''));
      for (const input of graph.input) {
        const dims = parameters.get(input.name ?? '');
        const shape = input.type?.tensor_type?.shape;
        if (dims && shape) shape.dim = dims.map((d) => ({ dim_value: d }));
      }
      summary.tensors.push({
        name,
        shape: dims,
        dtypeBefore: 'float32',
        dtypeAfter: 'float32',
        bytesBefore: bytesOf.get(source.weight.tensor)!,
        bytesAfter: tensorByteLength(source.weight.tensor),
        form: `${remove} of ${channels} ${source.kind} removed (${source.weight.shapeOnly ? 'generated by ConstantOfShape: shape rewritten' : `${options.score} norm`})`,
        details: { removed: remove, kept: keep.length, dependents: edits.length },
      });
      for (const e of edits) {
        summary.tensors.push({
          name: e.tensor.name ?? '',
          shape: [],
          dtypeBefore: 'float32',
          dtypeAfter: 'float32',
          bytesBefore: bytesOf.get(e.tensor)!,
          bytesAfter: tensorByteLength(e.tensor),
          form: `${e.shapeOnly ? 'shape' : 'sliced'} along axis ${e.axis} to follow ${name}`,
        });
      }
    }
    summary.bytesBefore = [...bytesOf.values()].reduce((a, b) => a + b, 0);
    summary.bytesAfter = [...bytesOf.keys()].reduce((n, t) => n + tensorByteLength(t), 0);
    return summary;
  },
});
