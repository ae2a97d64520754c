// The half-precision op table is measured, not assumed: every op it lists loads and runs in ONNX
// Runtime's CPU provider as a one-node float16 model (opset 21), every op it marks bfloat16 loads as a
// bfloat16 model, and ops it does not mark (Add, MatMul, Conv) do not load in bfloat16 — so the
// check can tell the difference. A new ONNX Runtime that changes this fails here.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataType, type AttributeProto, type TensorProto } from '../../src/ir/onnx.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { HALF_OPS } from '../../src/quantize/half-ops.js';
import { float, graph, int, ints, model, node, save, str, tensor, vi } from '../convert/helpers.js';
import { scratch } from '../helpers.js';

const dir = scratch();
const INT64 = DataType.INT64;

/** An input: a float of this shape (fed), or a constant of another type (an initializer). */
type Input = number[] | { int64: number[] } | { float32: number[] } | { bool: number[] } | { uint8: number[]; dims: number[] } | 'none';
interface Case {
  inputs: Input[];
  attributes?: AttributeProto[];
  outputs?: number;
  domain?: string;
}

const v = (dims: number[]) => dims;
const CASES: Record<string, Case> = {
  Abs: { inputs: [v([2, 3])] },
  Add: { inputs: [v([2, 3]), v([2, 3])] },
  AveragePool: { inputs: [v([1, 2, 4, 4])], attributes: [ints('kernel_shape', [2, 2])] },
  BatchNormalization: { inputs: [v([1, 2, 4, 4]), v([2]), v([2]), v([2]), v([2])] },
  Ceil: { inputs: [v([2, 3])] },
  Clip: { inputs: [v([2, 3]), v([]), v([])] },
  Concat: { inputs: [v([2, 3]), v([2, 3])], attributes: [int('axis', 0)] },
  Conv: { inputs: [v([1, 2, 5, 5]), v([3, 2, 3, 3]), v([3])] },
  ConvTranspose: { inputs: [v([1, 2, 5, 5]), v([2, 3, 3, 3]), v([3])] },
  Cos: { inputs: [v([2, 3])] },
  DepthToSpace: { inputs: [v([1, 4, 2, 2])], attributes: [int('blocksize', 2)] },
  Div: { inputs: [v([2, 3]), v([2, 3])] },
  Dropout: { inputs: [v([2, 3])] },
  Einsum: { inputs: [v([2, 3]), v([3, 4])], attributes: [str('equation', 'ij,jk->ik')] },
  Elu: { inputs: [v([2, 3])] },
  Erf: { inputs: [v([2, 3])] },
  Exp: { inputs: [v([2, 3])] },
  Expand: { inputs: [v([1, 3]), { int64: [2, 3] }] },
  Flatten: { inputs: [v([2, 3])] },
  Floor: { inputs: [v([2, 3])] },
  Gather: { inputs: [v([4, 3]), { int64: [0, 2] }] },
  Gelu: { inputs: [v([2, 3])] },
  Gemm: { inputs: [v([2, 3]), v([3, 4]), v([4])] },
  GlobalAveragePool: { inputs: [v([1, 2, 4, 4])] },
  GlobalMaxPool: { inputs: [v([1, 2, 4, 4])] },
  GroupNormalization: { inputs: [v([1, 4, 2, 2]), v([4]), v([4])], attributes: [int('num_groups', 2)] },
  HardSigmoid: { inputs: [v([2, 3])] },
  HardSwish: { inputs: [v([2, 3])] },
  Identity: { inputs: [v([2, 3])] },
  InstanceNormalization: { inputs: [v([1, 2, 4, 4]), v([2]), v([2])] },
  LayerNormalization: { inputs: [v([2, 3]), v([3]), v([3])] },
  LeakyRelu: { inputs: [v([2, 3])], attributes: [float('alpha', 0.1)] },
  Log: { inputs: [v([2, 3])] },
  LogSoftmax: { inputs: [v([2, 3])] },
  LpNormalization: { inputs: [v([2, 3])] },
  MatMul: { inputs: [v([2, 3]), v([3, 4])] },
  Max: { inputs: [v([2, 3]), v([2, 3])] },
  MaxPool: { inputs: [v([1, 2, 4, 4])], attributes: [ints('kernel_shape', [2, 2])] },
  Mean: { inputs: [v([2, 3]), v([2, 3])] },
  Min: { inputs: [v([2, 3]), v([2, 3])] },
  Mish: { inputs: [v([2, 3])] },
  Mul: { inputs: [v([2, 3]), v([2, 3])] },
  Neg: { inputs: [v([2, 3])] },
  PRelu: { inputs: [v([2, 3]), v([2, 3])] },
  Pad: { inputs: [v([2, 3]), { int64: [0, 1, 0, 1] }, v([])] },
  Pow: { inputs: [v([2, 3]), v([2, 3])] },
  Reciprocal: { inputs: [v([2, 3])] },
  ReduceL2: { inputs: [v([2, 3])] },
  ReduceMax: { inputs: [v([2, 3])] },
  ReduceMean: { inputs: [v([2, 3])] },
  ReduceMin: { inputs: [v([2, 3])] },
  ReduceSum: { inputs: [v([2, 3])] },
  Relu: { inputs: [v([2, 3])] },
  Reshape: { inputs: [v([2, 3]), { int64: [3, 2] }] },
  Resize: { inputs: [v([1, 1, 2, 2]), 'none', { float32: [1, 1, 2, 2] }] },
  Round: { inputs: [v([2, 3])] },
  Selu: { inputs: [v([2, 3])] },
  Sigmoid: { inputs: [v([2, 3])] },
  Sign: { inputs: [v([2, 3])] },
  Sin: { inputs: [v([2, 3])] },
  Slice: { inputs: [v([2, 4]), { int64: [0] }, { int64: [2] }] },
  Softmax: { inputs: [v([2, 3])] },
  Softplus: { inputs: [v([2, 3])] },
  SpaceToDepth: { inputs: [v([1, 1, 4, 4])], attributes: [int('blocksize', 2)] },
  Split: { inputs: [v([2, 4]), { int64: [2, 2] }], attributes: [int('axis', 1)], outputs: 2 },
  Sqrt: { inputs: [v([2, 3])] },
  Squeeze: { inputs: [v([1, 3]), { int64: [0] }] },
  Sub: { inputs: [v([2, 3]), v([2, 3])] },
  Sum: { inputs: [v([2, 3]), v([2, 3])] },
  Tanh: { inputs: [v([2, 3])] },
  Tile: { inputs: [v([2, 3]), { int64: [2, 1] }] },
  Transpose: { inputs: [v([2, 3])] },
  Trilu: { inputs: [v([3, 3])] },
  Unsqueeze: { inputs: [v([2, 3]), { int64: [0] }] },
  Where: { inputs: [{ bool: [1, 0, 1, 0, 1, 0] }, v([2, 3]), v([2, 3])] },
  DequantizeLinear: { inputs: [{ uint8: [1, 2, 3, 4, 5, 6], dims: [2, 3] }, v([])] },
  'com.microsoft.MatMulNBits': {
    inputs: [v([1, 32]), { uint8: new Array(4 * 16).fill(0x98), dims: [4, 1, 16] }, v([4])],
    domain: 'com.microsoft',
    attributes: [int('K', 32), int('N', 4), int('bits', 4), int('block_size', 32)],
  },
  'com.microsoft.GatherBlockQuantized': {
    inputs: [{ uint8: new Array(4 * 16).fill(0x98), dims: [4, 16] }, { int64: [0, 2] }, v([4, 1])],
    domain: 'com.microsoft',
    attributes: [int('gather_axis', 0), int('quantize_axis', 1), int('block_size', 32), int('bits', 4)],
  },
};

