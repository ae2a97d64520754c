// Structured pruning: whole output channels of Conv layers, or output features (neurons) of
// MatMul/Gemm layers, are removed, and every tensor that depends on them is sliced to match (the
// layer's bias, a following BatchNormalization, the input channels of the next layers, through
// activations and pooling), so the model itself becomes smaller and faster. Layers whose channels
// cannot be removed consistently are left alone, with the reason.
import type { Progress } from '../kernels/progress.js';
import { type NodeProto, type TensorProto, DataType } from '../ir/onnx.js';
import { GraphIndex } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { ModelEditor } from '../ir/editor.js';
import { makeNode } from '../ir/build.js';
import { opsetVersion } from '../ir/opset.js';
import { floatValues, makeTensor, tensorByteLength, tensorValues, toNumber } from '../ir/tensor.js';
import { setData } from '../ir/data.js';
import { parseOpList } from '../pass/ops.js';
import { selectionOptions } from '../pass/options.js';
import { definePass, emptySummary, type PassContext, type PassSummary } from '../pass/pass.js';
import { optionFilter } from '../pass/select.js';
import { calibrate, calibrationProblem, collectActivations } from '../runtime/calibrate.js';
import { paramOf, type Param } from './params.js';
import { attrInt, channelGroup, find, type ChannelGroup, type Sink, type Source } from './channel-groups.js';
import { attentionBlocks, pruneHeads, type AttentionBlock } from './heads.js';
import { entryIndex, rebuild, type Reconstruction, type WeightLayout } from './reconstruct.js';
import { selectUnits } from './select-units.js';
import { accumulate, finish, newStats, type SinkStats } from './sink-stats.js';
import { sliceTensor } from './slice.js';

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

/** Rewrites entry `entry` of an int64 shape tensor (a ConstantOfShape parameter's or a Reshape's). */
function setShape(shape: TensorProto, entry: number, size: number): void {
  const values = Array.from(tensorValues(shape) as BigInt64Array);
  values[entry] = BigInt(size);
  setData(shape, new Uint8Array(BigInt64Array.from(values).buffer));
}

/** A grouped Conv's weight [M, C/G, …]: the rows of group g keep the input channels group g keeps. */
function sliceGroupedInput(p: Param, keep: number[], channels: number, groups: number): void {
  const per = channels / groups;
  const kept = keep.filter((c) => c < per).length;
  if (p.shapeOnly) {
    setShape(p.tensor, 1, kept);
    return;
  }
  const dims = p.tensor.dims.map(toNumber);
  const values = floatValues(p.tensor);
  const rows = dims[0]!;
  const kernel = dims.slice(2).reduce((a, b) => a * b, 1);
  const out = new Float32Array(rows * kept * kernel);
  let at = 0;
  for (let o = 0; o < rows; o++) {
    const g = Math.floor(o / (rows / groups));
    for (const c of keep) {
      if (Math.floor(c / per) !== g) continue;
      const from = (o * per + (c - g * per)) * kernel;
      out.set(values.subarray(from, from + kernel), at);
      at += kernel;
    }
  }
  p.tensor.dims = [rows, kept, ...dims.slice(2)];
  setData(p.tensor, new Uint8Array(out.buffer));
}

const SCORES = ['l1', 'l2', 'activation'] as const;

