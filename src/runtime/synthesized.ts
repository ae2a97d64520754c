// A size limit on synthesized evaluation inputs (no --data), checked before any is made: a model
// may declare an input of [1000000, 1000000], or --dim may give a symbolic dimension 10^9.
import { InputError, UsageError } from '../errors.js';
import { GraphIndex } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { toNumber } from '../ir/tensor.js';

/**
 * Elements per synthesized input, and per batch of them, at most: 2^26, 256 MiB as float32. Making
 * them takes ~65 ns an element (~4 s for one input at the limit, times 4 batches by default), all
 * batches are held at once and copied to ONNX Runtime; the largest real inputs (a batch of 32
 * images of 224x224, a minute of audio) have a few million.
 */
export const MAX_SYNTHESIZED_ELEMENTS = 2 ** 26;

/** Throws when inputs synthesized for `model` with these --dim values would exceed the limit. */
export function checkSynthesizedSize(model: Model, label: string, dims: Record<string, number> = {}): void {
  let total = 0;
  const sizes: string[] = [];
  let userDims = false;
  for (const input of new GraphIndex(model.graph).realInputs()) {
    const shape = input.type?.tensor_type?.shape?.dim ?? [];
    let n = 1;
    const values = shape.map((d) => {
      if (d.dim_value !== undefined) return toNumber(d.dim_value);
      const given = dims[d.dim_param ?? ''];
      if (given !== undefined) userDims = true;
      return given ?? 1;
    });
    for (const v of values) n *= Math.max(v, 0);
    total += n;
    sizes.push(`${input.name} ${n}`);
    const fromUser = shape.some((d) => d.dim_value === undefined && dims[d.dim_param ?? ''] !== undefined);
    if (n > MAX_SYNTHESIZED_ELEMENTS) {
      throw refusal(fromUser, `${label}: synthesized input '${input.name}' of shape [${values.join(', ')}] would have ${n} elements, over the limit of ${MAX_SYNTHESIZED_ELEMENTS} (2^26)${fromUser ? '; give smaller --dim values' : ''}; or give evaluation data with --data`);
    }
  }
  if (total > MAX_SYNTHESIZED_ELEMENTS) {
    throw refusal(userDims, `${label}: synthesized inputs would have ${total} elements per batch (${sizes.join(', ')}), over the limit of ${MAX_SYNTHESIZED_ELEMENTS} (2^26)${userDims ? '; give smaller --dim values' : ''}; or give evaluation data with --data`);
  }
}

/** The user's --dim made it too large (usage, exit 2), or the model's own shape did (input, exit 1). */
function refusal(fromUser: boolean, message: string): Error {
  return fromUser ? new UsageError(message) : new InputError(message);
}
