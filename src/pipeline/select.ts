// Choosing the tensors a pass touches, the same way in every pass: by the op that uses them, by
// name pattern (include/exclude, matched against the tensor and its consumers' names), by size.
import type { OptionValues } from './options.js';
import { namePattern, type Weight } from '../ir/weights.js';
import { numElements } from '../ir/tensor.js';

export interface Selection {
  /** Why the weight is not selected, or undefined when it is. */
  reason(weight: Weight): string | undefined;
}

export function selection(options: OptionValues, ops: Set<string>): Selection {
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
  };
}
