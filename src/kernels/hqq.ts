// Half-quadratic quantization (HQQ; Badri & Shaji, 2023), data-free: a group's dequantized values
// W_r = s·(Q − z) are fitted to W under a sparsity-promoting ℓp error (p < 1), which tolerates a few
// large errors to make the rest small. Splitting the error out as W_e turns it into two easy steps:
// W_e = shrink_p(W − W_r) (a generalized soft threshold), then the closed-form least-squares update
// of the free parameter given W − W_e; β, the weight of the splitting term, grows by κ each round.
// The paper's free parameter is the zero point (asymmetric codes); with symmetric codes (zero point
// fixed at 0) it is the scale, by the same least-squares step. ONNX's 4-bit zero points are codes, so
// the zero point is rounded to one at the end.
import { groupParams, type GroupParams, type IntRange } from './quantize.js';

/** The reference's settings (ℓ0.7, β 10, κ 1.01, 20 rounds, stop when the mean |error| stops falling). */
export const HQQ_SETTINGS = { p: 0.7, beta: 10, kappa: 1.01, iterations: 20 };

const ROUND = 6755399441055744;

/** The HQQ scale and zero point of values[0..n), starting from min/max (`min`, `max` their extremes). */
export function hqqParams(values: Float32Array, n: number, min: number, max: number, range: IntRange, symmetric: boolean): GroupParams {
  const lo = range.min,
    hi = range.max;
  const start = groupParams(min, max, range, symmetric);
  if (n === 0) return start;
  let scale = start.scale;
  // The zero point in float while it is optimized (codes are x / s + z).
  let zero = start.zeroPoint;
  let best = { scale, zero, error: Infinity };
  let beta = HQQ_SETTINGS.beta;
  const p1 = HQQ_SETTINGS.p - 1;
  for (let it = 0; it < HQQ_SETTINGS.iterations; it++) {
    const inv = 1 / scale;
    let absError = 0,
      sumTq = 0,
      sumQq = 0,
      sumZ = 0;
    for (let k = 0; k < n; k++) {
      const x = values[k]!;
      let q = x * inv + zero + ROUND - ROUND;
      q = q < lo ? lo : q > hi ? hi : q;
      const d = x - (q - zero) * scale;
      const a = Math.abs(d);
      absError += a;
      // shrink_p: sign(d)·max(|d| − |d|^(p−1)/β, 0)
      const shrunk = a > 0 ? Math.max(a - a ** p1 / beta, 0) : 0;
      const t = x - (d < 0 ? -shrunk : shrunk);
      if (symmetric) {
        sumTq += t * q;
        sumQq += q * q;
      } else sumZ += q - t * inv;
    }
    absError /= n;
    if (!(absError < best.error)) break;
    best = { scale, zero, error: absError };
    if (symmetric) {
      if (sumQq > 0 && sumTq !== 0) scale = Math.fround(sumTq / sumQq);
    } else zero = sumZ / n;
    beta *= HQQ_SETTINGS.kappa;
  }
  const zp = symmetric ? best.zero : Math.min(hi, Math.max(lo, best.zero + ROUND - ROUND));
  return { scale: best.scale, zeroPoint: zp };
}