export const structuredPass = definePass({
  family: 'prune',
  method: 'structured',
  description:
    'structured pruning: removes whole output channels (Conv) or neurons (MatMul/Gemm), jointly across residual streams, concatenations and grouped convolutions, and shrinks every tensor that depends on them; with calibration data, scores by activations and reconstructs the next layer',
  options: {
    ratio: {
      type: 'number',
      min: 0,
      max: 0.99,
      default: 0.3,
      description:
        "fraction of each layer's output channels or neurons to remove (a layer keeps at least one; a residual stream loses the fraction once, for every layer writing into it)",
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
      choices: ['auto', ...SCORES],
      default: 'auto',
      description:
        "how channels are ranked: l1/l2: the norm of the layer's weights for that channel; activation: what removing it changes in the next layers' outputs on the calibration data, ‖X_c − mean‖·‖W_:,c‖ (‖X_c‖·‖W_:,c‖ with reconstruct=none); auto: activation with calibration, else l1",
    },
    reconstruct: {
      type: 'enum',
      choices: ['auto', 'none', 'bias', 'lstsq'],
      default: 'auto',
      description:
        "with calibration: bias: the removed channels' mean contribution goes into the next layer's bias (FLAP); lstsq: the next layer's weights on the kept channels and its bias are solved by ridge least squares to reproduce its original output on the calibration data (He et al. 2017); auto: lstsq with calibration, else none",
    },
    damp: {
      type: 'number',
      min: 0,
      max: 10,
      default: 0.1,
      description: "lstsq's ridge damping towards the layer's own weights, as a fraction of the kept features' mean XᵀX diagonal",
    },
    calibration: {
      type: 'string',
      description:
        'inputs to calibrate on (a test_data_set folder, .npz, .npy or .pb, like --data): channels are then scored by their activations and the next layers reconstructed',
    },
    ops: { type: 'string', default: 'Conv,MatMul,Gemm', description: 'op types whose outputs are pruned' },
    ...selectionOptions(0),
  },
  validate(options): string | undefined {
    if (options.calibration === undefined && options.score === 'activation') return 'score=activation needs calibration=DATA';
    if (options.calibration === undefined && (options.reconstruct === 'bias' || options.reconstruct === 'lstsq'))
      return `reconstruct=${options.reconstruct} needs calibration=DATA`;
    return calibrationProblem(options);
  },
  async run(model: Model, options, context: PassContext): Promise<PassSummary> {
    const summary = emptySummary(this, options);
    const { ratio, target } = options;
    const calibrated = options.calibration !== undefined;
    const score = options.score === 'auto' ? (calibrated ? 'activation' : 'l1') : options.score;
    const mode: Reconstruction = options.reconstruct === 'auto' ? (calibrated ? 'lstsq' : 'none') : options.reconstruct;
    if (target === 'heads') {
      if (!calibrated) pruneHeads(model, ratio, summary);
      else
        await calibratedHeads(
          model,
          options.calibration!,
          { ratio, score, mode, damp: options.damp },
          summary,
          context.progress,
          context.threads,
        );
      return summary;
    }
    const ops = parseOpList(options.ops);
    const byOptions = optionFilter(options);
    const graph = model.graph;
    const index = new GraphIndex(graph);
    const opset = opsetVersion(model.proto, '') ?? 1;
    const refuse = (node: NodeProto, weight: Param): string | undefined => {
      if (!ops.has(node.op_type ?? '')) return `'${node.name || node.op_type}' (${node.op_type}) is not among ops=${options.ops}`;
      const kind = node.op_type === 'Conv' ? 'channels' : 'neurons';
      if (target !== 'all' && kind !== target) return `its layer's ${kind} are not the target (${target})`;
      return byOptions(
        [weight.name, node.name ?? ''].filter((n) => n !== ''),
        weight.dims.reduce((a, b) => a * b, 1),
      );
    };
    // Every group is found on the model as read: groups are disjoint, and calibration sees the original.
    const groups: ChannelGroup[] = [];
    const grouped = new Set<NodeProto>();
    for (const layer of graph.node) {
      if (!ops.has(layer.op_type ?? '') || grouped.has(layer)) continue;
      const problem = seedProblem(layer, index);
      if (problem === undefined) continue;
      const name = layer.input[1] ?? layer.name ?? '';
      if (typeof problem === 'string') {
        summary.skipped.push({ name, reason: problem });
        continue;
      }
      const refused = refuse(layer, problem);
      if (refused) {
        summary.skipped.push({
          name,
          reason: refused,
          chosen:
            byOptions(
              [name, layer.name ?? ''],
              problem.dims.reduce((a, b) => a * b, 1),
            ) === refused,
        });
        continue;
      }
      const group = channelGroup(index, layer, { opset, refuse });
      for (const s of group.sources) grouped.add(s.node);
      grouped.add(layer);
      groups.push(group);
    }
    const stats = calibrated
      ? await calibrateSinks(
          model,
          groups.flatMap((g) => g.sinks),
          options.calibration!,
          context.progress,
          context.threads,
        )
      : undefined;
    if (stats) {
      summary.notes.push(
        `calibrated on ${stats.source} (${stats.samples} samples): scores ${score}, reconstruction ${mode}${mode === 'lstsq' ? ` (damp ${options.damp})` : ''}`,
      );
    }
    const bytesOf = new Map<TensorProto, number>();
    const editor = new ModelEditor(model);
    const createdBias = new Map<NodeProto, TensorProto>();
    for (const group of groups) {
      applyGroup(group, {
        model,
        createdBias,
        index,
        summary,
        bytesOf,
        editor,
        ratio,
        multiple: options.multiple,
        score,
        mode,
        damp: options.damp,
        stats: stats?.bySink,
      });
    }
    // Sparsity as the other pruning passes give it: the fraction of the weight's original elements gone.
    for (const t of summary.tensors)
      if (t.bytesBefore > 0 && t.form && !/^(shape|reshape) |generated by ConstantOfShape/.test(t.form))
        t.sparsity = 1 - t.bytesAfter / t.bytesBefore;
    summary.bytesBefore = [...bytesOf.values()].reduce((a, b) => a + b, 0);
    summary.bytesAfter = [...bytesOf.keys()].reduce((n, t) => n + tensorByteLength(t), 0);
    return summary;
  },
});

