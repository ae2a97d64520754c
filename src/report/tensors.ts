// Per-tensor accounting: each weight of the reference model, what it became in the compressed
// model, and the error that introduced, measured by comparing the values.
import type { Model } from '../ir/model.js';
import { dtypeInfo, dtypeName } from '../ir/dtype.js';
import { floatValues, tensorByteLength, toNumber } from '../ir/tensor.js';
import { forEachTensor } from '../ir/walk.js';
import type { TensorProto } from '../ir/onnx.js';
import { sparsity, weightError } from '../kernels/weight-error.js';

export interface TensorRow {
  name: string;
  shape: number[];
  dtypeBefore: string;
  /** The dtype it is stored as now; undefined when it no longer exists under this name. */
  dtypeAfter?: string;
  bytesBefore: number;
  bytesAfter: number;
  /** Fraction of zeros in the compressed values (undefined where they cannot be read back as floats). */
  sparsity?: number;
  /** Largest absolute difference between the original and the compressed values. */
  maxAbsError?: number;
  /** RMS of the error divided by the RMS of the original values. */
  relRmsError?: number;
  /** What happened to it, when not stored under the same name and shape. */
  note?: string;
}

function weights(model: Model): Map<string, TensorProto> {
  const out = new Map<string, TensorProto>();
  forEachTensor(model.proto, ({ tensor, place, node }) => {
    // A Constant's value goes by the node's output, the name its readers and the passes use; the
    // TensorProto's own name (an exporter's "decoder.rnn.weight_ih") is not one the graph knows.
    const name = place === 'constant' ? node?.output[0] || tensor.name : tensor.name;
    if (name && !out.has(name)) out.set(name, tensor);
  });
  return out;
}

/**
 * Rows for the weights of a model written unchanged: the same bytes before and after, so no error.
 * (A pass adds its own rows, measured from the values it changed.)
 */
export function unchangedTensorRows(model: Model): TensorRow[] {
  const rows: TensorRow[] = [];
  for (const [name, t] of weights(model)) {
    if (!dtypeInfo(t.data_type)?.isFloat) continue;
    const bytes = tensorByteLength(t);
    const dtype = dtypeName(t.data_type);
    rows.push({
      name,
      shape: t.dims.map(toNumber),
      dtypeBefore: dtype,
      dtypeAfter: dtype,
      bytesBefore: bytes,
      bytesAfter: bytes,
      maxAbsError: 0,
      relRmsError: 0,
    });
  }
  return rows;
}

/**
 * Compares every floating-point weight of `reference` with the tensor of the same name in
 * `candidate`. Passes that rename or re-encode tensors add their own rows over these.
 */
export function compareTensors(reference: Model, candidate: Model, minElements = 1): TensorRow[] {
  const after = weights(candidate);
  const rows: TensorRow[] = [];
  for (const [name, before] of weights(reference)) {
    if (!dtypeInfo(before.data_type)?.isFloat) continue;
    const shape = before.dims.map(toNumber);
    if (shape.reduce((a, b) => a * b, 1) < minElements) continue;
    const row: TensorRow = { name, shape, dtypeBefore: dtypeName(before.data_type), bytesBefore: tensorByteLength(before), bytesAfter: 0 };
    const now = after.get(name);
    if (!now) {
      row.note = 'not in the compressed model under this name';
      rows.push(row);
      continue;
    }
    row.dtypeAfter = dtypeName(now.data_type);
    row.bytesAfter = tensorByteLength(now);
    const sameShape = now.dims.map(toNumber).join() === shape.join();
    if (sameShape && dtypeInfo(now.data_type)?.isFloat) {
      const original = floatValues(before);
      const values = floatValues(now);
      Object.assign(row, { sparsity: sparsity(values), ...weightError(original, values) });
    } else row.note = sameShape ? `stored as ${row.dtypeAfter}` : `reshaped to [${now.dims.map(toNumber).join(', ')}]`;
    rows.push(row);
  }
  return rows;
}
