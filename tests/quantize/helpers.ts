import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from '../../src/io/codec.js';
import { DataType } from '../../src/ir/onnx.js';
import { makeTensor, tensorValues } from '../../src/ir/tensor.js';
import { fixture } from '../helpers.js';
import { compress } from '../../src/pipeline/compress.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { evaluate, type EvaluateOptions } from '../../src/report/evaluate.js';
import { readModel } from '../../src/io/read.js';
import type { Model } from '../../src/ir/model.js';

/** Compresses `input` with the given `--family spec` steps, then evaluates the output against it in ONNX Runtime. */
export async function compressAndEvaluate(input: string, out: string, steps: [string, string][], evalOptions: EvaluateOptions = {}) {
  const result = await compress(input, out, { steps: steps.map(([f, s]) => parseStep(f, s)) });
  const evaluation = await evaluate(input, out, { runs: 0, ...evalOptions });
  return { result, evaluation, output: readModel(out) };
}

/** The values a DequantizeLinear node in `model` produces for `name` (int8/uint8, per-tensor or per-axis), computed here. */
export function dequantized(model: Model, name: string): Float32Array {
  const graph = model.graph;
  const node = graph.node.find((n) => n.op_type === 'DequantizeLinear' && n.output[0] === name)!;
  const init = (n: string) => graph.initializer.find((t) => t.name === n)!;
  const q = init(node.input[0]!),
    s = init(node.input[1]!),
    z = node.input[2] ? init(node.input[2]) : undefined;
  const codes = tensorValues(q) as Int8Array | Uint8Array;
  const scales = tensorValues(s) as Float32Array;
  const zeros = z ? (tensorValues(z) as Int8Array | Uint8Array) : new Int8Array(scales.length);
  const dims = q.dims.map(Number);
  const axisAttr = node.attribute.find((a) => a.name === 'axis');
  const axis = scales.length === 1 ? -1 : Number(axisAttr?.i ?? 1);
  const inner = axis < 0 ? 1 : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const c = axis < 0 ? 0 : Math.floor(i / inner) % dims[axis]!;
    out[i] = Math.fround((codes[i]! - zeros[c]!) * scales[c]!);
  }
  return out;
}

/**
 * The values the integer form (DynamicQuantizeLinear + MatMulInteger) computes with for weight `name`:
 * codes stored [K, N] with a scale and zero point per column. `transposed` gives them back in the
 * layout [N, K] of a Gemm with transB, the weight's original layout there.
 */
export function dequantizedInteger(model: Model, name: string, { transposed = false } = {}): Float32Array {
  const init = (n: string) => model.graph.initializer.find((t) => t.name === n);
  const q = init(`${name}_quantized`)!,
    s = init(`${name}_scale`)!,
    z = init(`${name}_zero_point`);
  if (!model.graph.node.some((n) => n.op_type === 'MatMulInteger' && n.input[1] === q.name))
    throw new Error(`no MatMulInteger reads ${q.name}`);
  const codes = tensorValues(q) as Int8Array | Uint8Array;
  const scales = tensorValues(s) as Float32Array;
  const [K, N] = q.dims.map(Number) as [number, number];
  const zeros = z ? (tensorValues(z) as Int8Array | Uint8Array) : new Int8Array(N);
  const out = new Float32Array(codes.length);
  for (let k = 0; k < K; k++)
    for (let n = 0; n < N; n++) {
      out[transposed ? n * K + k : k * N + n] = Math.fround((codes[k * N + n]! - zeros[n]!) * scales[n]!);
    }
  return out;
}

export const out = (dir: string, name: string) => join(dir, name);

// Plain English prose, unlike the Python documentation the model was trained and is evaluated on.
const CALIBRATION_TEXT = `A compression tool is only as good as its report: users decide what ships from it, and
continuous integration scripts gate on it. Every figure in the report is measured, never estimated where it
can be measured. Model files come from the internet, so a tool that a hostile file can crash, hang or trick
into reading outside its folder is not fit for unattended use. Quantization is the pass users reach for
first; pruning removes whole channels so the model itself becomes smaller and faster; sharing stores
repeated weights once. The order of the passes is the user's choice, and each must behave correctly after
any other. Small tensors such as biases and norms stay in floating point unless asked, because they cost
little and matter much. When a gate fails, the report is still written, the output is still written, and
the exit code says which gate failed and by how much. The engineer reads the table, compares the settings
side by side, and ships the smallest model whose accuracy is still good enough for the task at hand.`;

/** A calibration set for the char LM made from text that is not in its evaluation set, written under `dir`. */
export function charlmCalibrationSet(dir: string): string {
  const vocab: string[] = JSON.parse(readFileSync(fixture('charlm', 'vocab.json'), 'utf8'));
  const index = new Map(vocab.map((c, i) => [c, i]));
  const text = CALIBRATION_TEXT.replace(/\s+/g, ' ');
  const ids = [...text].map((c) => index.get(c)).filter((i): i is number => i !== undefined);
  const rows = 16,
    seq = 64;
  const tokens = BigInt64Array.from({ length: rows * seq }, (_, i) => BigInt(ids[(Math.floor(i / seq) * 997 + (i % seq)) % ids.length]!));
  const set = join(dir, 'calibration', 'test_data_set_0');
  mkdirSync(set, { recursive: true });
  writeFileSync(
    join(set, 'input_0.pb'),
    encode('onnx.TensorProto', makeTensor('input_ids', DataType.INT64, [rows, seq], new Uint8Array(tokens.buffer))),
  );
  return set;
}

/** max|row| / 127 in float32 for each row of a [rows, cols] float array: int8's symmetric per-row scales, in closed form. */
export function rowScales(v: ArrayLike<number>, rows: number, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(v[r * cols + c]!));
    out.push(Math.fround(Math.fround(m) / 127));
  }
  return out;
}
