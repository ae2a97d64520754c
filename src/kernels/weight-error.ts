// How far a tensor's new values are from its original ones: the figures every pass reports for a
// tensor it changed, computed by the kernels as they change it.

/** How far a tensor's new values are from its original ones. */
export interface WeightError {
  maxAbsError: number;
  /** RMS of the error relative to the RMS of the original. */
  relRmsError: number;
}

/** The figures from their sums: the largest |error|, Σ error² and Σ original². */
export function weightErrorOf(maxAbs: number, errSq: number, refSq: number): WeightError {
  return { maxAbsError: maxAbs, relRmsError: refSq === 0 ? (errSq === 0 ? 0 : Infinity) : Math.sqrt(errSq / refSq) };
}

/** Weight error: max absolute error and RMS of the error relative to the RMS of the original. */
export function weightError(original: ArrayLike<number>, reconstructed: ArrayLike<number>): WeightError {
  let maxAbs = 0,
    errSq = 0,
    refSq = 0;
  for (let i = 0; i < original.length; i++) {
    const o = original[i]!,
      d = Math.abs(o - reconstructed[i]!);
    if (d > maxAbs) maxAbs = d;
    errSq += d * d;
    refSq += o * o;
  }
  return weightErrorOf(maxAbs, errSq, refSq);
}

export function sparsity(values: ArrayLike<number>): number {
  let zeros = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === 0) zeros++;
  return values.length ? zeros / values.length : 0;
}