/**
 * A model of one `op` node computing in `dtype`. bfloat16: float32 inputs and outputs with Casts around
 * the node (ONNX Runtime's JavaScript API has no bfloat16 tensors); the node still needs a bfloat16 kernel.
 */
function oneNode(op: string, c: Case, dtype: number): string {
  const inputs = [],
    initializers: TensorProto[] = [],
    names: string[] = [],
    casts = [];
  const wrapped = dtype === DataType.BFLOAT16;
  for (const [i, input] of c.inputs.entries()) {
    const name = `x${i}`;
    if (input === 'none') names.push('');
    else if (Array.isArray(input)) {
      inputs.push(vi(name, input, wrapped ? DataType.FLOAT : dtype));
      if (wrapped) casts.push(node('Cast', [name], [`${name}_bf16`], [int('to', dtype)]));
      names.push(wrapped ? `${name}_bf16` : name);
    } else if ('int64' in input) {
      initializers.push(tensor(name, [input.int64.length], input.int64, INT64));
      names.push(name);
    } else if ('float32' in input) {
      // Resize's scales stay float32 whatever the data's type.
      initializers.push(tensor(name, [input.float32.length], input.float32));
      names.push(name);
    } else if ('uint8' in input) {
      initializers.push({ ...tensor(name, input.dims, [], DataType.UINT8), raw_data: Uint8Array.from(input.uint8) });
      names.push(name);
    } else {
      initializers.push({ ...tensor(name, [2, 3], [], DataType.BOOL), raw_data: Uint8Array.from(input.bool) });
      names.push(name);
    }
  }
  const outputs = Array.from({ length: c.outputs ?? 1 }, (_, i) => `y${i}`);
  const made = wrapped ? outputs.map((o) => `${o}_bf16`) : outputs;
  const back = wrapped ? outputs.map((o, i) => node('Cast', [made[i]!], [o], [int('to', DataType.FLOAT)])) : [];
  const opType = c.domain ? op.slice(c.domain.length + 1) : op;
  const nodes = [...casts, node(opType, names, made, c.attributes ?? [], c.domain), ...back];
  const g = graph(
    nodes,
    inputs,
    outputs.map((o) => vi(o, undefined, wrapped ? DataType.FLOAT : dtype)),
    initializers,
  );
  const extra = c.domain
    ? {
        opset_import: [
          { domain: '', version: 21 },
          { domain: c.domain, version: 1 },
        ],
      }
    : {};
  return save(join(dir, `${op}-${dtype}.onnx`), model(g, 21, extra));
}

