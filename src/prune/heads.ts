// Attention-head pruning: whole heads of a multi-head attention block are removed. The block is
// recognised by its shape, not its names: projections x·W (+ b) of one input, each reshaped to
// [.., H, Dh] by a shape whose last two entries are the constants H and Dh, meeting again in one
// Reshape to [.., H·Dh] that feeds the output projection. Between them only ops that keep heads
// apart are allowed (Transpose, MatMul of two head-split values, Softmax over the last axis,
// elementwise ops with constants or masks that do not vary by head). Heads are scored by the L1
// norm of their weights in all projections (or, through HeadHooks, by the output projection's
// calibrated inputs); the projections' columns, their biases, the output projection's rows and the
// two shape constants shrink together.
import type { GraphProto, NodeProto, TensorProto } from '../ir/onnx.js';
import { GraphIndex } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { constantTensor, floatValues, tensorByteLength, tensorValues, toNumber } from '../ir/tensor.js';
import { selectionOptions } from '../pass/options.js';
import { definePass, emptySummary, type PassContext, type PassSummary } from '../pass/pass.js';
import { sliceTensor } from './slice.js';
import { setData } from '../ir/data.js';

interface Projection {
  reshape: NodeProto;
  weight: TensorProto;
  bias?: TensorProto;
  /** The int64 constant holding H in the reshape's shape. */
  headsConst: TensorProto;
  input: string;
}

interface Unit {
  heads: number;
  headSize: number;
  projections: Projection[];
  merge: NodeProto;
  /** The int64 constant holding H·Dh in the merging reshape's shape. */
  widthConst: TensorProto;
  outWeight: TensorProto;
  /** The output projection (a MatMul reading the merged heads). */
  outNode: NodeProto;
  values: Set<string>;
}

/** An attention block as found (exported for calibrated scoring and reconstruction of its output projection). */
export type AttentionBlock = Unit;

/** What a calibrated caller adds: head scores from activations, and a rebuild of the output projection before its rows go. */
export interface HeadHooks {
  scores?(block: AttentionBlock): Float64Array | undefined;
  rebuild?(block: AttentionBlock, keep: number[]): string | undefined;
}

const KEEPS_HEADS = new Set(['Transpose', 'Softmax', 'Mul', 'Div', 'Add', 'Sub', 'Where', 'MatMul', 'Cast', 'Dropout', 'Identity']);

function scalarInt(index: GraphIndex, name: string | undefined): { value: number; tensor: TensorProto } | undefined {
  if (!name) return undefined;
  const t = index.initializers.get(name) ?? (index.producer.get(name) ? constantTensor(index.producer.get(name)!) : undefined);
  if (t?.data_type !== 7 || t.dims.reduce<number>((a, b) => a * toNumber(b), 1) !== 1) return undefined;
  return { value: Number((tensorValues(t) as BigInt64Array)[0]), tensor: t };
}

/** The last two constants of a Concat building a shape. */
function shapeTail(
  index: GraphIndex,
  shape: string | undefined,
  count: number,
): { value: number; tensor: TensorProto; name: string }[] | undefined {
  const concat = shape ? index.producer.get(shape) : undefined;
  if (concat?.op_type !== 'Concat' || concat.input.length < count) return undefined;
  const tail = concat.input.slice(-count).map((n) => ({ ...scalarInt(index, n)!, name: n }));
  return tail.every((t) => t.tensor) ? tail : undefined;
}

function projectionOf(index: GraphIndex, reshape: NodeProto): Projection | undefined {
  const tail = shapeTail(index, reshape.input[1], 2);
  if (!tail) return undefined;
  let data = index.producer.get(reshape.input[0] ?? '');
  let bias: TensorProto | undefined;
  if (data?.op_type === 'Add') {
    const [a, b] = data.input;
    bias = index.initializers.get(a ?? '') ?? index.initializers.get(b ?? '');
    data = index.producer.get(index.initializers.has(a ?? '') ? (b ?? '') : (a ?? ''));
  }
  if (data?.op_type !== 'MatMul') return undefined;
  const weight = index.initializers.get(data.input[1] ?? '');
  if (weight?.dims.length !== 2 || weight.data_type !== 1) return undefined;
  if (toNumber(weight.dims[1]!) !== tail[0]!.value * tail[1]!.value) return undefined;
  return { reshape, weight, bias, headsConst: tail[0]!.tensor, input: data.input[0] ?? '' };
}

/**
 * Follows the head-split values forward to the one Reshape that merges heads again, tracking which
 * axis holds the heads (values are [B, T, H, Dh] after the split, rank 4), or says why not.
 */
