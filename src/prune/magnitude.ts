// Unstructured magnitude pruning: the smallest-magnitude weights become exactly zero, per tensor
// (each loses the same fraction) or with one threshold across all chosen tensors (global), where a
// per-layer cap keeps any layer from being emptied.
import type { Model } from '../ir/model.js';
import { floatSource, floatValues, numElements, tensorByteLength } from '../ir/tensor.js';
import { KernelPool, aheadForSameSize, inOrder, windowFor } from '../kernels/pool.js';
import { kthMagnitude } from '../kernels/smallest.js';
import type { Weight } from '../ir/weights.js';
import { selectionOptions } from '../pass/options.js';
import { definePass, emptySummary, type PassContext, type PassSummary } from '../pass/pass.js';
import type { WeightError } from '../kernels/weight-error.js';
import { chooseWeights } from '../pass/select.js';
import { PRUNABLE_DTYPES, recordPruned, STORAGE_OPTION } from './store.js';

export const magnitudePass = definePass({
  family: 'prune',
  method: 'magnitude',
  description: 'unstructured magnitude pruning: the smallest weights become exactly zero (per tensor, or one global threshold)',
  options: {
    sparsity: {
      type: 'number',
      min: 0,
      max: 1,
      default: 0.5,
      description: 'fraction of weights to zero (of each tensor, or of all chosen weights with scope=global)',
    },
    scope: {
      type: 'enum',
      choices: ['layer', 'global'],
      default: 'layer',
      description: 'layer: each tensor loses the same fraction; global: one magnitude threshold across all chosen tensors',
    },
    'max-layer-sparsity': {
      type: 'number',
      min: 0,
      max: 1,
      default: 0.98,
      description: 'with scope=global, no tensor is pruned beyond this fraction',
    },
    storage: STORAGE_OPTION,
    ops: { type: 'string', default: 'MatMul,Gemm,Conv,ConvTranspose', description: 'op types whose weights are pruned' },
    ...selectionOptions(256),
  },
  async run(model: Model, options, context: PassContext): Promise<PassSummary> {
    const summary = emptySummary(this, options);
    const { weights, skipped } = chooseWeights(model, options, undefined, PRUNABLE_DTYPES);
    summary.skipped.push(...skipped);
    const sparsity = options.sparsity;
    // A global threshold needs every tensor at once; per tensor, each is read when its turn comes.
    const originals = new Map<Weight, Float32Array>(options.scope === 'global' ? weights.map((w) => [w, floatValues(w.tensor)]) : []);
    const targets = new Map<Weight, number>();
    if (options.scope === 'global') {
      const cap = options['max-layer-sparsity'];
      const total = weights.reduce((n, w) => n + originals.get(w)!.length, 0);
      const count = Math.floor(sparsity * total);
      const threshold = count > 0 ? kthMagnitude([...originals.values()], total, count - 1) : -1;
      let assigned = 0;
      for (const w of weights) {
        const values = originals.get(w)!;
        let below = 0;
        for (let i = 0; i < values.length; i++) if (Math.abs(values[i]!) <= threshold) below++;
        const n = Math.min(below, Math.floor(cap * values.length));
        targets.set(w, n);
        assigned += n;
      }
      summary.notes.push(
        `global threshold |w| ≤ ${threshold.toPrecision(4)}: ${assigned} of ${total} weights (${((100 * assigned) / Math.max(1, total)).toFixed(2)} %) pruned, target ${(100 * sparsity).toFixed(2)} %`,
      );
      // From here on each tensor is read again when its turn comes, as with scope=layer.
      originals.clear();
    } else {
      for (const w of weights) targets.set(w, Math.floor(sparsity * numElements(w.tensor.dims)));
    }
    const apply = (w: Weight, after: Float32Array, zeroCount: number, error: WeightError): void =>
      recordPruned(
        model,
        context,
        summary,
        w,
        { values: after, zeros: zeroCount, storage: options.storage },
        {
          ...error,
          form: `magnitude-pruned (${options.scope})`,
        },
      );
    // Each tensor is pruned on a kernel thread (which reads it from the file itself when it is still
    // there, and measures the error while it has both); results are applied here in order.
    const pool = new KernelPool(context.threads);
    const start = (w: Weight) => pool.run({ kind: 'prune', values: floatSource(w.tensor), count: targets.get(w)! });
    try {
      const report = { progress: context.progress, label: 'magnitude', bytesOf: (w: Weight) => tensorByteLength(w.tensor) };
      const ahead = aheadForSameSize(context.threads, weights.map(report.bytesOf));
      for await (const [w, pruned] of inOrder(weights, windowFor(context.threads), start, report, ahead))
        apply(w, pruned.values, pruned.zeros, pruned.error);
    } finally {
      await pool.close();
    }
    return summary;
  },
});
