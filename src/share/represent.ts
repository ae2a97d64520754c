// Choosing the tensor a group shares: one of its members, or their mean, whichever gives the
// members the smallest sum of squared relative errors while keeping each within the tolerance.
// Positions where at least half the members are exactly zero stay zero in the mean, so tensors
// pruned before sharing stay as sparse.
import { weightError } from '../kernels/weight-error.js';

export type Representative = { kind: 'member'; index: number; values: Float32Array } | { kind: 'mean'; values: Float32Array };

export type RepresentativeMode = 'best' | 'mean' | 'member';

/** The members' mean, with zeros where at least half the members are zero. */
export function zeroKeepingMean(members: Float32Array[]): Float32Array {
  const n = members[0]!.length,
    k = members.length;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0,
      zeros = 0;
    for (const m of members) {
      const x = m[i]!;
      sum += x;
      if (x === 0) zeros++;
    }
    out[i] = 2 * zeros >= k ? 0 : sum / k;
  }
  return out;
}

/** The best allowed representative within the tolerance, or undefined when none is. */
export function chooseRepresentative(members: Float32Array[], mode: RepresentativeMode, tolerance: number): Representative | undefined {
  const options: Representative[] = [];
  if (mode !== 'mean') for (const [index, values] of members.entries()) options.push({ kind: 'member', index, values });
  if (mode !== 'member') options.push({ kind: 'mean', values: zeroKeepingMean(members) });
  // The grouping worked in float64 from dot products; allow for float32 rounding of the same figure.
  const limit = tolerance * (1 + 1e-6) + 1e-9;
  let best: Representative | undefined,
    bestScore = Infinity;
  for (const option of options) {
    let score = 0,
      worst = 0;
    for (const m of members) {
      const e = weightError(m, option.values).relRmsError;
      score += e * e;
      worst = Math.max(worst, e);
    }
    if (worst <= limit && score < bestScore) {
      best = option;
      bestScore = score;
    }
  }
  return best;
}