/** Why a layer cannot start a group (a string), the weight it starts one with, or undefined when it is not a layer at all. */
function seedProblem(node: NodeProto, index: GraphIndex): Param | string | undefined {
  const op = node.op_type;
  if ((node.domain ?? '') !== '' || (op !== 'Conv' && op !== 'MatMul' && op !== 'Gemm')) return undefined;
  const weight = node.input[1] ? paramOf(index, node.input[1]) : undefined;
  if (!weight) return undefined;
  if (index.consumersOf(weight.name).length !== 1) return 'shared by several nodes';
  const rank = weight.dims.length;
  if (op === 'Conv') {
    if (attrInt(node, 'group', 1) > 1 && weight.dims[1] === 1)
      return "a depthwise Conv: its channels are its input's, removed with the layer that writes them";
    return weight;
  }
  if (rank !== 2) return `a ${rank}-D weight`;
  if (op === 'Gemm' && attrInt(node, 'transA', 0) !== 0) return 'a Gemm with transA';
  return weight;
}

interface CalibratedSinks {
  bySink: Map<NodeProto, SinkStats>;
  samples: number;
  source: string;
}

/**
 * Heads scored by the output projection's calibrated inputs (each head's Dh features: ‖X_h‖·‖W_h,:‖,
 * as channels), and the output projection rebuilt for the heads it loses.
 */
async function calibratedHeads(
  model: Model,
  data: string,
  o: { ratio: number; score: (typeof SCORES)[number]; mode: Reconstruction; damp: number },
  summary: PassSummary,
  progress: Progress,
  threads: number,
): Promise<void> {
  const index = new GraphIndex(model.graph);
  const blocks = attentionBlocks(model, summary.skipped);
  const sinks = new Map<AttentionBlock, Sink>();
  for (const b of blocks) {
    const weight = paramOf(index, b.outWeight.name!)!;
    sinks.set(b, { node: b.outNode, weight, value: b.merge.output[0]!, axis: 0, factor: b.headSize, op: 'MatMul', groups: 1 });
  }
  const stats = await calibrateSinks(model, [...sinks.values()], data, progress, threads);
  summary.notes.push(
    `calibrated on ${stats.source} (${stats.samples} samples): scores ${o.score}, reconstruction ${o.mode}${o.mode === 'lstsq' ? ` (damp ${o.damp})` : ''}`,
  );
  const ctx = { model, index, editor: new ModelEditor(model), mode: o.mode, damp: o.damp, stats: stats.bySink, createdBias: new Map() };
  pruneHeads(
    model,
    o.ratio,
    summary,
    {
      scores: (b) => {
        const sink = sinks.get(b)!;
        const s = stats.bySink.get(sink.node);
        return o.score === 'activation' && s ? activationScores(sink, s, floatValues(b.outWeight), o.mode !== 'none', b.heads) : undefined;
      },
      rebuild: (b, keep) => reconstructSink(sinks.get(b)!, keep, b.heads, ctx),
    },
    blocks,
  );
}

