// The WebAssembly SIMD kernels against the scalar code they replace for rows/columns layouts (the
// scalar path still serves other layouts, so it is the reference here). The kernels compute
// x·(1/scale) in float32 where the scalar code uses float64, so a code may differ by one where the
// scaled value lies within rounding of a .5 tie: allowed at a rate of 1 in 10⁴, no more.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratch } from '../helpers.js';
import {
  INT4,
  INT4_FULL,
  INT8,
  UINT4,
  UINT8,
  clipRatios,
  packNibbles,
  perBlock,
  perChannel,
  perTensor,
  quantizeGroups,
  type Groups,
  type IntRange,
  type QuantizeResult,
} from '../../src/kernels/quantize.js';
import { simdKernels, slabRows } from '../../src/kernels/simd.js';

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    // Heavy-ish tails and some exact zeros, as pruned real weights have.
    const u = s / 2 ** 32 - 0.5;
    out[i] = i % 17 === 0 ? 0 : u * u * u * 3 + u * 0.05;
  }
  return out;
}

/** The same groups without a layout: quantizeGroups then takes the scalar path. */
const scalar = (g: Groups): Groups => ({ ...g, layout: undefined });

function compare(a: QuantizeResult, b: QuantizeResult) {
  expect(a.codes.length).toBe(b.codes.length);
  let differ = 0;
  for (let i = 0; i < a.codes.length; i++) {
    const d = Math.abs(a.codes[i]! - b.codes[i]!);
    expect(d).toBeLessThanOrEqual(1);
    if (d) differ++;
  }
  expect(differ).toBeLessThanOrEqual(Math.max(1, a.codes.length / 1e4));
  expect(a.scales.length).toBe(b.scales.length);
  for (let g = 0; g < a.scales.length; g++) {
    expect(Math.abs(a.scales[g]! - b.scales[g]!)).toBeLessThanOrEqual(Math.abs(b.scales[g]!) * 1e-6);
    expect(a.zeroPoints[g]).toBe(b.zeroPoints[g]);
  }
  expect(a.error.relRmsError).toBeCloseTo(b.error.relRmsError, 5);
  expect(a.error.maxAbsError).toBeCloseTo(b.error.maxAbsError, 5);
  expect(a.error.sparsity).toBeCloseTo(b.error.sparsity, 4);
  if (b.errorBeforeSearch) expect(a.errorBeforeSearch!.relRmsError).toBeCloseTo(b.errorBeforeSearch.relRmsError, 5);
}

