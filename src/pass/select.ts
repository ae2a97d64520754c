// Choosing the tensors a pass touches, the same way in every pass: by the op that uses them, by
// name pattern (include/exclude, matched against the tensor and its consumers' names), by size.
import type { SelectionValues } from './options.js';
import type { Skip } from './pass.js';
import { parseOpList } from './ops.js';
import { DataType } from '../ir/onnx.js';
import { dtypeName } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { findWeights, namePattern, onlyMoved, type Weight } from '../ir/weights.js';
import { numElements } from '../ir/tensor.js';
import { findQuantizedWeights } from '../ir/quantized.js';

export interface Selection {
  /** Why the weight is not selected, or undefined when it is. */
  reason(weight: Weight): string | undefined;
  /** Whether that reason is the selection options' (min-size, include, exclude) rather than the pass's. */
  byOptions(weight: Weight): boolean;
}

/**
 * Why the selection options (min-size, include, exclude) leave a tensor alone, given the names it is
 * matched by (its own and its readers') and its element count; undefined when they take it.
 */
export type OptionFilter = (names: readonly string[], elements: number) => string | undefined;

/** The one reading of include=, exclude= and min-size= that every pass shares. */
export function optionFilter(options: SelectionValues): OptionFilter {
  const include = options.include ? namePattern(options.include) : undefined;
  const exclude = options.exclude ? namePattern(options.exclude) : undefined;
  const minSize = options['min-size'] ?? 0;
  return (names, elements) => {
    if (elements < minSize) return `${elements} elements, below min-size ${minSize}`;
    if (include && !names.some((n) => include.test(n))) return 'does not match include pattern';
    if (exclude && names.some((n) => exclude.test(n))) return 'matches exclude pattern';
    return undefined;
  };
}

export function selection(options: SelectionValues, ops: Set<string>): Selection {
  const byOptions = optionFilter(options);
  const names = (w: Weight) => [w.name, ...w.uses.map((u) => u.node.name ?? '').filter((n) => n !== '')];
  return {
    reason(w) {
      const used = w.uses.filter((u) => ops.has(u.node.op_type ?? ''));
      if (used.length === 0)
        return w.uses.length === 0
          ? 'not used as a weight by any op this pass handles'
          : `its ops (${[...new Set(w.uses.map((u) => u.node.op_type))].join(', ')}) are not selected`;
      return byOptions(names(w), numElements(w.tensor.dims));
    },
    byOptions(w) {
      return w.uses.some((u) => ops.has(u.node.op_type ?? '')) && byOptions(names(w), numElements(w.tensor.dims)) !== undefined;
    },
  };
}

/** Float tensors of at least this many elements that no op reads as a weight are named in the skips. */
export const UNUSED_REPORT_ELEMENTS = 4096;

/**
 * The weights a pass works on: float32 weights used by the chosen ops that the selection options
 * allow, each left-out one with its reason. `extra` adds a pass's own reasons to leave one alone.
 * Weights already quantized (src/ir/quantized.ts) are left out with that as the reason ("already
 * int8 (DequantizeLinear per-axis)", "already 4-bit (MatMulNBits)"), not the selection options' —
 * unless min-size, include or exclude leave them out anyway. `dtypes` widens the weights' element
 * types a pass takes (int8 also takes float16 and bfloat16). `takes.moved` also takes weights read
 * only through moves (Slice, Concat, Transpose …: `onlyMoved`), for a pass that replaces the weight
 * itself by an equal value (a DequantizeLinear) and leaves its readers as they are.
 */
export function chooseWeights(
  model: Model,
  options: SelectionValues & { readonly ops: string },
  extra?: (w: Weight) => string | undefined,
  dtypes: readonly number[] = [DataType.FLOAT],
  takes: { moved?: boolean } = {},
): { weights: Weight[]; skipped: Skip[] } {
  const only = dtypes
    .map((d) => dtypeName(d))
    .join(', ')
    .replace(/, ([^,]*)$/, ' and $1');
  const chosen = selection(options, parseOpList(options.ops));
  const weights: Weight[] = [];
  const skipped: Skip[] = [];
  const byOptions = optionFilter(options);
  for (const w of findWeights(model)) {
    if (takes.moved && onlyMoved(w)) {
      // Read only through moves (ir/weights.ts): chosen by the ops at the ends of the moves.
      const why =
        chosen.reason({ ...w, uses: w.movedUses }) ??
        (!dtypes.includes(w.tensor.data_type ?? 0)
          ? `${dtypeName(w.tensor.data_type)} weights are left as they are (${only} only)`
          : undefined) ??
        extra?.(w);
      if (why) skipped.push({ name: w.name, reason: why, ...(chosen.byOptions({ ...w, uses: w.movedUses }) ? { chosen: true } : {}) });
      else weights.push(w);
      continue;
    }
    if (w.uses.length === 0) {
      // A large float tensor no op reads as a weight (sliced apart first, read by an elementwise op,
      // an LSTM's weights packed into one tensor): said, so that it is never left float in silence.
      const readers = [...new Set(w.otherUses.map((n) => n.op_type ?? '?'))];
      const elements = numElements(w.tensor.dims);
      if (readers.length > 0 && elements >= UNUSED_REPORT_ELEMENTS && dtypes.includes(w.tensor.data_type ?? 0)) {
        const why = byOptions([w.name], elements);
        skipped.push(
          why
            ? { name: w.name, reason: why, chosen: true }
            : { name: w.name, reason: `read by ${readers.join(', ')}, not as the weight of an op this pass takes: left as it is` },
        );
      }
      continue;
    }
    const why =
      chosen.reason(w) ??
      (!dtypes.includes(w.tensor.data_type ?? 0)
        ? `${dtypeName(w.tensor.data_type)} weights are left as they are (${only} only)`
        : undefined) ??
      extra?.(w);
    if (why) skipped.push({ name: w.name, reason: why, ...(chosen.byOptions(w) ? { chosen: true } : {}) });
    else weights.push(w);
  }
  for (const q of findQuantizedWeights(model)) {
    const why = byOptions(
      [q.name, q.node.name ?? ''].filter((n) => n !== ''),
      q.elements,
    );
    skipped.push(why ? { name: q.name, reason: why, chosen: true } : { name: q.name, reason: q.reason });
  }
  return { weights, skipped };
}