/** One run of the original model on the calibration data, collecting every sink's input statistics. */
/**
 * XᵀX is collected for every layer (up to GRAM_LIMIT features): lstsq needs it, and every mode
 * reports the layer's output error from it. MatMul/Gemm inputs (features on the last axis) get it
 * from ONNX Runtime's own matrix product (runtime/calibrate.ts), Conv inputs (im2col patches) here.
 */
async function calibrateSinks(model: Model, sinks: Sink[], data: string, progress: Progress, threads: number): Promise<CalibratedSinks> {
  const bySink = new Map<NodeProto, SinkStats>();
  const readers = new Map<string, Sink[]>();
  const products: Sink[] = [];
  for (const sink of sinks) {
    if (sink.weight.shapeOnly) continue;
    const stats = newStats(sink, true);
    if (sink.op !== 'Conv' && stats.gram) {
      products.push(sink);
      continue;
    }
    bySink.set(sink.node, stats);
    const name = sink.node.input[0]!;
    readers.set(name, [...(readers.get(name) ?? []), sink]);
  }
  let run = { samples: 0, source: data };
  if (products.length > 0) {
    const grams = products.map((sink) => ({ name: sink.node.input[0]!, k: sink.weight.dims[sink.axis]!, sums: true }));
    const c = await calibrate(model, { grams }, data, progress, threads);
    run = { samples: c.samples, source: c.source };
    for (const sink of products) {
      const g = c.gram.get(sink.node.input[0]!);
      if (!g?.sums) continue;
      const sq = Float64Array.from({ length: g.k }, (_, i) => g.matrix[i * g.k + i]!);
      bySink.set(sink.node, { k: g.k, spread: 1, perPosition: sink.factor, sum: g.sums, sq, gram: g.matrix, rows: g.rows });
    }
  }
  if (readers.size > 0) {
    run = await collectActivations(
      model,
      [...readers.keys()],
      data,
      (name, values, dims) => {
        for (const sink of readers.get(name) ?? []) accumulate(bySink.get(sink.node)!, sink, values, dims);
      },
      progress,
      threads,
    );
    for (const sink of readers.values()) for (const k of sink) finish(bySink.get(k.node)!);
  }
  return { bySink, ...run };
}

interface ApplyContext {
  model: Model;
  /** Biases reconstruction added to layers that had none, by layer: a later group removing the layer's outputs slices them too. */
  createdBias: Map<NodeProto, TensorProto>;
  index: GraphIndex;
  summary: PassSummary;
  bytesOf: Map<TensorProto, number>;
  editor: ModelEditor;
  ratio: number;
  multiple: number;
  score: (typeof SCORES)[number];
  mode: Reconstruction;
  damp: number;
  stats?: Map<NodeProto, SinkStats>;
}

/** Dims as they are now: an earlier group may have sliced another axis of the same weight. */
const currentDims = (p: Param): number[] => (p.shapeOnly ? p.dims : p.tensor.dims.map(toNumber));

function layoutOf(sink: Sink): WeightLayout {
  const dims = currentDims(sink.weight);
  if (sink.op === 'Conv') {
    const kernel = dims.slice(2).reduce((a, b) => a * b, 1);
    return { outputs: dims[0]!, features: dims[1]!, spread: kernel, featuresFirst: false };
  }
  return sink.axis === 0
    ? { outputs: dims[1]!, features: dims[0]!, spread: 1, featuresFirst: true }
    : { outputs: dims[0]!, features: dims[1]!, spread: 1, featuresFirst: false };
}

/** The layout of a sink's weight as its statistics see it (im2col: channel × kernel features). */
function statsLayout(sink: Sink, stats: SinkStats): WeightLayout {
  const l = layoutOf(sink);
  if (sink.op !== 'Conv') return l;
  return stats.spread === 1 ? { ...l, features: l.features * l.spread, spread: 1 } : l;
}