async function runsInFloat16(op: string, c: Case): Promise<void> {
  const path = oneNode(op, c, DataType.FLOAT16);
  const session = await createSession(path);
  const feeds = c.inputs.flatMap((input, i) =>
    Array.isArray(input)
      ? [{ name: `x${i}`, dtype: DataType.FLOAT16, dims: input, data: new Uint16Array(input.reduce((a, b) => a * b, 1)).fill(0x3c00) }]
      : [],
  );
  const outputs = await run(session, feeds);
  expect(outputs[0]!.dtype).toBe(DataType.FLOAT16);
}

describe('the half-precision op table, measured in ONNX Runtime', () => {
  it('every op it lists has a one-node case here', () => {
    expect(Object.keys(HALF_OPS).filter((op) => !CASES[op])).toEqual([]);
  });

  it.each(Object.keys(HALF_OPS))('%s loads and runs in float16', async (op) => {
    await runsInFloat16(op, CASES[op]!);
  });

  const bf16 = Object.keys(HALF_OPS).filter((op) => HALF_OPS[op]!.bfloat16);
  it.each(bf16)('%s loads in bfloat16', async (op) => {
    await createSession(oneNode(op, CASES[op]!, DataType.BFLOAT16));
  });

  it.each(['Add', 'MatMul', 'Conv', 'Relu'])('%s, not marked bfloat16, does not load in bfloat16 (the check discriminates)', async (op) => {
    expect(HALF_OPS[op]!.bfloat16).toBe(false);
    await expect(createSession(oneNode(op, CASES[op]!, DataType.BFLOAT16))).rejects.toThrow();
  });
});
