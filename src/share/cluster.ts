// Weight clustering (--share cluster): each chosen weight's values are replaced by the nearest of k
// centroids found by k-means (per tensor, or per output channel), stored as 4-bit codes (k ≤ 16,
// opset 21) or 8-bit codes plus a float codebook, and recreated by Gather (see codebook.ts).
import type { Model } from '../ir/model.js';
import { ModelEditor } from '../ir/editor.js';
import { defaultOpsetProblem, requireDefaultOpset } from '../convert/raise.js';
import { opsetVersion } from '../ir/opset.js';
import { floatSource, floatValues, tensorByteLength, toNumber } from '../ir/tensor.js';
import { channelAxis, WEIGHT_OPS, type Weight } from '../ir/weights.js';
import { selectionOptions } from '../pass/options.js';
import { usedOps } from '../pass/ops.js';
import { definePass, emptySummary, type PassContext, type PassSummary, type TensorChange } from '../pass/pass.js';
import { chooseWeights } from '../pass/select.js';
import { replaceWeight } from '../ir/build.js';
import { dequantizeForm, evenlySpaced, gatherForm, type Clustered, type Lattice } from './codebook.js';
import type { ClusterResult, KMeansOptions } from '../kernels/kmeans.js';
import { KernelPool, inOrder, windowFor } from '../kernels/pool.js';
import type { JobProgress } from '../kernels/progress.js';
import { addedSize, storedSize } from './size.js';
import { fromFloat16, toHalf } from '../ir/half.js';
import { DataType } from '../ir/onnx.js';
import { dtypeName } from '../ir/dtype.js';
import { weightError, type WeightError } from '../kernels/weight-error.js';

/** Whether the default opset can be raised to `version` (converting the model), tried on a copy. */
function raisable(model: Model, version: number): string | undefined {
  return defaultOpsetProblem(model.proto, version);
}

/**
 * The code width and the opset it needs: 4 bits when k ≤ 16 and the opset can reach 21 (Cast of
 * UINT4), else 8 bits with Cast's numeric 'to' (opset 6) and broadcasting Add (opset 7).
 */
function chooseBits(model: Model, k: number, notes: string[]): { bits: 4 | 8; opset: number } | { refused: string } {
  const current = opsetVersion(model.proto, '') ?? 1;
  if (k <= 16) {
    const why = current >= 21 ? undefined : raisable(model, 21);
    if (!why) return { bits: 4, opset: Math.max(current, 21) };
    notes.push(`8-bit codes used: ${why}`);
  }
  const why = current >= 7 ? undefined : raisable(model, 7);
  return why ? { refused: why } : { bits: 8, opset: Math.max(current, 7) };
}

function lattices(c: Clustered, opset: number): Lattice[] | undefined {
  // DequantizeLinear: UINT4 needs opset 21, a per-axis scale 13, per-tensor uint8 10.
  const needed = c.bits === 4 ? 21 : c.codebooks.length > 1 ? 13 : 10;
  if (opset < needed) return undefined;
  const out: Lattice[] = [];
  for (const book of c.codebooks) {
    const l = evenlySpaced(book, c.bits === 4 ? 15 : 255);
    if (!l) return undefined;
    out.push(l);
  }
  return out;
}

/** The error of the weight rebuilt from codebooks and codes (a codebook per channel along `axis`, or one). */
function reconstructionError(w: Weight, codebooks: Float32Array[], codes: ArrayLike<number>, axis: number | undefined): WeightError {
  const original = floatValues(w.tensor);
  const dims = w.tensor.dims.map(toNumber);
  const inner = axis === undefined ? 1 : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const rebuilt = new Float32Array(original.length);
  for (let i = 0; i < original.length; i++) {
    const book = codebooks.length === 1 ? codebooks[0]! : codebooks[Math.floor(i / inner) % codebooks.length]!;
    rebuilt[i] = book[codes[i]!]!;
  }
  return weightError(original, rebuilt);
}