/** Per position of the sink's input: ‖X_p (− mean)‖ · ‖W_:,p‖ on the calibration data. */
function activationScores(sink: Sink, stats: SinkStats, weights: Float32Array, centered: boolean, width: number): Float64Array {
  const l = statsLayout(sink, stats);
  const scores = new Float64Array(width);
  const groups = sink.groups;
  const per = stats.perPosition;
  for (let p = 0; p < width; p++) {
    let energy = 0,
      norm = 0;
    for (let f = p * per; f < (p + 1) * per; f++) {
      const mean = stats.rows > 0 ? stats.sum[f]! / stats.rows : 0;
      energy += Math.max(0, stats.sq[f]! / Math.max(1, stats.rows) - (centered ? mean * mean : 0));
      if (groups > 1) {
        // A grouped Conv's input channel f is column f mod C/G of its group's rows.
        const perGroup = stats.k / groups;
        const g = Math.floor(f / perGroup);
        const rows = l.outputs / groups;
        for (let o = g * rows; o < (g + 1) * rows; o++)
          for (let t = 0; t < l.spread; t++) norm += weights[(o * perGroup + (f - g * perGroup)) * l.spread + t]! ** 2;
      } else for (let o = 0; o < l.outputs; o++) for (let t = 0; t < l.spread; t++) norm += weights[entryIndex(l, o, f, t)]! ** 2;
    }
    scores[p] = Math.sqrt(energy) * Math.sqrt(norm);
  }
  return scores;
}

