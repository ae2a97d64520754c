// 16-bit floating point encodings: IEEE half precision (float16) and bfloat16, both rounded to
// nearest even from float32, as ONNX Runtime's Cast and numpy's astype do.

/** The largest finite float16 value. */
export const FLOAT16_MAX = 65504;

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

const magic = new Float32Array(1);
const magicBits = new Uint32Array(magic.buffer);
/** 0.5 as the smallest float16 subnormal's unit: adding it rounds a small float32 to nearest even in the low bits. */
const DENORM_MAGIC = (127 - 15 + (23 - 10) + 1) << 23;
const DENORM_MAGIC_FLOAT = new Float32Array(new Uint32Array([DENORM_MAGIC]).buffer)[0]!;

/**
 * The float16 bit pattern of a float32 bit pattern, rounded to nearest even (overflow gives ±inf,
 * NaN stays NaN). Integer steps only, after F. Giesen's float_to_half_fast3_rtne: normal values
 * rebias the exponent and round on the 13 dropped bits; subnormal results are rounded by the FPU,
 * by adding a magic number whose unit is the float16 subnormal step.
 */
function halfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const f = x & 0x7fffffff;
  if (f >= 0x47800000) return sign | (f > 0x7f800000 ? 0x7e00 : 0x7c00); // ≥ 65536 (rounds to inf), inf, NaN
  if (f < 0x38800000) {
    // Below float16's smallest normal (2^-14): let the addition round it.
    magicBits[0] = f;
    magic[0] = magic[0]! + DENORM_MAGIC_FLOAT;
    return sign | (magicBits[0]! - DENORM_MAGIC);
  }
  const odd = (f >>> 13) & 1;
  return sign | (((f + ((15 - 127) << 23) + 0xfff + odd) >>> 13) & 0xffff);
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

let table: Float32Array | undefined;

/** Every float16 value as float32, by its bits (made once, 256 kB). */
function float16Table(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1,
        exp = (h >> 10) & 0x1f,
        frac = h & 0x3ff;
      table[h] =
        exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
    }
  }
  return table;
}

/** float16 bits to float32. */
export function fromFloat16(bits: Uint16Array): Float32Array {
  const t = float16Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}

/** What a conversion to half precision measured on the way. */
export interface HalfFigures {
  /** The largest |original − converted|, and Σ(original − converted)² and Σ original² (for a relative RMS error). */
  maxAbsError: number;
  errorSquares: number;
  squares: number;
  /** The largest |original| (NaN when a value is NaN). */
  largest: number;
}

export interface HalfConversion extends HalfFigures {
  bits: Uint16Array;
}

/** Figures of two parts of one tensor's conversion, as the conversion of the whole would give them. */
export function addHalfFigures(a: HalfFigures, b: HalfFigures): HalfFigures {
  return {
    maxAbsError: Math.max(a.maxAbsError, b.maxAbsError),
    errorSquares: a.errorSquares + b.errorSquares,
    squares: a.squares + b.squares,
    largest: Number.isNaN(a.largest) || Number.isNaN(b.largest) ? NaN : Math.max(a.largest, b.largest),
  };
}

/** float32 values to float16 or bfloat16 bits, measuring the rounding error on the way (one pass). */
export function toHalf(values: Float32Array, bfloat16: boolean): HalfConversion {
  const input = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const bits = new Uint16Array(values.length);
  const back = bfloat16 ? undefined : float16Table();
  const word = new Uint32Array(1),
    asFloat = new Float32Array(word.buffer);
  let maxAbsError = 0,
    errorSquares = 0,
    squares = 0,
    largest = 0;
  for (let i = 0; i < input.length; i++) {
    const b = bfloat16 ? bfloat16Bits(input[i]!) : halfBits(input[i]!);
    bits[i] = b;
    let now: number;
    if (back) now = back[b]!;
    else {
      word[0] = b << 16;
      now = asFloat[0]!;
    }
    const v = values[i]!,
      d = Math.abs(v - now),
      a = Math.abs(v);
    if (a > largest || Number.isNaN(a)) largest = a;
    if (d > maxAbsError) maxAbsError = d;
    errorSquares += d * d;
    squares += v * v;
  }
  return { bits, maxAbsError, errorSquares, squares, largest };
}
