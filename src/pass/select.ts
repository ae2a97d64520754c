// Choosing the tensors a pass touches, the same way in every pass: by the op that uses them, by
// name pattern (include/exclude, matched against the tensor and its consumers' names), by size.
import type { SelectionValues } from './options.js';
import type { Skip } from './pass.js';
import { parseOpList } from './ops.js';
import { DataType } from '../ir/onnx.js';
import { dtypeName } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { findWeights, namePattern, type Weight } from '../ir/weights.js';
import { numElements } from '../ir/tensor.js';
import { findQuantizedWeights } from '../ir/quantized.js';

export interface Selection {
  /** Why the weight is not selected, or undefined when it is. */
  reason(weight: Weight): string | undefined;
  /** Whether that reason is the selection options' (min-size, include, exclude) rather than the pass's. */
  byOptions(weight: Weight): boolean;
}

export function selection(options: SelectionValues, ops: Set<string>): Selection {
  const include = typeof options.include === 'string' && options.include !== '' ? namePattern(options.include) : undefined;
  const exclude = typeof options.exclude === 'string' && options.exclude !== '' ? namePattern(options.exclude) : undefined;
  const minSize = typeof options['min-size'] === 'number' ? options['min-size'] : 0;
  const names = (w: Weight) => [w.name, ...w.uses.map((u) => u.node.name ?? '').filter((n) => n !== '')];
  return {
    reason(w) {
      const used = w.uses.filter((u) => ops.has(u.node.op_type ?? ''));
      if (used.length === 0) return w.uses.length === 0 ? 'not used as a weight by any op this pass handles' : `its ops (${[...new Set(w.uses.map((u) => u.node.op_type))].join(', ')}) are not selected`;
      const n = numElements(w.tensor.dims);
      if (n < minSize) return `${n} elements, below min-size ${minSize}`;
      if (include && !names(w).some((x) => include.test(x))) return 'does not match include pattern';
      if (exclude && names(w).some((x) => exclude.test(x))) return 'matches exclude pattern';
      return undefined;
    },
    byOptions(w) {
      const n = numElements(w.tensor.dims);
      return w.uses.some((u) => ops.has(u.node.op_type ?? '')) && (n < minSize || (include !== undefined && !names(w).some((x) => include.test(x))) || (exclude !== undefined && names(w).some((x) => exclude.test(x))));
    },
  };
}

/**
 * The weights a pass works on: float32 weights used by the chosen ops that the selection options
 * allow, each left-out one with its reason. `extra` adds a pass's own reasons to leave one alone.
 * Weights already quantized (src/ir/quantized.ts) are left out with that as the reason ("already
 * int8 (DequantizeLinear per-axis)", "already 4-bit (MatMulNBits)"), not the selection options' —
 * unless min-size, include or exclude leave them out anyway. `dtypes` widens the weights' element
 * types a pass takes (int8 also takes float16 and bfloat16).
 */
export function chooseWeights(model: Model, options: SelectionValues & { readonly ops: string }, extra?: (w: Weight) => string | undefined, dtypes: readonly number[] = [DataType.FLOAT]): { weights: Weight[]; skipped: Skip[] } {
  const only = dtypes.map((d) => dtypeName(d)).join(', ').replace(/, ([^,]*)$/, ' and $1');
  const chosen = selection(options, parseOpList(options.ops));
  const weights: Weight[] = [];
  const skipped: Skip[] = [];
  for (const w of findWeights(model)) {
    if (w.uses.length === 0) continue;
    const why = chosen.reason(w)
      ?? (!dtypes.includes(w.tensor.data_type ?? 0) ? `${dtypeName(w.tensor.data_type)} weights are left as they are (${only} only)` : undefined)
      ?? extra?.(w);
    if (why) skipped.push({ name: w.name, reason: why, ...(chosen.byOptions(w) ? { chosen: true } : {}) });
    else weights.push(w);
  }
  const include = typeof options.include === 'string' && options.include !== '' ? namePattern(options.include) : undefined;
  const exclude = typeof options.exclude === 'string' && options.exclude !== '' ? namePattern(options.exclude) : undefined;
  const minSize = typeof options['min-size'] === 'number' ? options['min-size'] : 0;
  for (const q of findQuantizedWeights(model)) {
    const names = [q.name, q.node.name ?? ''].filter((n) => n !== '');
    const n = q.elements;
    const byOptions = n < minSize ? `${n} elements, below min-size ${minSize}`
      : include && !names.some((x) => include.test(x)) ? 'does not match include pattern'
      : exclude && names.some((x) => exclude.test(x)) ? 'matches exclude pattern' : undefined;
    skipped.push(byOptions ? { name: q.name, reason: byOptions, chosen: true } : { name: q.name, reason: q.reason });
  }
  return { weights, skipped };
}
