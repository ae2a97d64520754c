// float16 and bfloat16 conversion, checked against closed-form values (ties to even, the ends of the
// range, subnormals, NaN) and exhaustively: every float16 value converts back to its own bits.
import { describe, expect, it } from 'vitest';
import { floatToBfloat16, floatToHalf, fromFloat16, toHalf } from '../../src/ir/half.js';

describe('float16', () => {
  it.each([
    [1, 0x3c00],
    [1 + 2 ** -10, 0x3c01],
    [1 + 2 ** -11, 0x3c00], // a tie: to the even neighbour below
    [1 + 3 * 2 ** -11, 0x3c02], // a tie: to the even neighbour above
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00],
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Infinity, 0x7c00],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000],
    [3 * 2 ** -26, 0x0001],
    [2 ** -14 - 2 ** -24, 0x03ff],
    [-0, 0x8000],
    [0, 0x0000],
    [-2, 0xc000],
  ])('%s → %s', (value, bits) => {
    expect(floatToHalf(value)).toBe(bits);
  });

  it('NaN stays NaN', () => {
    expect(floatToHalf(NaN) & 0x7c00).toBe(0x7c00);
    expect(floatToHalf(NaN) & 0x03ff).not.toBe(0);
  });

  it('every float16 value comes back to its own bits (all 63 488 finite ones and ±inf)', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00 || (h & 0x3ff) === 0);
    const floats = fromFloat16(all);
    const back = toHalf(floats, false);
    expect(Array.from(back.bits)).toEqual(Array.from(all));
    expect(back.maxAbsError).toBe(0);
  });

  it('measures the rounding error as it converts', () => {
    const values = Float32Array.of(1 + 2 ** -12, -3, 0.1);
    const c = toHalf(values, false);
    const now = fromFloat16(c.bits);
    const errors = Array.from(values, (v, i) => Math.abs(v - now[i]!));
    expect(c.maxAbsError).toBe(Math.max(...errors));
    expect(c.errorSquares).toBeCloseTo(
      errors.reduce((a, e) => a + e * e, 0),
      15,
    );
    expect(c.largest).toBe(3);
  });
});

describe('bfloat16', () => {
  it.each([
    [1, 0x3f80],
    [1 + 2 ** -7, 0x3f81],
    [1 + 2 ** -8, 0x3f80],
    [1 + 3 * 2 ** -8, 0x3f82],
    [-2, 0xc000],
    [3.4028234663852886e38, 0x7f80],
    [1e-40, 0x0001],
  ])('%s → %s', (value, bits) => {
    expect(floatToBfloat16(value)).toBe(bits);
  });

  it('NaN stays NaN', () => {
    const b = floatToBfloat16(NaN);
    expect(b & 0x7f80).toBe(0x7f80);
    expect(b & 0x007f).not.toBe(0);
  });
});