describe('SIMD quantization kernels', () => {
  const cases: [string, number[], (dims: number[]) => Groups, IntRange, boolean, number[] | undefined][] = [
    ['per tensor, int8', [37, 29], (d) => perTensor(d[0]! * d[1]!), INT8, true, undefined],
    ['per tensor, uint8 asymmetric', [64, 48], (d) => perTensor(d[0]! * d[1]!), UINT8, false, undefined],
    ['rows (Conv output channels, odd length)', [24, 3, 3, 3], (d) => perChannel(d, 0), INT8, true, undefined],
    ['columns (MatMul per channel)', [96, 40], (d) => perChannel(d, 1), INT8, true, undefined],
    ['columns, asymmetric with search', [96, 40], (d) => perChannel(d, 1), UINT8, false, clipRatios(20, 0.5)],
    ['columns, a ragged edge (C mod 4 = 3)', [64, 43], (d) => perChannel(d, 1), INT8, true, undefined],
    ['columns, a ragged edge with search, asymmetric', [64, 41], (d) => perChannel(d, 1), UINT8, false, clipRatios(20, 0.5)],
    ['4-bit blocks along K, a ragged edge (C mod 4 = 2), search', [96, 50], (d) => perBlock(d, 0, 32), INT4, true, clipRatios(7, 0.65)],
    ['rows with search', [40, 96], (d) => perChannel(d, 0), INT8, true, clipRatios(20, 0.5)],
    ['4-bit blocks along K (columns), search', [100, 48], (d) => perBlock(d, 0, 32), INT4, true, clipRatios(7, 0.65)],
    ['4-bit blocks along K, full range, no search', [96, 48], (d) => perBlock(d, 0, 32), INT4_FULL, true, undefined],
    ['4-bit blocks along K, asymmetric', [128, 16], (d) => perBlock(d, 0, 16), UINT4, false, clipRatios(7, 0.65)],
    ['4-bit blocks in rows (Gather), ragged last block', [12, 70], (d) => perBlock(d, 1, 32), INT4, true, clipRatios(7, 0.65)],
    ['4-bit blocks in rows, asymmetric, no search', [12, 64], (d) => perBlock(d, 1, 16), UINT4, false, undefined],
  ];
  it.each(cases)('%s: as the scalar code', (_name, dims, make, range, symmetric, ratios) => {
    const values = random(
      dims.reduce((a, b) => a * b, 1),
      dims.length * 7 + dims[0]!,
    );
    const groups = make(dims);
    expect(groups.layout).toBeDefined();
    const options = { range, symmetric, clipRatios: ratios };
    compare(quantizeGroups(values, groups, options), quantizeGroups(values, scalar(groups), options));
  });

  it('keep exact zeros exactly zero, and the codes in range', () => {
    const values = random(64 * 32, 5);
    for (const [range, symmetric] of [
      [INT8, true],
      [UINT8, false],
      [INT4, true],
      [UINT4, false],
    ] as const) {
      const r = quantizeGroups(values, perBlock([64, 32], 0, 16), { range, symmetric });
      for (let i = 0; i < values.length; i++) {
        expect(r.codes[i]).toBeGreaterThanOrEqual(range.min);
        expect(r.codes[i]).toBeLessThanOrEqual(range.max);
        if (values[i] === 0) expect(r.codes[i]).toBe(r.zeroPoints[Math.floor(i / 32 / 16) * 32 + (i % 32)]);
      }
    }
  });

  it('read the values from a file range straight into their memory', () => {
    const values = random(48 * 32, 9);
    // Seven bytes before the values: the kernels must not need the file's offsets aligned.
    const file = join(scratch(), 'values.bin');
    writeFileSync(file, Buffer.concat([Buffer.alloc(7, 0xab), Buffer.from(values.buffer)]));
    const source = { file, offset: 7, length: values.length };
    const options = { range: INT4, symmetric: true, clipRatios: clipRatios(7, 0.65) };
    expect(quantizeGroups(source, perBlock([48, 32], 0, 32), options)).toEqual(quantizeGroups(values, perBlock([48, 32], 0, 32), options));
  });

  it.each([
    ['4-bit MatMulNBits, search, ragged last block and edge', [1000, 250], 0, 32, INT4, true, clipRatios(7, 0.65), 'nbits'],
    ['4-bit block 128 along K, asymmetric, two to a byte', [2048, 300], 0, 128, UINT4, false, undefined, 'pairs'],
    ['4-bit rows (Gather), search, ragged last block', [3001, 70], 1, 32, INT4, true, clipRatios(7, 0.65), 'pairs'],
    ['4-bit rows, groups four at a time and a tail of three', [4001, 96], 1, 32, INT4, true, clipRatios(7, 0.65), 'codes'],
    ['int8 per channel (one call: a group spans every row)', [3000, 40], 0, 3000, INT8, true, undefined, 'codes'],
  ] as const)(
    'stream a large tensor from its file a slab of rows at a time as if whole (%s)',
    (_name, dims, axis, block, range, symmetric, ratios, output) => {
      const values = random(dims[0] * dims[1], dims[0] + dims[1]);
      const file = join(scratch(), 'large.bin');
      writeFileSync(file, Buffer.concat([Buffer.alloc(5, 0xcd), Buffer.from(values.buffer)]));
      const groups = perBlock([...dims], axis, block);
      expect(slabRows(groups.layout!) === undefined).toBe(block === 3000);
      const options = {
        range,
        symmetric,
        clipRatios: ratios ? [...ratios] : undefined,
        nbits: output === 'nbits' ? { K: dims[0], N: dims[1], block, shift: 8 } : undefined,
        pairs: output === 'pairs',
      };
      const streamed = quantizeGroups({ file, offset: 5, length: values.length }, groups, options);
      const whole = quantizeGroups(values, groups, options);
      expect(streamed.codes).toEqual(whole.codes);
      expect(streamed.scales).toEqual(whole.scales);
      expect(streamed.zeroPoints).toEqual(whole.zeroPoints);
      expect(streamed.packed).toEqual(whole.packed);
      // The error sums are added slab by slab: the same up to float64 rounding.
      for (const key of ['relRmsError', 'maxAbsError', 'sparsity'] as const) expect(streamed.error[key]).toBeCloseTo(whole.error[key], 12);
    },
  );

  it('pack for MatMulNBits where the codes were made exactly as from the codes afterwards', () => {
    const [K, N, block] = [100, 50, 32];
    const values = random(K * N, 11);
    for (const [range, symmetric, shift] of [
      [INT4, true, 8],
      [UINT4, false, 0],
    ] as const) {
      const options = { range, symmetric, clipRatios: clipRatios(7, 0.65) };
      const plain = quantizeGroups(values, perBlock([K, N], 0, block), options);
      const packed = quantizeGroups(values, perBlock([K, N], 0, block), { ...options, nbits: { K, N, block, shift } });
      expect(packed.packed!.data).toEqual(simdKernels().packMatMulNBits(plain.codes, plain.zeroPoints, K, N, block, shift));
      const kBlocks = Math.ceil(K / block);
      expect(packed.packed!.scales).toEqual(
        Float32Array.from({ length: N * kBlocks }, (_, i) => plain.scales[(i % kBlocks) * N + Math.floor(i / kBlocks)]!),
      );
      expect(packed.error).toEqual(plain.error);
      // Two to a byte (DequantizeLinear INT4/UINT4), rows and columns alike.
      for (const groups of [perBlock([K, N], 0, block), perBlock([N, K], 1, 16)]) {
        const codes = quantizeGroups(values, groups, options);
        const pairs = quantizeGroups(values, groups, { ...options, pairs: true });
        expect(pairs.codes.length).toBe(0);
        expect(pairs.packed!.data).toEqual(packNibbles(Array.from(codes.codes)));
        expect(pairs.packed!.scales).toEqual(codes.scales);
      }
    }
  });

  it('pack nibbles and MatMulNBits blobs exactly as the scalar packing', () => {
    const codes = Int8Array.from(random(9001, 3), (x) => Math.max(-8, Math.min(7, Math.round(x * 100))));
    const scalarPack = (c: ArrayLike<number>) => {
      const out = new Uint8Array(Math.ceil(c.length / 2));
      for (let i = 0; i < c.length; i++) out[i >> 1]! |= (c[i]! & 15) << ((i & 1) * 4);
      return out;
    };
    expect(packNibbles(codes)).toEqual(scalarPack(codes));
    // [K, N] codes, K not a multiple of the block: the padding holds the zero point.
    const K = 70,
      N = 20,
      block = 32,
      kBlocks = 3;
    const kn = codes.subarray(0, K * N);
    const zeros = Float32Array.from({ length: kBlocks * N }, (_, g) => g % 16);
    for (const shift of [8, 0]) {
      const got = simdKernels().packMatMulNBits(kn, zeros, K, N, block, shift);
      const want = new Uint8Array((N * kBlocks * block) / 2);
      for (let n = 0; n < N; n++)
        for (let b = 0; b < kBlocks; b++)
          for (let j = 0; j < block; j++) {
            const k = b * block + j;
            const c = k < K ? kn[k * N + n]! + shift : zeros[b * N + n]! + shift;
            want[((n * kBlocks + b) * block) / 2 + (j >> 1)]! |= (c & 15) << ((j & 1) * 4);
          }
      expect(got).toEqual(want);
    }
  });
});