function applyGroup(group: ChannelGroup, ctx: ApplyContext): void {
  const { summary, bytesOf } = ctx;
  const { values, parent, sources, sinks, edits } = group;
  const name = (s: Source) => s.weight.name;
  // Unit scores: the sum over the group's layers of each position's score.
  const scores = new Map<number, number>();
  const add = (v: string, per: Float64Array) => {
    const state = values.get(v)!;
    for (let p = 0; p < state.width; p++) {
      const r = find(parent, state.base + p);
      scores.set(r, (scores.get(r) ?? 0) + per[p]!);
    }
  };
  for (let p = 0; p < parent.length; p++) scores.set(find(parent, p), 0);
  if (ctx.score === 'activation') {
    for (const sink of sinks) {
      const stats = ctx.stats?.get(sink.node);
      if (!stats) continue;
      const width = values.get(sink.value)!.width;
      add(sink.value, activationScores(sink, stats, floatValues(sink.weight.tensor), ctx.mode !== 'none', width));
    }
  } else {
    for (const s of sources) {
      // Parameters generated by ConstantOfShape hold one value everywhere: every channel scores the same.
      const norms = s.weight.shapeOnly
        ? new Float64Array(values.get(s.value)!.width)
        : channelNorms(floatValues(s.weight.tensor), currentDims(s.weight), s.axis, ctx.score);
      if (sources.length > 1) {
        // Layers of one stream are weighed alike: each layer's norms relative to their mean.
        const mean = norms.reduce((a, b) => a + b, 0) / norms.length;
        if (mean > 0) for (let i = 0; i < norms.length; i++) norms[i]! /= mean;
      }
      add(s.value, norms);
    }
  }
  const selection = selectUnits(group, scores, ctx.ratio, ctx.multiple);
  const { removed } = selection;
  const keepOf = (value: string): number[] => {
    const v = values.get(value)!;
    const keep: number[] = [];
    for (let p = 0; p < v.width; p++) if (!removed.has(find(parent, v.base + p))) keep.push(p);
    return keep;
  };
  if (removed.size === 0) {
    for (const s of sources) {
      const v = values.get(s.value)!;
      const reasons = new Set<string>();
      for (let p = 0; p < v.width; p++) {
        const why = group.frozen.get(find(parent, v.base + p));
        if (why) reasons.add(why);
      }
      const via = [...group.residual.values()][0];
      const reason =
        reasons.size > 0
          ? `${[...reasons][0]}${via && !reasons.has('') ? ` (its channels are tied to others through the residual ${via})` : ''}`
          : `${v.width} output ${s.kind}: nothing to remove at ratio ${ctx.ratio}${selection.notes.length > 0 ? `; ${selection.notes[0]}` : ''}`;
      summary.skipped.push({ name: name(s), reason });
    }
    return;
  }
  for (const e of edits) {
    const t = e.kind === 'slice' || e.kind === 'grouped-in' ? e.param.tensor : e.kind === 'shape' ? e.tensor : undefined;
    if (t && !bytesOf.has(t)) bytesOf.set(t, tensorByteLength(t));
  }
  for (const s of sources) if (!bytesOf.has(s.weight.tensor)) bytesOf.set(s.weight.tensor, tensorByteLength(s.weight.tensor));
  const changed = new Set<string>([...values.keys(), ...group.intermediates]);
  const generatedShape = new Map<TensorProto, string>();
  for (const [out, node] of ctx.index.producer)
    if (node.op_type === 'ConstantOfShape' && node.input[0]) {
      const t = ctx.index.initializers.get(node.input[0]);
      if (t) generatedShape.set(t, out);
    }
  const parameters = new Map<string, number[]>();
  const record = (p: Param) => {
    const out = p.shapeOnly ? generatedShape.get(p.tensor) : p.tensor.name;
    if (out) parameters.set(out, p.shapeOnly ? Array.from(tensorValues(p.tensor) as BigInt64Array, Number) : p.tensor.dims.map(toNumber));
  };
  for (const s of sources) {
    const keep = keepOf(s.value);
    if (s.weight.shapeOnly) setShape(s.weight.tensor, s.axis, keep.length);
    else sliceTensor(s.weight.tensor, s.axis, keep, 1);
    record(s.weight);
    if (s.bias) {
      if (s.bias.shapeOnly) setShape(s.bias.tensor, 0, keep.length);
      else sliceTensor(s.bias.tensor, 0, keep, 1);
      record(s.bias);
    }
    // A bias an earlier group's reconstruction gave this layer follows its outputs too.
    const added = ctx.createdBias.get(s.node);
    if (added && !s.bias) {
      sliceTensor(added, 0, keep, 1);
      record({ name: added.name!, dims: added.dims.map(toNumber), tensor: added, shapeOnly: false, owner: added.name! });
    }
  }
  // Then reconstruction, on the layers' outputs as they now are and their inputs still in their
  // original order (the slicing below drops the removed features).
  const rebuilt = new Map<NodeProto, string>();
  if (ctx.stats)
    for (const sink of sinks) {
      const note = reconstructSink(sink, keepOf(sink.value), values.get(sink.value)!.width, ctx);
      if (note) rebuilt.set(sink.node, note);
    }
  const described: { tensor: TensorProto; form: string }[] = [];
  for (const e of edits) {
    const keep = keepOf(e.value);
    if (e.kind === 'slice') {
      if (e.param.shapeOnly) setShape(e.param.tensor, e.axis, keep.length * e.factor);
      else sliceTensor(e.param.tensor, e.axis, keep, e.factor);
      record(e.param);
      described.push({ tensor: e.param.tensor, form: `${e.param.shapeOnly ? 'shape' : 'sliced'} along axis ${e.axis}` });
    } else if (e.kind === 'grouped-in') {
      sliceGroupedInput(e.param, keep, values.get(e.value)!.width, e.groups);
      record(e.param);
      described.push({ tensor: e.param.tensor, form: `each of its ${e.groups} groups keeps ${keep.length / e.groups} input channels` });
    } else if (e.kind === 'group-attr') {
      const a = e.node.attribute.find((x) => x.name === 'group')!;
      a.i = keep.length;
    } else {
      setShape(e.tensor, e.entry, keep.length / e.divide);
      described.push({ tensor: e.tensor, form: `reshape to ${keep.length / e.divide} along axis ${e.entry}` });
    }
  }
  // Shapes recorded for the values that shrank are now wrong: value_info entries go (ONNX Runtime
  // infers them again), and initializers listed as graph inputs (IR < 4) get their new shape.
  const graph = ctx.model.graph;
  graph.value_info = graph.value_info.filter((v) => !changed.has(v.name ?? '') && !parameters.has(v.name ?? ''));
  for (const input of graph.input) {
    const dims = parameters.get(input.name ?? '');
    const shape = input.type?.tensor_type?.shape;
    if (dims && shape) shape.dim = dims.map((d) => ({ dim_value: d }));
  }
  const how = ctx.score === 'activation' ? `activation score, ${ctx.mode} reconstruction` : `${ctx.score} norm`;
  // Layers tied to each other: those writing the same units (a residual stream's writers).
  const writers = new Map<number, Set<Source>>();
  for (const s of sources) {
    const v = values.get(s.value)!;
    for (let p = 0; p < v.width; p++) {
      const r = find(parent, v.base + p);
      writers.set(r, (writers.get(r) ?? new Set()).add(s));
    }
  }
  for (const s of sources) {
    const v = values.get(s.value)!;
    const kept = keepOf(s.value).length;
    const gone = v.width - kept;
    if (gone === 0) {
      const frozenWhy = [...Array(v.width).keys()].map((p) => group.frozen.get(find(parent, v.base + p))).find((w) => w);
      const reason = frozenWhy ?? selection.notes[0] ?? `${v.width} output ${s.kind}: nothing to remove at ratio ${ctx.ratio}`;
      summary.skipped.push({ name: name(s), reason });
      continue;
    }
    const tied = new Set<Source>();
    for (let p = 0; p < v.width; p++) for (const w of writers.get(find(parent, v.base + p))!) if (w !== s) tied.add(w);
    const joint = tied.size > 0 ? `, jointly with ${tied.size} other layer${tied.size > 1 ? 's' : ''}` : '';
    summary.tensors.push({
      name: name(s),
      shape: s.weight.dims,
      dtypeBefore: 'float32',
      dtypeAfter: 'float32',
      bytesBefore: bytesOf.get(s.weight.tensor)!,
      bytesAfter: tensorByteLength(s.weight.tensor),
      form: `${gone} of ${v.width} ${s.kind} removed (${s.weight.shapeOnly ? 'generated by ConstantOfShape: shape rewritten' : how}${joint})`,
      details: { removed: gone, kept, dependents: edits.length },
    });
  }
  const first = sources[0] ? name(sources[0]) : '';
  for (const { tensor, form } of described) {
    const sink = sinks.find((k) => k.weight.tensor === tensor);
    const extra = sink && rebuilt.get(sink.node) ? `; ${rebuilt.get(sink.node)}` : '';
    summary.tensors.push({
      name: tensor.name ?? '',
      shape: [],
      dtypeBefore: 'float32',
      dtypeAfter: 'float32',
      bytesBefore: bytesOf.get(tensor) ?? tensorByteLength(tensor),
      bytesAfter: tensorByteLength(tensor),
      form: `${form} to follow ${first}${extra}`,
    });
  }
  for (const n of selection.notes) summary.notes.push(`${first}: ${n}`);
}

