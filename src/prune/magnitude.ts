// Unstructured magnitude pruning: the smallest-magnitude weights become exactly zero, per tensor
// (each loses the same fraction) or with one threshold across all chosen tensors (global), where a
// per-layer cap keeps any layer from being emptied.
import type { Model } from '../ir/model.js';
import { floatValues, numElements, tensorByteLength } from '../ir/tensor.js';
import { simdFits, simdKernels } from '../kernels/simd.js';
import type { Weight } from '../ir/weights.js';
import { selectionOptions, type OptionValues } from '../pipeline/options.js';
import { emptySummary, type Pass, type PassContext, type PassSummary } from '../pipeline/pass.js';
import { weightError } from '../report/metrics.js';
import { chooseWeights } from '../pipeline/select.js';
import { markPruned, setValues, STORAGE_OPTION } from './store.js';

/** The k-th smallest value (0-based) of `a`, which is reordered (Hoare's selection, O(n) expected). */
export function kthSmallest(a: Float32Array, k: number): number {
  let lo = 0, hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) { const t = a[i]!; a[i] = a[j]!; a[j] = t; i++; j--; }
    }
    if (k <= j) hi = j; else if (k >= i) lo = i; else return a[k]!;
  }
  return a[k]!;
}

/**
 * Zeroes exactly `count` of the smallest-magnitude values (ties broken by position, so the result
 * is deterministic). Returns the pruned copy.
 */
export function pruneSmallest(values: Float32Array, count: number): { values: Float32Array; zeros: number } {
  // The WebAssembly kernels select by radix (2 s → 0.2 s on BERT-base's MatMul weights) and count
  // the zeros on the way; this scalar code stays for tensors too large for their memory, and as the
  // reference in the tests.
  if (simdFits(values.length)) return simdKernels().pruneSmallest(values, count);
  const pruned = pruneSmallestScalar(values, count);
  return { values: pruned, zeros: zeros(pruned) };
}

/** pruneSmallest in plain JavaScript (quickselect). */
export function pruneSmallestScalar(values: Float32Array, count: number): Float32Array {
  const out = values.slice();
  if (count <= 0) return out;
  if (count >= values.length) return out.fill(0);
  const abs = magnitudes(values);
  const threshold = kthSmallest(abs, count - 1);
  let below = 0;
  for (let i = 0; i < values.length; i++) if (Math.abs(values[i]!) < threshold) below++;
  let atThreshold = count - below;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]!);
    if (a < threshold) out[i] = 0;
    else if (a === threshold && atThreshold > 0) { out[i] = 0; atThreshold--; }
  }
  return out;
}

function magnitudes(values: Float32Array, into = new Float32Array(values.length), at = 0): Float32Array {
  for (let i = 0; i < values.length; i++) into[at + i] = Math.abs(values[i]!);
  return into;
}

/** The k-th smallest magnitude (0-based) of all the arrays together. */
function kthMagnitude(arrays: Float32Array[], total: number, k: number): number {
  if (simdFits(total)) return simdKernels().kthMagnitude(arrays, k);
  const all = new Float32Array(total);
  let at = 0;
  for (const a of arrays) {
    magnitudes(a, all, at);
    at += a.length;
  }
  return kthSmallest(all, k);
}

function zeros(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === 0) n++;
  return n;
}

export const magnitudePass: Pass = {
  family: 'prune',
  method: 'magnitude',
  description: 'unstructured magnitude pruning: the smallest weights become exactly zero (per tensor, or one global threshold)',
  options: {
    sparsity: { type: 'number', min: 0, max: 1, default: 0.5, description: 'fraction of weights to zero (of each tensor, or of all chosen weights with scope=global)' },
    scope: { type: 'enum', choices: ['layer', 'global'], default: 'layer', description: 'layer: each tensor loses the same fraction; global: one magnitude threshold across all chosen tensors' },
    'max-layer-sparsity': { type: 'number', min: 0, max: 1, default: 0.98, description: 'with scope=global, no tensor is pruned beyond this fraction' },
    storage: STORAGE_OPTION,
    ops: { type: 'string', default: 'MatMul,Gemm,Conv,ConvTranspose', description: 'op types whose weights are pruned' },
    ...selectionOptions(256),
  },
  run(model: Model, options: OptionValues, _context: PassContext): PassSummary {
    const summary = emptySummary(this, options);
    const { weights, skipped } = chooseWeights(model, options);
    summary.skipped.push(...skipped);
    const sparsity = options.sparsity as number;
    // Per tensor, each is read when its turn comes; a global threshold needs them all at once.
    const originals = new Map<Weight, Float32Array>(options.scope === 'global' ? weights.map((w) => [w, floatValues(model, w.tensor)]) : []);
    const targets = new Map<Weight, number>();
    if (options.scope === 'global') {
      const cap = options['max-layer-sparsity'] as number;
      const total = weights.reduce((n, w) => n + originals.get(w)!.length, 0);
      const count = Math.floor(sparsity * total);
      const threshold = count > 0 ? kthMagnitude([...originals.values()], total, count - 1) : -1;
      let assigned = 0;
      for (const w of weights) {
        const values = originals.get(w)!;
        let below = 0;
        for (let i = 0; i < values.length; i++) if (Math.abs(values[i]!) <= threshold) below++;
        const n = Math.min(below, Math.floor(cap * values.length));
        targets.set(w, n);
        assigned += n;
      }
      summary.notes.push(`global threshold |w| ≤ ${threshold.toPrecision(4)}: ${assigned} of ${total} weights (${(100 * assigned / Math.max(1, total)).toFixed(2)} %) pruned, target ${(100 * sparsity).toFixed(2)} %`);
    } else {
      for (const w of weights) targets.set(w, Math.floor(sparsity * numElements(w.tensor.dims)));
    }
    for (const w of weights) {
      const before = originals.get(w) ?? floatValues(model, w.tensor);
      originals.delete(w);
      const { values: after, zeros: zeroCount } = pruneSmallest(before, targets.get(w)!);
      const bytes = tensorByteLength(model, w.tensor);
      setValues(model, w, after);
      if (options.storage === 'auto') markPruned(model, w.name);
      summary.bytesBefore += bytes;
      summary.bytesAfter += bytes;
      summary.tensors.push({
        name: w.name, shape: w.tensor.dims.map(Number), dtypeBefore: 'float32', dtypeAfter: 'float32', bytesBefore: bytes, bytesAfter: bytes,
        sparsity: zeroCount / after.length, ...weightError(before, after),
        form: `magnitude-pruned (${options.scope})`,
      });
    }
    return summary;
  },
};
