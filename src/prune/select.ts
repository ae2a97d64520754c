// Which weights the pruning passes consider, shared by magnitude, N:M and structured pruning.
import type { Model } from '../ir/model.js';
import { DataType } from '../io/types.js';
import { dtypeName } from '../ir/dtype.js';
import { findWeights, type Weight } from '../ir/weights.js';
import type { OptionValues } from '../pipeline/options.js';
import { parseOpList } from '../pipeline/ops.js';
import type { Skip } from '../pipeline/pass.js';
import { selection } from '../pipeline/select.js';

export function prunableWeights(model: Model, options: OptionValues): { weights: Weight[]; skipped: Skip[] } {
  const chosen = selection(options, parseOpList(options.ops as string));
  const weights: Weight[] = [];
  const skipped: Skip[] = [];
  for (const w of findWeights(model)) {
    if (w.uses.length === 0) continue;
    const why = chosen.reason(w);
    if (why) skipped.push({ name: w.name, reason: why });
    else if (w.tensor.data_type !== DataType.FLOAT) skipped.push({ name: w.name, reason: `${dtypeName(w.tensor.data_type)} weights are left as they are (float32 only)` });
    else weights.push(w);
  }
  return { weights, skipped };
}
