// What Wanda and SparseGPT share: the layers they take (in the main graph, a 2-D weight read by
// MatMul, or by Gemm without transA, or a 2-D Conv's weight as a matrix over its input's patches),
// their options, the one calibration run that measures every layer's inputs, the per-layer
// fractions of scope=global, and applying and reporting the results.
import type { Model } from '../ir/model.js';
import { floatValues, tensorByteLength } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';
import { convPatches, patchFeatures, patchesKey, type ConvPatches } from '../ir/conv.js';
import { KernelPool, inOrder } from '../kernels/pool.js';
import type { PruneResult } from '../kernels/smallest.js';
import { kthMagnitude } from '../kernels/smallest.js';
import type { SparsityPattern } from '../kernels/sparsegpt.js';
import { silentProgress, type JobProgress, type Progress } from '../kernels/progress.js';
import { calibrate, type Calibration } from '../runtime/calibrate.js';
import { GRAM_LIMIT } from './sink-stats.js';
import { selectionOptions } from '../pass/options.js';
import type { PassContext, PassSummary, TensorChange } from '../pass/pass.js';
import { chooseWeights } from '../pass/select.js';
import { PRUNABLE_DTYPES, recordPruned, STORAGE_OPTION } from './store.js';

/** The options both calibrated pruning passes take. */
export const CALIBRATED_OPTIONS = {
  sparsity: {
    type: 'number',
    min: 0,
    max: 1,
    default: 0.5,
    description: 'fraction of weights to zero (of each layer, or of all chosen weights with scope=global); ignored with n and m',
  },
  n: { type: 'integer', min: 1, max: 64, description: 'N:M: weights kept in each group of m along the reduction axis (give m too)' },
  m: { type: 'integer', min: 2, max: 64, description: 'N:M: group length along the reduction axis (give n too)' },
  scope: {
    type: 'enum',
    choices: ['layer', 'global'],
    default: 'layer',
    description:
      "layer: each layer loses the same fraction; global: each layer's fraction from one threshold on |W|·‖X‖ across all chosen layers, then pruned as with layer",
  },
  'max-layer-sparsity': {
    type: 'number',
    min: 0,
    max: 1,
    default: 0.98,
    description: 'with scope=global, no layer is pruned beyond this fraction',
  },
  calibration: {
    type: 'string',
    description:
      "inputs to calibrate on (a test_data_set folder, .npz, .npy or .pb, like --data): required; each layer's inputs are measured on them",
  },
  storage: STORAGE_OPTION,
  ops: {
    type: 'string',
    default: 'MatMul,Gemm,Conv',
    description:
      "op types whose weights are pruned (MatMul, Gemm, and 2-D Convs with one group: their weight as [O, C·kh·kw] over the input's patches)",
  },
  ...selectionOptions(256),
} as const;

/** What validate checks for both passes, beyond each option's own range. */
export function calibratedProblem(options: {
  readonly n?: number;
  readonly m?: number;
  readonly scope: string;
  readonly calibration?: string;
}): string | undefined {
  if (options.calibration === undefined) return 'calibration=DATA is required: the inputs each layer is measured on';
  if ((options.n === undefined) !== (options.m === undefined)) return 'N:M needs both n and m (e.g. n=2,m=4)';
  if (options.n !== undefined && options.n >= options.m!) return `n must be smaller than m (got ${options.n}:${options.m})`;
  if (options.n !== undefined && options.scope === 'global') return 'scope=global does not apply to N:M, which fixes every group';
  return undefined;
}

/**
 * A chosen layer: its weight [K, N] (or [N, K] when transposed: a Conv's [O, C, kh, kw] is [O, C·kh·kw])
 * and the values whose rows it multiplies (a Conv's: its input's patches).
 */
export interface Layer {
  w: Weight;
  k: number;
  n: number;
  transposed: boolean;
  /** The values the layer reads, and the keys of their measurements (the value's name, or with the patches). */
  values: string[];
  inputs: string[];
  patches?: ConvPatches;
}

/** A 2-D Conv's weight as the matrix [O, C·kh·kw] over its input's patches, or why not. */
function convLayerOf(w: Weight, m: number | undefined): Layer | string {
  const dims = w.tensor.dims.map(Number);
  const geometries = w.uses.map((u) => convPatches(u.node, dims));
  if (geometries.some((g) => g === undefined))
    return 'not a 2-D Conv with one group and explicit pads (its patches are not formed as rows here)';
  const patches = geometries[0]!;
  const k = patchFeatures(patches);
  // The Conv that forms the patches in ONNX Runtime has k² weights, and SparseGPT's XᵀX k² doubles.
  if (k > GRAM_LIMIT) return `its patches have ${k} entries, more than the ${GRAM_LIMIT} calibration forms`;
  if (m !== undefined && k % m !== 0) return `patch of ${k} entries is not a multiple of ${m}`;
  const values = w.uses.map((u) => u.node.input[0] ?? '');
  if (values.includes('')) return 'a use has no input';
  // Uses with other strides or pads see other rows: each is measured, under its own key.
  const inputs = values.map((v, i) => `${v}#${patchesKey(geometries[i]!)}`);
  return { w, k, n: dims[0]!, transposed: true, values, inputs, patches };
}

