// Shrinking a stored tensor along one axis: the pruning passes' one way of changing shapes.
import type { TensorProto } from '../ir/onnx.js';
import { dtypeInfo } from '../ir/dtype.js';
import { tensorBytes, toNumber } from '../ir/tensor.js';
import { setData } from '../ir/data.js';

/** Keeps entries `keep` (each expanded to `factor` consecutive entries) along `axis` of a tensor. */
export function sliceTensor(t: TensorProto, axis: number, keep: number[], factor: number): void {
  const dims = t.dims.map(toNumber);
  const size = dtypeInfo(t.data_type)!.bits / 8;
  if (!Number.isInteger(size) || size <= 0) throw new Error(`cannot slice a ${t.data_type} tensor`);
  const bytes = tensorBytes(t);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1) * size;
  const length = dims[axis]!;
  const kept = keep.length * factor;
  const out = new Uint8Array(outer * kept * inner);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const k of keep) {
      const from = (o * length + k * factor) * inner;
      const n = factor * inner;
      out.set(bytes.subarray(from, from + n), at);
      at += n;
    }
  }
  dims[axis] = kept;
  t.dims = dims;
  setData(t, out);
}
