// The integer LSTM: com.microsoft.DynamicQuantizeLSTM, which ONNX Runtime runs faster than the float
// LSTM, where the weight-only form is slower (bench/RESULTS.md, §"LSTM: ONNX Runtime's integer LSTM
// against the float one and our weight-only int8"). It takes W and R as
// int8 codes transposed per direction — W [D, I, 4H], R [D, H, 4H] — with a scale and zero point per
// direction and gate row ([D, 4H]), and quantizes the input and hidden state itself at run time.
// The codes are the weight-only form's (per direction and row, symmetric, max/127).
import { ensureOpset } from '../convert/raise.js';
import type { Model } from '../ir/model.js';
import type { ModelEditor } from '../ir/editor.js';
import { DataType, type NodeProto, type TensorProto } from '../ir/onnx.js';
import { normalDomain } from '../ir/opset.js';
import { floatValues, makeTensor, transposedBytes } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';
import { INT8, perChannel, quantizeGroups, type QuantizeResult } from '../kernels/quantize.js';

const MS_DOMAIN = 'com.microsoft';

export interface LstmPair {
  node: NodeProto;
  w: Weight;
  r: Weight;
}

/** LSTM nodes of the main graph whose W and R are float32 candidates read by that node alone (layout 0). */
export function lstmPairs(model: Model, candidates: Weight[]): LstmPair[] {
  const byName = new Map(candidates.map((w) => [w.name, w]));
  const only = (w: Weight | undefined, node: NodeProto) =>
    w !== undefined &&
    w.tensor.data_type === DataType.FLOAT &&
    w.home === model.graph &&
    w.uses.length === 1 &&
    w.uses[0]!.node === node &&
    w.otherUses.length === 0 &&
    !w.isGraphOutput &&
    !w.isGraphInput &&
    w.tensor.dims.length === 3;
  const pairs: LstmPair[] = [];
  for (const node of model.graph.node) {
    if (node.op_type !== 'LSTM' || normalDomain(node.domain) !== '') continue;
    const layout = node.attribute.find((a) => a.name === 'layout');
    if (layout?.i !== undefined && Number(layout.i) !== 0) continue;
    const w = byName.get(node.input[1] ?? ''),
      r = byName.get(node.input[2] ?? '');
    if (only(w, node) && only(r, node) && w !== r) pairs.push({ node, w: w!, r: r! });
  }
  return pairs;
}

/** Codes and scales per direction and row: the weight-only form's rule (symmetric int8, max/127). */
export function quantizeRows(w: Weight): QuantizeResult {
  const [d, rows, cols] = w.tensor.dims.map(Number) as [number, number, number];
  return quantizeGroups(floatValues(w.tensor), perChannel([d * rows, cols], 0), { range: INT8, symmetric: true });
}

/** The codes [D, rows, cols] as [D, cols, rows]: each direction transposed. */
function transposedPerDirection(codes: Int8Array, d: number, rows: number, cols: number): Uint8Array {
  const bytes = new Uint8Array(codes.buffer, codes.byteOffset, codes.byteLength);
  const out = new Uint8Array(bytes.length);
  const size = rows * cols;
  for (let k = 0; k < d; k++) out.set(transposedBytes(bytes.subarray(k * size, (k + 1) * size), rows, cols, 1), k * size);
  return out;
}

/**
 * Replaces the LSTM by DynamicQuantizeLSTM reading the codes; returns the new initializers (the
 * caller removes W and R's float storage). `q` are quantizeRows' results for W and R.
 */
export function rewriteLstm(model: Model, edits: ModelEditor, pair: LstmPair, qw: QuantizeResult, qr: QuantizeResult): TensorProto[] {
  const names = edits.names;
  ensureOpset(model.proto, MS_DOMAIN, 1);
  const made: TensorProto[] = [];
  const inputs: string[] = [];
  for (const [w, q] of [
    [pair.w, qw],
    [pair.r, qr],
  ] as const) {
    const [d, rows, cols] = w.tensor.dims.map(Number) as [number, number, number];
    const codes = names.fresh(`${w.name}_quantized`),
      scale = names.fresh(`${w.name}_scale`),
      zero = names.fresh(`${w.name}_zero_point`);
    made.push(
      makeTensor(codes, DataType.INT8, [d, cols, rows], transposedPerDirection(q.codes as Int8Array, d, rows, cols)),
      makeTensor(scale, DataType.FLOAT, [d, rows], new Uint8Array(q.scales.buffer, q.scales.byteOffset, q.scales.byteLength)),
      makeTensor(zero, DataType.INT8, [d, rows], new Uint8Array(d * rows)),
    );
    inputs.push(codes, scale, zero);
  }
  const [wq, ws, wz, rq, rs, rz] = inputs as [string, string, string, string, string, string];
  const node = pair.node;
  const optional = (i: number) => node.input[i] ?? '';
  node.op_type = 'DynamicQuantizeLSTM';
  node.domain = MS_DOMAIN;
  edits
    .graph(model.graph)
    .setInputs(node, [node.input[0]!, wq, rq, optional(3), optional(4), optional(5), optional(6), optional(7), ws, wz, rs, rz]);
  node.attribute = node.attribute.filter((a) => a.name !== 'layout');
  return made;
}