export const clusterPass = definePass({
  family: 'share',
  method: 'cluster',
  description:
    "weight clustering: each weight's values become k centroids (k-means, seeded) stored as 4/8-bit codes plus a float codebook, recreated by Gather (DequantizeLinear when the centroids are evenly spaced)",
  options: {
    k: {
      type: 'integer',
      default: 16,
      min: 2,
      max: 256,
      description: 'centroids per tensor (or per channel): k ≤ 16 stores 4-bit codes, up to 256 8-bit codes',
    },
    granularity: {
      type: 'enum',
      choices: ['tensor', 'channel'],
      default: 'tensor',
      description: 'one codebook per tensor, or one per output channel',
    },
    iterations: {
      type: 'integer',
      default: 100,
      min: 1,
      max: 1000,
      description: 'Lloyd iterations at most per k-means start (it stops when the centroids no longer move)',
    },
    ops: { type: 'string', default: WEIGHT_OPS, description: 'op types whose weights are clustered' },
    ...selectionOptions(256),
  },
  async run(model: Model, options, context: PassContext): Promise<PassSummary> {
    const summary = emptySummary(this, options);
    const k = options.k;
    const candidates: Weight[] = [];
    const ir = toNumber(model.proto.ir_version ?? 3);
    const { weights, skipped } = chooseWeights(
      model,
      options,
      (w) =>
        (w.isGraphOutput ? 'is a graph output' : undefined) ??
        (w.isGraphInput && ir >= 4 ? 'is an overridable graph input (IR ≥ 4)' : undefined),
      [DataType.FLOAT, DataType.FLOAT16],
    );
    summary.skipped.push(...skipped);
    for (const w of weights) candidates.push(w);
    if (candidates.length === 0) return summary;
    const plan = chooseBits(model, k, summary.notes);
    if ('refused' in plan) {
      for (const w of candidates)
        summary.skipped.push({ name: w.name, reason: `the opset cannot be raised for Cast and Gather: ${plan.refused}` });
      return summary;
    }
    const { bits, opset } = plan;
    const edits = new ModelEditor(model);
    const names = edits.names;
    const kmeans: KMeansOptions = { k, seed: context.seed, maxIterations: options.iterations, keepZero: true };
    const axisOf = (w: Weight) => (options.granularity === 'channel' ? channelAxis(w) : undefined);
    const applyClusters = (w: Weight, result: ClusterResult): void => {
      const { codes, iterations, sparsity } = result;
      let { codebooks, error } = result;
      const half = w.tensor.data_type === DataType.FLOAT16;
      if (half) {
        // Centroids rounded to float16, the type the codebook is stored in; the error measured again with them.
        codebooks = codebooks.map((b) => fromFloat16(toHalf(b, false).bits));
        error = reconstructionError(w, codebooks, codes, axisOf(w));
      }
      const dims = w.tensor.dims.map(toNumber);
      const axis = axisOf(w);
      const clustered: Clustered = { dims, bits, codebooks, axis, codes };
      // DequantizeLinear with float16 scales needs opset 19: a float16 weight keeps the Gather form.
      const lattice = half ? undefined : lattices(clustered, opset);
      const stored = lattice ? dequantizeForm(w, names, clustered, lattice) : gatherForm(w, names, clustered);
      const bytesBefore = tensorByteLength(w.tensor);
      const bytesAfter = stored.initializers.reduce((n, t) => n + (t.raw_data?.byteLength ?? 0), 0);
      const [fileBefore, fileAfter] = [storedSize(w), addedSize(stored.initializers, stored.nodes)];
      if (fileAfter >= fileBefore) {
        // Per-channel codebooks of small channels, or the nodes around a small tensor, can outweigh what clustering saves.
        summary.skipped.push({
          name: w.name,
          reason: `clustering would not make it smaller (${fileBefore} → ${fileAfter} bytes in the file)`,
        });
        return;
      }
      replaceWeight(edits, w, stored.initializers, stored.nodes);
      summary.bytesBefore += bytesBefore;
      summary.bytesAfter += bytesAfter;
      const change: TensorChange = {
        name: w.name,
        shape: dims,
        dtypeBefore: dtypeName(w.tensor.data_type),
        dtypeAfter: `uint${bits}`,
        bytesBefore,
        bytesAfter,
        sparsity,
        ...error!,
        form: `${stored.form}${options.granularity === 'channel' && axis === undefined ? ' (per tensor: its uses disagree on the channel axis)' : ''}`,
        details: { k, centroids: Math.max(...codebooks.map((b) => b.length)), iterations },
      };
      summary.tensors.push(change);
    };
    // k-means runs on the kernel threads, a few tensors ahead (each reads its tensor from the file
    // when its turn comes, and measures the reconstruction's error); results are applied here in order.
    const pool = new KernelPool(context.threads);
    const start = (w: Weight, progress: JobProgress) =>
      pool.run(
        { kind: 'cluster', values: floatSource(w.tensor), dims: w.tensor.dims.map(toNumber), axis: axisOf(w), options: kmeans },
        progress,
      );
    const report = { progress: context.progress, label: 'clustering', bytesOf: (w: Weight) => tensorByteLength(w.tensor) };
    try {
      for await (const [w, result] of inOrder(candidates, windowFor(context.threads), start, report)) {
        if (result.nonFinite) {
          summary.skipped.push({ name: w.name, reason: 'has non-finite values' });
          continue;
        }
        applyClusters(w, result);
      }
    } finally {
      await pool.close();
    }
    if (summary.tensors.length > 0) raiseVersions(model, opset, summary.notes);
    return summary;
  },
});

function raiseVersions(model: Model, opset: number, notes: string[]): void {
  const change = requireDefaultOpset(model.proto, opset, usedOps(model));
  if (change)
    notes.push(`default opset raised from ${change.from} to ${change.to} for ${opset >= 21 ? 'Cast of UINT4 codes' : 'Cast and Gather'}`);
  if (toNumber(model.proto.ir_version ?? 3) < 4) {
    model.proto.ir_version = 4;
    notes.push('IR version raised to 4: the codes and codebooks are initializers not listed as graph inputs');
  }
}