/** The layer a weight is, or why it is not one these passes take. */
function layerOf(model: Model, w: Weight, m: number | undefined): Layer | string {
  if (w.otherUses.length > 0) return 'also read by other ops';
  if (!w.uses.every((u) => u.graph === model.graph)) return 'read inside a subgraph, which calibration does not measure';
  if (w.uses.length > 0 && w.uses.every((u) => u.role === 'conv')) return convLayerOf(w, m);
  if (w.tensor.dims.length !== 2) return 'not a 2-D weight';
  if (
    !w.uses.every(
      (u) => u.role === 'matmul' || (u.role === 'gemm' && !u.node.attribute.some((a) => a.name === 'transA' && Number(a.i) !== 0)),
    )
  )
    return 'not the weight of a MatMul, a Gemm (without transA) or a Conv';
  const axes = new Set(w.uses.map((u) => u.reductionAxis));
  if (axes.size !== 1) return 'its uses reduce over different axes';
  const axis = [...axes][0]!;
  const dims = w.tensor.dims.map(Number);
  const k = dims[axis]!,
    n = dims[1 - axis]!;
  if (m !== undefined && k % m !== 0) return `reduction axis of length ${k} is not a multiple of ${m}`;
  const inputs = w.uses.map((u) => u.node.input[0] ?? '');
  if (inputs.includes('')) return 'a use has no input';
  return { w, k, n, transposed: axis === 1, values: inputs, inputs };
}

/** The pattern the options ask for. */
export function patternOf(options: { readonly sparsity: number; readonly n?: number; readonly m?: number }): SparsityPattern {
  return options.n !== undefined && options.m !== undefined
    ? { sparsity: 1 - options.n / options.m, nm: { n: options.n, m: options.m } }
    : { sparsity: options.sparsity };
}

/** The chosen layers, and the weights left alone with the reason. */
export function chooseLayers(
  model: Model,
  options: Parameters<typeof chooseWeights>[1] & { readonly m?: number },
  summary: PassSummary,
): Layer[] {
  const layers = new Map<Weight, Layer>();
  const { weights, skipped } = chooseWeights(
    model,
    options,
    (w) => {
      const layer = layerOf(model, w, options.m);
      if (typeof layer === 'string') return layer;
      layers.set(w, layer);
      return undefined;
    },
    PRUNABLE_DTYPES,
  );
  summary.skipped.push(...skipped);
  return weights.map((w) => layers.get(w)!);
}

/**
 * Each layer's fraction for scope=global: one threshold on |W|·‖X‖ across all layers (the score
 * Wanda compares), each layer capped at `cap`. Returns the fractions and a note saying what they came to.
 */
export function globalFractions(
  layers: Layer[],
  norms: Map<Layer, Float64Array>,
  sparsity: number,
  cap: number,
): { fractions: Map<Layer, number>; note: string } {
  const scores = layers.map((l) => {
    const values = floatValues(l.w.tensor);
    const norm = norms.get(l)!;
    const s = new Float32Array(values.length);
    // Feature k of [K, N] is row k; of [N, K], column k.
    for (let i = 0; i < values.length; i++) s[i] = Math.abs(values[i]!) * norm[l.transposed ? i % l.k : Math.floor(i / l.n)]!;
    return s;
  });
  const total = scores.reduce((a, s) => a + s.length, 0);
  const count = Math.floor(sparsity * total);
  const threshold = count > 0 ? kthMagnitude(scores, total, count - 1) : -1;
  const fractions = new Map<Layer, number>();
  let assigned = 0;
  layers.forEach((l, i) => {
    let below = 0;
    for (const s of scores[i]!) if (s <= threshold) below++;
    const fraction = Math.min(below / scores[i]!.length, cap);
    fractions.set(l, fraction);
    assigned += Math.floor(fraction * scores[i]!.length);
  });
  return {
    fractions,
    note: `global threshold |W|·‖X‖ ≤ ${threshold.toPrecision(4)}: ${assigned} of ${total} weights (${((100 * assigned) / Math.max(1, total)).toFixed(2)} %) to prune, target ${(100 * sparsity).toFixed(2)} %`,
  };
}

/** Runs the model once on the calibration data, measuring what the layers need: XᵀX, or only Σx² per feature. */
export function measureLayers(
  model: Model,
  layers: Layer[],
  what: 'gram' | 'norms',
  dataPath: string,
  progress: Progress = silentProgress,
  threads = 1,
): Promise<Calibration> {
  return what === 'gram'
    ? calibrate(
        model,
        { grams: layers.flatMap((l) => l.values.map((name, i) => ({ name, k: l.k, patches: l.patches, id: l.inputs[i]! }))) },
        dataPath,
        progress,
        threads,
      )
    : calibrate(
        model,
        {
          norms: layers.flatMap((l) => l.values.map((name, i) => (l.patches ? { name, patches: l.patches, id: l.inputs[i]! } : name))),
        },
        dataPath,
        progress,
        threads,
      );
}

/**
 * Prunes the layers on kernel threads (`run` starts a layer's job on `pool`), `window` at a time (a
 * SparseGPT job holds its layer's K×K matrix), and applies the results in order: values set, sparse storage asked for, one report
 * entry each with `form` and the job's `details`.
 */
export async function pruneLayers<R extends PruneResult>(
  model: Model,
  layers: Layer[],
  run: (l: Layer, pool: KernelPool, progress: JobProgress) => Promise<R>,
  options: { readonly storage: string },
  context: PassContext,
  summary: PassSummary,
  describe: (l: Layer, result: R) => Pick<TensorChange, 'form' | 'details'>,
  label: string,
  window = Math.max(1, context.threads),
): Promise<void> {
  const pool = new KernelPool(context.threads);
  const start = (l: Layer, progress: JobProgress) => run(l, pool, progress);
  try {
    const report = { progress: context.progress, label, bytesOf: (l: Layer) => tensorByteLength(l.w.tensor) };
    for await (const [l, pruned] of inOrder(layers, window, start, report)) {
      recordPruned(model, context, summary, l.w, { ...pruned, storage: options.storage }, { ...pruned.error, ...describe(l, pruned) });
    }
  } finally {
    await pool.close();
  }
}