/** Rebuilds one sink's weights and bias for the features it loses; returns what it did, for the report. */
type RebuildContext = Pick<ApplyContext, 'model' | 'index' | 'editor' | 'mode' | 'damp' | 'stats' | 'createdBias'>;

function reconstructSink(sink: Sink, keep: number[], width: number, ctx: RebuildContext): string | undefined {
  const stats = ctx.stats?.get(sink.node);
  if (!stats || sink.weight.shapeOnly) return undefined;
  if (sink.groups > 1) return 'not reconstructed (a grouped Conv)';
  if (sink.op === 'Gemm' && (attrFloat(sink.node, 'alpha') !== 1 || attrFloat(sink.node, 'beta') !== 1))
    return 'not reconstructed (a Gemm with alpha or beta)';
  const l = statsLayout(sink, stats);
  const removed = new Array<boolean>(stats.k).fill(true);
  for (const p of keep) for (let f = p * stats.perPosition; f < (p + 1) * stats.perPosition; f++) removed[f] = false;
  if (stats.k !== width * stats.perPosition) return undefined;
  const weights = floatValues(sink.weight.tensor);
  if (ctx.mode === 'none') {
    // Nothing rebuilt: the layer's output error alone, measured against its bias as it is (or none).
    const own = sink.node.input[2] ? paramOf(ctx.index, sink.node.input[2]) : undefined;
    const bias = own && !own.shapeOnly && own.dims.length === 1 ? floatValues(own.tensor) : new Float32Array(l.outputs);
    const r = rebuild(stats, l, weights, bias.length === l.outputs ? bias : new Float32Array(l.outputs), removed, 'none', ctx.damp);
    return r.errorNone !== undefined
      ? `not reconstructed, layer output error on the calibration data ${r.errorNone.toFixed(4)}`
      : undefined;
  }
  const holder = biasHolder(sink, ctx, l.outputs);
  if (!holder) return 'not reconstructed (its bias is shared or not a stored vector)';
  const bias = holder.values;
  const r = rebuild(stats, l, weights, bias, removed, ctx.mode, ctx.damp);
  setData(sink.weight.tensor, new Uint8Array(r.weights.buffer));
  holder.write(r.bias);
  const mode = r.fellBack ? `bias (lstsq: ${r.fellBack})` : ctx.mode;
  const error =
    r.error !== undefined ? `, layer output error on the calibration data ${r.errorNone!.toFixed(4)} → ${r.error.toFixed(4)}` : '';
  return `${mode} reconstruction${error}`;
}