describe('magnitude pruning kernels', () => {
  it.each([[0], [1], [37], [500], [999], [1000]])('zero the %i smallest magnitudes exactly as the scalar code', async (count) => {
    const { pruneSmallest, pruneSmallestScalar } = await import('../../src/kernels/smallest.js');
    // Repeated magnitudes (and ±0) so that ties at the threshold are broken by position.
    const values = Float32Array.from(random(1000, 13), (x, i) =>
      i % 7 === 0 ? -Math.fround(Math.round(x * 40) / 40) : Math.fround(Math.round(x * 40) / 40),
    );
    const { values: a, zeros, error } = pruneSmallest(values, count);
    const b = pruneSmallestScalar(values, count);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(zeros).toBe(b.filter((x) => x === 0).length);
    expect(zeros).toBeGreaterThanOrEqual(count);
    // The error figures, measured in the kernel before it zeroes, as the report's own function gives them.
    const { weightError } = await import('../../src/kernels/weight-error.js');
    const want = weightError(values, b);
    expect(error.maxAbsError).toBe(want.maxAbsError);
    expect(error.relRmsError).toBeCloseTo(want.relRmsError, 12);
  });

  it('select the k-th smallest magnitude across several arrays', async () => {
    const { kthSmallest } = await import('../../src/kernels/smallest.js');
    const parts = [random(300, 1), random(701, 2), random(5, 3)];
    const all = Float32Array.from(parts.flatMap((p) => Array.from(p, Math.abs)));
    for (const k of [0, 1, 500, 1005]) {
      expect(simdKernels().kthMagnitude(parts, k)).toBe(kthSmallest(Float32Array.from(all), k));
    }
  });
});

describe('sorting kernel', () => {
  it('sorts float32 values exactly as TypedArray sort does (−0 before +0, negatives, repeats)', () => {
    const values = Float32Array.from(random(5001, 21), (x, i) => (i % 11 === 0 ? -0 : i % 13 === 0 ? 0 : i % 17 === 0 ? -1e-30 : x * 1e3));
    const mine = simdKernels().sorted(values);
    const theirs = values.slice().sort();
    expect(mine.length).toBe(theirs.length);
    for (let i = 0; i < mine.length; i++) expect(Object.is(mine[i], theirs[i]), `at ${i}`).toBe(true);
  });
});

describe('nearest-centroid kernel', () => {
  it('counts the bounds at or below each value as a binary search does, ties included', () => {
    for (const k of [2, 3, 16, 17, 256]) {
      const centroids = Float32Array.from(random(k, k), (x) => x * 10).sort();
      const bounds = Float64Array.from({ length: k - 1 }, (_, j) => (centroids[j]! + centroids[j + 1]!) / 2);
      // Values on the bounds themselves (as float32) and around them, and beyond both ends.
      const values = Float32Array.from(
        [...random(2000, 7 * k)]
          .map((x) => x * 12)
          .concat(
            Array.from(bounds, (b) => Math.fround(b)),
            [-1e9, 1e9],
          ),
      );
      const want = Uint8Array.from(values, (x) => {
        let lo = 0,
          hi = bounds.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (bounds[mid]! <= x) lo = mid + 1;
          else hi = mid;
        }
        return lo;
      });
      expect(simdKernels().countBoundsBelow(values, bounds)).toEqual(want);
    }
  });
});
