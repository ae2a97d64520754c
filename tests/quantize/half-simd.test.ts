// The WebAssembly float16/bfloat16 conversion (assembly/half.ts) against the JavaScript one
// (ir/half.ts), itself checked against closed-form values in tests/ir: the same bits and the same
// error figures (sums of squares to float32's precision over 512 values). (Every one of the 2^32
// float32 bit patterns was compared once, in both types: bench/RESULTS.md; here a spread of them.)
import { describe, expect, it } from 'vitest';
import { toHalf } from '../../src/ir/half.js';
import { simdKernels } from '../../src/kernels/simd.js';

/** Every 4093rd bit pattern (a prime stride: every exponent, both signs, varied low bits), plus the edges. */
function patterns(): Float32Array {
  const bits: number[] = [];
  for (let u = 0; u < 2 ** 32; u += 4093) bits.push(u);
  const edges = [0x38800000, 0x387fffff, 0x33000000, 0x33000001, 0x477fefff, 0x477ff000, 0x47800000, 0x7f800000, 0x7f800001, 0x7fc00000];
  for (const e of edges) for (let d = -3; d <= 3; d++) for (const sign of [0, 0x80000000]) bits.push(((e + d) | sign) >>> 0);
  return new Float32Array(Uint32Array.from(bits).buffer);
}

describe('the SIMD half-precision conversion', () => {
  const values = patterns();
  const normal = Float32Array.from({ length: 100_003 }, (_, i) => Math.sin(i * 12.9898) * 3.7 + (i % 7) * 1e-6);
  // Weights as models hold them: eight at a time all 0, −0 or in float16's normal range (the kernel's
  // fast path), up to the largest value that stays finite (65519.996) and the first that does not.
  const weights = Float32Array.from({ length: 40_000 }, (_, i) =>
    i % 11 === 0
      ? 0
      : i % 13 === 0
        ? -0
        : i % 997 === 0
          ? Math.fround(65519.996) * Math.sign(Math.sin(i))
          : Math.sin(i * 7.1) * 0.05 + Math.sign(Math.sin(i)) * 0.001,
  );
  weights[39_000] = 65520;

  it.each([
    ['float16', false],
    ['bfloat16', true],
  ])('gives the JavaScript conversion’s %s bits for every sampled pattern and its figures', (_name, bf16) => {
    for (const v of [values, normal, normal.subarray(3, 1000), weights, weights.subarray(0, 38_000)]) {
      const js = toHalf(v, bf16);
      const simd = simdKernels().toHalf(v, bf16);
      expect(Buffer.from(simd.bits.buffer).equals(Buffer.from(js.bits.buffer))).toBe(true);
      expect(simd.maxAbsError).toBe(js.maxAbsError);
      expect(Object.is(simd.largest, js.largest)).toBe(true);
      // The kernel sums squares in float32 over 512 values at a time, then in float64 (assembly/half.ts).
      for (const [kernel, reference] of [
        [simd.errorSquares, js.errorSquares],
        [simd.squares, js.squares],
      ] as const) {
        if (Number.isNaN(reference)) expect(kernel).toBeNaN();
        else if (reference === 0 || !Number.isFinite(reference)) expect(kernel).toBe(reference);
        else expect(Math.abs(kernel / reference - 1)).toBeLessThan(512 * 2 ** -24);
      }
    }
  });
});
