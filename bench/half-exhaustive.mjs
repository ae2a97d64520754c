// Every float32 bit pattern through the WebAssembly half conversion (assembly/half.ts) and the
// JavaScript one (ir/half.ts): the same bits, the same largest |x| and max error, sums of squares to
// the kernel's float32-per-512-values precision. Run after `npm run build`; takes minutes.
// Usage: node bench/half-exhaustive.mjs float16|bfloat16
import { toHalf } from '../dist/ir/half.js';
import { simdKernels } from '../dist/kernels/simd.js';

const bf16 = process.argv[2] === 'bfloat16';
const SLAB = 1 << 22;
const bits = new Uint32Array(SLAB);
const values = new Float32Array(bits.buffer);
const close = (a, b) =>
  Number.isNaN(b) ? Number.isNaN(a) : b === 0 || !Number.isFinite(b) ? a === b : Math.abs(a / b - 1) < 512 * 2 ** -24;
let failures = 0;
const started = Date.now();
for (let base = 0; base < 2 ** 32; base += SLAB) {
  for (let i = 0; i < SLAB; i++) bits[i] = base + i;
  const js = toHalf(values, bf16);
  const simd = simdKernels().toHalf(values, bf16);
  const same =
    Buffer.from(simd.bits.buffer).equals(Buffer.from(js.bits.buffer)) &&
    simd.maxAbsError === js.maxAbsError &&
    Object.is(simd.largest, js.largest) &&
    close(simd.errorSquares, js.errorSquares) &&
    close(simd.squares, js.squares);
  if (!same) {
    failures++;
    console.log(`patterns ${base.toString(16)}…: differ`, { js: { ...js, bits: undefined }, simd: { ...simd, bits: undefined } });
  }
}
console.log(
  `${bf16 ? 'bfloat16' : 'float16'}: all 2^32 patterns, ${failures} slabs differ (${((Date.now() - started) / 1000).toFixed(0)} s)`,
);
process.exit(failures === 0 ? 0 : 1);
