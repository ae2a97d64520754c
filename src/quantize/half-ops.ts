// The default-domain ops a half-precision pass may move to float16 or bfloat16: those ONNX Runtime's
// CPU provider loads and runs in that type (measured: tests/quantize/half-ops.test.ts builds a
// one-node model of each at opset 21 and runs it), with which inputs and outputs take the float type
// (the others, such as shapes, indices and Resize's scales, keep theirs).

export interface HalfOp {
  /** Inputs of the op's float type: every input, or these positions. */
  inputs: 'all' | readonly number[];
  /** Outputs of that type; a node whose other outputs are used stays as it is. */
  outputs: 'all' | readonly number[];
  /** Whether ONNX Runtime's CPU provider also runs it in bfloat16. */
  bfloat16: boolean;
  /** The default opset from which the op takes a half type there (DequantizeLinear's scale: 19). */
  minOpset?: number;
}

const ALL: HalfOp = { inputs: 'all', outputs: 'all', bfloat16: false };
const FIRST_IN: HalfOp = { inputs: [0], outputs: 'all', bfloat16: false };
const MOVES_BF16: HalfOp = { inputs: [0], outputs: 'all', bfloat16: true };

export const HALF_OPS: Readonly<Record<string, HalfOp>> = {
  Abs: ALL,
  Add: ALL,
  AveragePool: ALL,
  BatchNormalization: { inputs: 'all', outputs: [0], bfloat16: false },
  Ceil: ALL,
  Clip: ALL,
  Concat: { inputs: 'all', outputs: 'all', bfloat16: true },
  Conv: ALL,
  ConvTranspose: ALL,
  Cos: ALL,
  DepthToSpace: ALL,
  Div: ALL,
  Dropout: { inputs: [0], outputs: [0], bfloat16: false },
  Einsum: ALL,
  Elu: ALL,
  Erf: ALL,
  Exp: ALL,
  Expand: FIRST_IN,
  Flatten: MOVES_BF16,
  Floor: ALL,
  Gather: MOVES_BF16,
  Gelu: ALL,
  Gemm: ALL,
  GlobalAveragePool: ALL,
  GlobalMaxPool: ALL,
  GroupNormalization: ALL,
  HardSigmoid: ALL,
  HardSwish: ALL,
  Identity: { inputs: 'all', outputs: 'all', bfloat16: true },
  InstanceNormalization: ALL,
  LayerNormalization: { inputs: 'all', outputs: [0], bfloat16: true },
  LeakyRelu: ALL,
  Log: ALL,
  LogSoftmax: ALL,
  LpNormalization: ALL,
  MatMul: ALL,
  Max: ALL,
  MaxPool: { inputs: 'all', outputs: [0], bfloat16: false },
  Mean: ALL,
  Min: ALL,
  Mish: ALL,
  Mul: ALL,
  Neg: ALL,
  PRelu: ALL,
  Pad: { inputs: [0, 2], outputs: 'all', bfloat16: false },
  Pow: ALL,
  Reciprocal: ALL,
  ReduceL2: FIRST_IN,
  ReduceMax: FIRST_IN,
  ReduceMean: FIRST_IN,
  ReduceMin: FIRST_IN,
  ReduceSum: FIRST_IN,
  Relu: ALL,
  Reshape: MOVES_BF16,
  Resize: FIRST_IN,
  Round: ALL,
  Selu: ALL,
  Sigmoid: ALL,
  Sign: { inputs: 'all', outputs: 'all', bfloat16: true },
  Sin: ALL,
  Slice: MOVES_BF16,
  Softmax: ALL,
  Softplus: ALL,
  SpaceToDepth: ALL,
  Split: MOVES_BF16,
  Sqrt: ALL,
  Squeeze: MOVES_BF16,
  Sub: ALL,
  Sum: ALL,
  Tanh: ALL,
  Tile: FIRST_IN,
  Transpose: MOVES_BF16,
  Trilu: FIRST_IN,
  Unsqueeze: MOVES_BF16,
  Where: { inputs: [1, 2], outputs: 'all', bfloat16: false },
  // Weights already quantized: their scales (and the values they make) follow the compute type, so
  // float16 composes with the 4-bit pass in either order (q4f16).
  DequantizeLinear: { inputs: [1], outputs: [0], bfloat16: false, minOpset: 19 },
  'com.microsoft.MatMulNBits': { inputs: [0, 2, 5], outputs: [0], bfloat16: false },
  'com.microsoft.GatherBlockQuantized': { inputs: [2], outputs: [0], bfloat16: false },
};

/** The table's entry for a node (by domain and op type), if any. */
export function halfOpOf(node: { domain?: string; op_type?: string }): HalfOp | undefined {
  const domain = node.domain === 'ai.onnx' ? '' : (node.domain ?? '');
  return HALF_OPS[domain ? `${domain}.${node.op_type ?? ''}` : (node.op_type ?? '')];
}

/** Positions of `op`'s inputs (of `count`) that take the float type. */
export function halfInputs(op: HalfOp, count: number): number[] {
  return op.inputs === 'all' ? Array.from({ length: count }, (_, i) => i) : op.inputs.filter((i) => i < count);
}

/** Positions of `op`'s outputs (of `count`) that take the float type. */
export function halfOutputs(op: HalfOp, count: number): number[] {
  return op.outputs === 'all' ? Array.from({ length: count }, (_, i) => i) : op.outputs.filter((i) => i < count);
}
