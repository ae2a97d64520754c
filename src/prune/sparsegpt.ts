// SparseGPT (Frantar & Alistarh, 2023): unstructured or N:M pruning that updates the weights it
// keeps to make up for those it removes, with the inverse of each layer's XᵀX measured on
// calibration data (all layers in one ONNX Runtime run), then refits the kept weights by least squares
// for the zeros chosen. The arithmetic is kernels/sparsegpt.ts and kernels/refit.ts.
import type { Model } from '../ir/model.js';
import { floatSource } from '../ir/tensor.js';
import type { KernelPool } from '../kernels/pool.js';
import type { JobProgress } from '../kernels/progress.js';
import type { SparseGptResult } from '../kernels/sparsegpt.js';
import { definePass, emptySummary, type PassContext, type PassSummary } from '../pass/pass.js';
import { calibrationProblem } from '../runtime/calibrate.js';
import {
  CALIBRATED_OPTIONS,
  calibratedProblem,
  chooseLayers,
  globalFractions,
  type Layer,
  measureLayers,
  patternOf,
  pruneLayers,
} from './calibrated.js';

/**
 * The damping used where a layer has fewer calibration rows than input features: its XᵀX has rank at
 * most the rows, and the update would follow directions the data never showed.
 */
export const RANK_DEFICIENT_DAMP = 0.1;

/** Layers started ahead per kernel thread (see the pruneLayers call). */
const SPARSEGPT_WINDOW_PER_THREAD = 3;

export const sparsegptPass = definePass({
  family: 'prune',
  method: 'sparsegpt',
  description:
    "SparseGPT: prunes each layer and updates the weights it keeps with the inverse of XᵀX (X: the layer's inputs on calibration data), minimizing the layer's output error",
  options: {
    ...CALIBRATED_OPTIONS,
    block: {
      type: 'integer',
      min: 1,
      max: 4096,
      default: 128,
      description: 'input features per lazy update block, and the span over which the unstructured mask is chosen',
    },
    damp: {
      type: 'number',
      min: 0,
      max: 1,
      default: 0.03,
      description: "added to XᵀX's diagonal, as a fraction of its mean (chosen on the char LM's calibration split; the paper's is 0.01)",
    },
    refit: {
      type: 'integer',
      min: 0,
      max: 1000,
      default: 10,
      description:
        "conjugate-gradient steps that re-solve the kept weights by least squares on XᵀX once the zeros are chosen (0: the sweep's own update only; 10 chosen on the char LM's calibration split)",
    },
  },
  validate(options) {
    const problem = calibratedProblem(options) ?? calibrationProblem(options);
    if (problem) return problem;
    if (options.m !== undefined && options.block % options.m !== 0)
      return `block must be a multiple of m (got block=${options.block}, m=${options.m})`;
    return undefined;
  },
  async run(model: Model, options, context: PassContext): Promise<PassSummary> {
    const summary = emptySummary(this, options);
    const pattern = patternOf(options);
    const chosen = chooseLayers(model, options, summary);
    const calibration = await measureLayers(model, chosen, 'gram', options.calibration!, context.progress, context.threads);
    const layers = chosen.filter((l) => {
      if (l.inputs.every((name) => calibration.gram.get(name)?.k === l.k)) return true;
      summary.skipped.push({ name: l.w.name, reason: `its input is not a float value of ${l.k} features on the calibration data` });
      return false;
    });
    const rowsOf = (l: Layer) => l.inputs.reduce((r, name) => r + calibration.gram.get(name)!.rows, 0);
    const rows = Math.min(...layers.map(rowsOf));
    summary.notes.push(
      `SparseGPT on ${layers.length} layers, calibrated on ${calibration.samples} samples${layers.length ? ` (${rows} rows)` : ''} from ${calibration.source}`,
    );
    const deficient = layers.filter((l) => rowsOf(l) < l.k);
    const raised = Math.max(options.damp, RANK_DEFICIENT_DAMP);
    if (deficient.length > 0 && raised > options.damp) {
      const widest = Math.max(...deficient.map((l) => l.k));
      summary.notes.push(
        `warning: ${deficient.length} of ${layers.length} layers have fewer calibration rows (${rows}) than input features (up to ${widest}): their XᵀX is rank-deficient (rank ≤ ${rows}), damping raised from ${options.damp} to ${raised} for them; give more calibration data`,
      );
    }
    // The XᵀX each layer's job takes (its own copy, which it turns into the factor): its input's,
    // or the sum where it has several. Each is released once the last layer reading it is done.
    const lastUse = new Map<string, Layer>();
    for (const l of layers) for (const name of l.inputs) lastUse.set(name, l);
    const hessianOf = (l: Layer): Float64Array => {
      const h = new Float64Array(l.k * l.k);
      for (const name of l.inputs) {
        const g = calibration.gram.get(name)!.matrix;
        for (let i = 0; i < h.length; i++) h[i]! += g[i]!;
      }
      return h;
    };
    const release = (l: Layer) => {
      for (const name of l.inputs) if (lastUse.get(name) === l) calibration.gram.delete(name);
    };
    const global =
      options.scope === 'global' && !pattern.nm
        ? globalFractions(
            layers,
            new Map(
              layers.map((l) => {
                const norm = new Float64Array(l.k);
                for (const name of l.inputs) {
                  const g = calibration.gram.get(name)!;
                  for (let i = 0; i < l.k; i++) norm[i]! += g.matrix[i * l.k + i]!;
                }
                return [l, norm.map(Math.sqrt)];
              }),
            ),
            pattern.sparsity,
            options['max-layer-sparsity'],
          )
        : undefined;
    if (global) summary.notes.push(global.note);
    const what = pattern.nm ? `${pattern.nm.n}:${pattern.nm.m}` : options.scope;
    const singular: string[] = [];
    /** The layer pruned, with the damping raised tenfold at a time while XᵀX is not positive definite with it. */
    const run = async (l: Layer, pool: KernelPool, progress: JobProgress): Promise<SparseGptResult & { damp: number }> => {
      const sparsity = global?.fractions.get(l) ?? pattern.sparsity;
      for (let damp = rowsOf(l) < l.k ? raised : options.damp; ; damp = Math.max(10 * damp, 1e-6)) {
        const job = { kind: 'sparsegpt', values: floatSource(l.w.tensor), k: l.k, n: l.n, transposed: l.transposed } as const;
        const result = await pool.run(
          { ...job, hessian: hessianOf(l), damp, refit: options.refit, block: options.block, sparsity, nm: pattern.nm },
          progress,
        );
        if (!('singular' in result)) {
          release(l);
          return { ...result, damp };
        }
        if (damp >= 1e6) throw new Error(`${l.w.name}: XᵀX is not positive definite even damped by ${damp}`);
        singular.push(l.w.name);
      }
    };
    await pruneLayers(
      model,
      layers,
      run,
      options,
      context,
      summary,
      (_, r) => ({
        form: `sparsegpt-pruned (${what})`,
        details: { damp: r.damp, calibrationLoss: r.loss },
      }),
      'sparsegpt',
      // Results are applied in order, and a transformer block's last layer (the FFN output, K = 4·d)
      // takes as long as the five before it: with a window of one layer per thread the other thread
      // sat idle behind it. Each layer started holds its XᵀX copy (up to K² float64).
      SPARSEGPT_WINDOW_PER_THREAD * Math.max(1, context.threads),
    );
    if (singular.length > 0)
      summary.notes.push(
        `warning: damping raised tenfold (or more) for ${[...new Set(singular)].join(', ')}: XᵀX not positive definite with it`,
      );
    return summary;
  },
});
