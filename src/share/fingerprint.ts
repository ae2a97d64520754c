// Recognising equal tensors quickly: values can only be equal when dtype and shape match, a digest
// of the bytes narrows that to likely copies, and a byte comparison confirms each one.
import { createHash } from 'node:crypto';
import type { TensorProto } from '../io/types.js';
import { dtypeInfo } from '../ir/dtype.js';
import { toNumber } from '../ir/tensor.js';

/** What two tensors must share before their bytes are worth comparing. */
export function layoutKey(t: TensorProto): string {
  return `${t.data_type ?? 0}|${t.dims.map(toNumber).join('x')}`;
}

/** The layout key of the tensor's transpose (a 2-D tensor only). */
export function transposedLayoutKey(t: TensorProto): string {
  const [r, c] = t.dims.map(toNumber);
  return `${t.data_type ?? 0}|${c}x${r}`;
}

export function digest(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex');
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

/** Bytes per element when elements are whole bytes; undefined for packed sub-byte types and strings. */
export function elementBytes(t: TensorProto): number | undefined {
  const bits = dtypeInfo(t.data_type)?.bits ?? 0;
  return bits >= 8 && bits % 8 === 0 ? bits / 8 : undefined;
}

/** The row-major bytes of the transpose of a [rows, cols] matrix. */
export function transposedBytes(bytes: Uint8Array, rows: number, cols: number, size: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  if (size === 4) {
    // Whole 32-bit elements move at once; the copy aligns them whatever the source's offset.
    const src = new Uint32Array(Uint8Array.from(bytes).buffer), dst = new Uint32Array(out.buffer);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c]!;
    return out;
  }
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const from = (r * cols + c) * size, to = (c * rows + r) * size;
      for (let b = 0; b < size; b++) out[to + b] = bytes[from + b]!;
    }
  }
  return out;
}
