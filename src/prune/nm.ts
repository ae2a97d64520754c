// N:M semi-structured pruning: in every group of M consecutive weights along the reduction axis,
// only the N largest in magnitude are kept (2:4 is the pattern sparse tensor cores accelerate).
import type { Model } from '../ir/model.js';
import { floatValues, tensorByteLength } from '../ir/tensor.js';
import { selectionOptions, type OptionValues } from '../pipeline/options.js';
import { emptySummary, type Pass, type PassContext, type PassSummary } from '../pipeline/pass.js';
import { perBlock } from '../quantize/kernels.js';
import { weightError } from '../report/metrics.js';
import { chooseWeights } from '../pipeline/select.js';
import { markPruned, setValues, STORAGE_OPTION } from './store.js';

/**
 * Positions 0..size of `values` in `order`, smallest magnitude first; among equal magnitudes the
 * later position first, so that zeroing a prefix keeps the earlier one. An insertion sort over a
 * reused array: sorting a fresh array with a comparator per group took ~0.5 µs (12 s on BERT-base).
 */
function smallestFirst(values: Float32Array, size: number, order: Int32Array): void {
  for (let a = 0; a < size; a++) {
    const v = Math.abs(values[a]!);
    let b = a - 1;
    // Everything before is earlier in position, so an equal magnitude moves after this one.
    while (b >= 0 && Math.abs(values[order[b]!]!) >= v) {
      order[b + 1] = order[b]!;
      b--;
    }
    order[b + 1] = a;
  }
}

export const nmPass: Pass = {
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
  run(model: Model, options: OptionValues, _context: PassContext): PassSummary {
    const summary = emptySummary(this, options);
    const n = options.n as number, m = options.m as number;
    if (n >= m) throw new Error(`n must be smaller than m (got ${n}:${m})`);
    const { weights, skipped } = chooseWeights(model, options);
    summary.skipped.push(...skipped);
    for (const w of weights) {
      const axes = new Set(w.uses.map((u) => u.reductionAxis));
      if (axes.size !== 1) { summary.skipped.push({ name: w.name, reason: 'its uses reduce over different axes' }); continue; }
      const axis = [...axes][0]!;
      const dims = w.tensor.dims.map(Number);
      if (dims[axis]! % m !== 0) { summary.skipped.push({ name: w.name, reason: `reduction axis of length ${dims[axis]} is not a multiple of ${m}` }); continue; }
      const before = floatValues(model, w.tensor);
      const after = before.slice();
      const groups = perBlock(dims, axis, m);
      const buf = new Float32Array(m), idx = new Int32Array(m), order = new Int32Array(m);
      let zeros = 0;
      for (let g = 0; g < groups.count; g++) {
        const size = groups.gather(g, before, buf, idx);
        smallestFirst(buf, size, order);
        for (let k = 0; k < size - n; k++) after[idx[order[k]!]!] = 0;
      }
      for (let i = 0; i < after.length; i++) if (after[i] === 0) zeros++;
      const bytes = tensorByteLength(model, w.tensor);
      setValues(model, w, after);
      if (options.storage === 'auto') markPruned(model, w, zeros);
      summary.bytesBefore += bytes;
      summary.bytesAfter += bytes;
      summary.tensors.push({
        name: w.name, shape: dims, dtypeBefore: 'float32', dtypeAfter: 'float32', bytesBefore: bytes, bytesAfter: bytes,
        sparsity: zeros / after.length, ...weightError(before, after), form: `${n}:${m} along axis ${axis}`,
      });
    }
    return summary;
  },
};
