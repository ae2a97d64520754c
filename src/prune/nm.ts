// N:M semi-structured pruning: in every group of M consecutive weights along the reduction axis,
// only the N largest in magnitude are kept (2:4 is the pattern sparse tensor cores accelerate).
import type { Model } from '../ir/model.js';
import { floatSource, tensorByteLength } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';
import { KernelPool, aheadForSameSize, inOrder, windowFor } from '../kernels/pool.js';
import { selectionOptions } from '../pass/options.js';
import { definePass, emptySummary, type PassContext, type PassSummary } from '../pass/pass.js';
import { chooseWeights } from '../pass/select.js';
import { PRUNABLE_DTYPES, recordPruned, STORAGE_OPTION } from './store.js';

export const nmPass = definePass({
  family: 'prune',
  method: 'nm',
  description: 'N:M semi-structured pruning: N of every M consecutive weights along the reduction axis are kept',
  options: {
    n: { type: 'integer', min: 1, max: 64, default: 2, description: 'weights kept in each group' },
    m: { type: 'integer', min: 2, max: 64, default: 4, description: 'group length along the reduction axis' },
    storage: STORAGE_OPTION,
    ops: { type: 'string', default: 'MatMul,Gemm,Conv', description: 'op types whose weights are pruned' },
    ...selectionOptions(256),
  },
  validate(options): string | undefined {
    return options.n >= options.m ? `n must be smaller than m (got ${options.n}:${options.m})` : undefined;
  },
  async run(model: Model, options, context: PassContext): Promise<PassSummary> {
    const summary = emptySummary(this, options);
    const { n, m } = options;
    const { weights, skipped } = chooseWeights(model, options, undefined, PRUNABLE_DTYPES);
    summary.skipped.push(...skipped);
    const chosen: { w: Weight; axis: number; dims: number[] }[] = [];
    for (const w of weights) {
      const axes = new Set(w.uses.map((u) => u.reductionAxis));
      if (axes.size !== 1) {
        summary.skipped.push({ name: w.name, reason: 'its uses reduce over different axes' });
        continue;
      }
      const axis = [...axes][0]!;
      const dims = w.tensor.dims.map(Number);
      if (dims[axis]! % m !== 0) {
        summary.skipped.push({ name: w.name, reason: `reduction axis of length ${dims[axis]} is not a multiple of ${m}` });
        continue;
      }
      chosen.push({ w, axis, dims });
    }
    // Each tensor on a kernel thread (which reads it from the file itself when it is still there,
    // and measures the error as it goes); results applied here in order.
    const pool = new KernelPool(context.threads);
    const start = ({ w, axis, dims }: (typeof chosen)[number]) => pool.run({ kind: 'nm', values: floatSource(w.tensor), dims, axis, n, m });
    try {
      const report = {
        progress: context.progress,
        label: `${n}:${m}`,
        bytesOf: ({ w }: (typeof chosen)[number]) => tensorByteLength(w.tensor),
      };
      const ahead = aheadForSameSize(context.threads, chosen.map(report.bytesOf));
      for await (const [{ w, axis, dims }, pruned] of inOrder(chosen, windowFor(context.threads), start, report, ahead)) {
        recordPruned(
          model,
          context,
          summary,
          w,
          { ...pruned, storage: options.storage },
          {
            shape: dims,
            ...pruned.error,
            form: `${n}:${m} along axis ${axis}`,
          },
        );
      }
    } finally {
      await pool.close();
    }
    return summary;
  },
});