function attrFloat(node: NodeProto, name: string): number {
  const a = node.attribute.find((x) => x.name === name);
  return a?.f ?? 1;
}

/** The sink's bias as a vector to read and write: its own (Conv/Gemm C, or the Add after a MatMul), or a new one. */
function biasHolder(
  sink: Sink,
  ctx: RebuildContext,
  outputs: number,
): { values: Float32Array; write: (b: Float32Array) => void } | undefined {
  const { index, editor, model } = ctx;
  const graph = model.graph;
  const own = (name: string): TensorProto | undefined => {
    const p = paramOf(index, name);
    if (!p || p.shapeOnly || index.consumersOf(name).length !== 1 || p.dims.length !== 1 || p.dims[0] !== outputs) return undefined;
    if (p.tensor.data_type !== DataType.FLOAT) return undefined;
    return p.tensor;
  };
  const holder = (t: TensorProto) => ({
    values: floatValues(t),
    write: (b: Float32Array) => setData(t, new Uint8Array(Float32Array.from(b).buffer)),
  });
  const fresh = (base: string): TensorProto => {
    const t = makeTensor(editor.fresh(base), DataType.FLOAT, [outputs], new Uint8Array(outputs * 4));
    editor.graph(graph).addInitializer(t);
    ctx.createdBias.set(sink.node, t);
    return t;
  };
  if (sink.op !== 'MatMul') {
    if (sink.node.input[2]) {
      const t = own(sink.node.input[2]);
      return t ? holder(t) : undefined;
    }
    const t = fresh(`${sink.weight.name}_bias`);
    const inputs = [...sink.node.input];
    while (inputs.length < 2) inputs.push('');
    editor.graph(graph).setInputs(sink.node, [...inputs.slice(0, 2), t.name!]);
    return holder(t);
  }
  const out = sink.node.output[0]!;
  const next = editor.graph(graph).readers(out);
  if (next.length === 1 && next[0]!.op_type === 'Add' && !graph.output.some((o) => o.name === out)) {
    const other = next[0]!.input.find((i) => i !== out);
    const t = other ? own(other) : undefined;
    if (t) return holder(t);
  }
  // No bias of its own: MatMul → Add(new bias), the Add writing the MatMul's output name.
  const t = fresh(`${sink.weight.name}_bias`);
  const g = editor.graph(graph);
  const inner = editor.fresh(`${out}_unbiased`);
  g.setOutput(sink.node, 0, inner);
  g.insertNode(makeNode('Add', [inner, t.name!], [out], editor.fresh(`${sink.node.name || 'MatMul'}_bias_add`)), { after: sink.node });
  return holder(t);
}