function followToMerge(
  graph: GraphProto,
  index: GraphIndex,
  starts: string[],
  width: number,
): { merge: NodeProto; values: Set<string> } | string {
  const axisOf = new Map<string, number>(starts.map((s) => [s, 2]));
  const queue = [...starts];
  let merge: NodeProto | undefined;
  const outputs = new Set(graph.output.map((o) => o.name));
  const done = new Set<NodeProto>();
  while (queue.length > 0) {
    const name = queue.shift()!;
    const axis = axisOf.get(name)!;
    if (outputs.has(name)) return `'${name}' is a model output`;
    for (const node of index.consumersOf(name)) {
      if (done.has(node)) continue;
      const label = node.name || node.op_type;
      if (node.op_type === 'Reshape' && node.input[0] === name) {
        const tail = shapeTail(index, node.input[1], 1);
        if (!tail || tail[0]!.value !== width || axis !== 2) return `'${label}' reshapes the heads in a way onnxpress cannot follow`;
        if (merge && merge !== node) return 'the heads merge in more than one place';
        merge = node;
        done.add(node);
        continue;
      }
      if (!KEEPS_HEADS.has(node.op_type ?? '')) return `'${label}' (${node.op_type}) would have to change with the heads`;
      let out = axis;
      if (node.op_type === 'Transpose') {
        const perm = node.attribute.find((a) => a.name === 'perm')?.ints.map(toNumber);
        if (perm?.length !== 4) return `'${label}' transposes without a 4-axis perm`;
        out = perm.indexOf(axis);
      } else if (node.op_type === 'Softmax') {
        const a = node.attribute.find((x) => x.name === 'axis')?.i;
        if (a === undefined || (toNumber(a) !== -1 && toNumber(a) !== 3) || axis === 3)
          return `'${label}' normalises across an axis that may be the heads`;
      } else if (node.op_type === 'MatMul') {
        // Batched MatMul of two head-split values: the heads must be a batch axis of both, the same one.
        const others = node.input.filter((i) => i && i !== name);
        for (const other of others) {
          if (!axisOf.has(other)) {
            if (!queue.includes(other) && !node.input.every((i) => axisOf.has(i))) {
              // The other side may still be on its way: come back to this node later.
              queue.push(name);
              out = -1;
              break;
            }
          } else if (axisOf.get(other) !== axis) return `'${label}' multiplies values whose heads are on different axes`;
        }
        if (out === -1) {
          if (queue.filter((q) => q === name).length > 8) return `'${label}' mixes the heads with a value that is not split the same way`;
          continue;
        }
        if (axis >= 2) return `'${label}' reduces over the heads`;
      } else {
        for (const other of node.input) {
          if (!other || axisOf.has(other)) continue;
          // Constants and masks must not vary by head (a per-head constant would need slicing too).
          const t = index.initializers.get(other) ?? (index.producer.get(other) ? constantTensor(index.producer.get(other)!) : undefined);
          const pos = t ? t.dims.length - (4 - axis) : -1;
          if (t && pos >= 0 && toNumber(t.dims[pos]!) !== 1) return `'${other}' differs per head`;
        }
      }
      done.add(node);
      for (const o of node.output)
        if (o && !axisOf.has(o)) {
          axisOf.set(o, out);
          queue.push(o);
        }
    }
  }
  return merge ? { merge, values: new Set(axisOf.keys()) } : 'the heads never merge back';
}

