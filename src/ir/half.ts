// 16-bit floating point encodings: IEEE half precision (float16) and bfloat16, both rounded to
// nearest even from float32, as ONNX Runtime's Cast and numpy's astype do.

/** The largest finite float16 value. */
export const FLOAT16_MAX = 65504;

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The float16 bit pattern of a float32 bit pattern, rounded to nearest even (overflow gives ±inf). */
function halfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rest = mant & ((1 << shift) - 1), mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa rounds up into the exponent, and from the largest finite value to inf.
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** A number as float16 bits (through float32, as a float32 tensor's values are). */
export function floatToHalf(value: number): number {
  scratch[0] = value;
  return halfBits(scratchBits[0]!);
}

/** A number as bfloat16 bits: the upper half of its float32 bits, rounded to nearest even (NaN stays NaN). */
export function floatToBfloat16(value: number): number {
  scratch[0] = value;
  return bfloat16Bits(scratchBits[0]!);
}

function bfloat16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 values as float16 bits. */
export function toFloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfBits(bits[i]!);
  return out;
}

/** float32 values as bfloat16 bits. */
export function toBfloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) out[i] = bfloat16Bits(bits[i]!);
  return out;
}