export function attentionBlocks(model: Model, skipped: { name: string; reason: string }[]): Unit[] {
  const graph = model.graph;
  const index = new GraphIndex(graph);
  const groups = new Map<string, Projection[]>();
  for (const node of graph.node) {
    if (node.op_type !== 'Reshape') continue;
    const p = projectionOf(index, node);
    if (!p) continue;
    const key = `${p.input}|${Number((tensorValues(p.headsConst) as BigInt64Array)[0])}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  const units: Unit[] = [];
  for (const projections of groups.values()) {
    const tail = shapeTail(index, projections[0]!.reshape.input[1], 2)!;
    const [heads, headSize] = [tail[0]!.value, tail[1]!.value];
    const label = projections.map((p) => p.weight.name).join(', ');
    const followed = followToMerge(
      graph,
      index,
      projections.map((p) => p.reshape.output[0]!),
      heads * headSize,
    );
    if (typeof followed === 'string') {
      skipped.push({ name: label, reason: followed });
      continue;
    }
    const widthTail = shapeTail(index, followed.merge.input[1], 1)!;
    const out = index.consumersOf(followed.merge.output[0]!);
    const outWeight =
      out.length === 1 && out[0]!.op_type === 'MatMul' && out[0]!.input[0] === followed.merge.output[0]
        ? index.initializers.get(out[0]!.input[1] ?? '')
        : undefined;
    if (!outWeight || toNumber(outWeight.dims[0]!) !== heads * headSize) {
      skipped.push({ name: label, reason: 'the merged heads do not feed an output projection MatMul with a stored weight' });
      continue;
    }
    // Every tensor that changes must belong to this block alone.
    const owned = [
      ...projections.flatMap((p) => [p.weight.name, p.bias?.name]),
      outWeight.name,
      widthTail[0]!.name,
      ...projections.map((p) => shapeTail(index, p.reshape.input[1], 2)![0]!.name),
    ];
    const shared = owned.find((n) => n && index.consumersOf(n).length > 1);
    if (shared) {
      skipped.push({ name: label, reason: `'${shared}' is shared with other nodes` });
      continue;
    }
    units.push({
      heads,
      headSize,
      projections,
      merge: followed.merge,
      widthConst: widthTail[0]!.tensor,
      outWeight,
      outNode: out[0]!,
      values: followed.values,
    });
  }
  return units;
}

function setScalar(t: TensorProto, value: number): void {
  setData(t, new Uint8Array(BigInt64Array.of(BigInt(value)).buffer));
}

/** Removes `ratio` of the heads of every attention block found, recording what it did in `summary`. */
export function pruneHeads(
  model: Model,
  ratio: number,
  summary: PassSummary,
  hooks: HeadHooks = {},
  blocks: AttentionBlock[] = attentionBlocks(model, summary.skipped),
): void {
  for (const unit of blocks) {
    const remove = Math.min(unit.heads - 1, Math.floor(unit.heads * ratio));
    if (remove <= 0) {
      summary.skipped.push({ name: unit.outWeight.name ?? '', reason: `${unit.heads} heads: nothing to remove at ratio ${ratio}` });
      continue;
    }
    const { heads, headSize } = unit;
    const scores = hooks.scores?.(unit) ?? weightScores(unit);
    const order = Array.from(scores.keys()).sort((a, b) => scores[a]! - scores[b]! || a - b);
    const removed = new Set(order.slice(0, remove));
    const keep = Array.from({ length: heads }, (_, i) => i).filter((i) => !removed.has(i));
    const before = new Map<TensorProto, number>();
    const touched = [...unit.projections.flatMap((p) => (p.bias ? [p.weight, p.bias] : [p.weight])), unit.outWeight];
    for (const t of touched) before.set(t, tensorByteLength(t));
    const rebuilt = hooks.rebuild?.(unit, keep);
    for (const p of unit.projections) {
      sliceTensor(p.weight, 1, keep, headSize);
      if (p.bias) sliceTensor(p.bias, 0, keep, headSize);
      setScalar(p.headsConst, keep.length);
    }
    sliceTensor(unit.outWeight, 0, keep, headSize);
    setScalar(unit.widthConst, keep.length * headSize);
    model.graph.value_info = model.graph.value_info.filter((v) => !unit.values.has(v.name ?? ''));
    for (const t of touched) {
      summary.tensors.push({
        name: t.name ?? '',
        shape: [],
        dtypeBefore: 'float32',
        dtypeAfter: 'float32',
        bytesBefore: before.get(t)!,
        bytesAfter: tensorByteLength(t),
        form: `${remove} of ${heads} attention heads removed${t === unit.outWeight && rebuilt ? `; ${rebuilt}` : ''}`,
      });
    }
    summary.bytesBefore += [...before.values()].reduce((a, b) => a + b, 0);
    summary.bytesAfter += touched.reduce((n, t) => n + tensorByteLength(t), 0);
    summary.notes.push(`${unit.projections.length} projections of ${heads} heads × ${headSize}: kept heads ${keep.join(', ')}`);
  }
}

/** Heads scored by the L1 norm of their weights in every projection. */
function weightScores(unit: Unit): Float64Array {
  const { heads, headSize } = unit;
  const scores = new Float64Array(heads);
  for (const p of unit.projections) {
    const w = floatValues(p.weight);
    const n = heads * headSize;
    for (let i = 0; i < w.length; i++) scores[Math.floor((i % n) / headSize)]! += Math.abs(w[i]!);
  }
  const o = floatValues(unit.outWeight);
  const cols = o.length / (heads * headSize);
  for (let i = 0; i < o.length; i++) scores[Math.floor(Math.floor(i / cols) / headSize)]! += Math.abs(o[i]!);
  return scores;
}

export const headsPass = definePass({
  family: 'prune',
  method: 'heads',
  description:
    'attention-head pruning: removes whole heads of multi-head attention blocks (their Q/K/V columns, output-projection rows and the shape constants)',
  options: {
    ratio: {
      type: 'number',
      min: 0,
      max: 0.99,
      default: 0.25,
      description: "fraction of each block's heads to remove (a block keeps at least one)",
    },
    ...selectionOptions(0),
  },
  run(model: Model, options, _context: PassContext): PassSummary {
    const summary = emptySummary(this, options);
    pruneHeads(model, options.ratio, summary);
    return summary;
  },
});
