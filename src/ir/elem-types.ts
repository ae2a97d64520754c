// The element type of every value of a graph, where it can be known without running the model:
// declared (inputs, outputs, value_info, initializers, Constant values) or following from the op
// (a Cast's `to`, Shape's int64, a comparison's bool, and the ops whose output has the type of their
// first input). Values no rule reaches are absent: a caller treats them as unknown. The one set of
// rules: opset conversion (convert/facts.ts) and the half-precision passes read types through it.
import { GraphIndex } from './graph.js';
import { DataType, type GraphProto, type NodeProto, type TypeProto } from './onnx.js';
import { constantTensor, toNumber } from './tensor.js';

/** Ops whose first output has the element type of their first input. */
const SAME_AS_FIRST = new Set([
  'Abs',
  'Acos',
  'Acosh',
  'Add',
  'Asin',
  'Asinh',
  'Atan',
  'Atanh',
  'AveragePool',
  'BatchNormalization',
  'Ceil',
  'Celu',
  'Clip',
  'Compress',
  'Concat',
  'Conv',
  'ConvTranspose',
  'Cos',
  'Cosh',
  'CumSum',
  'DepthToSpace',
  'Div',
  'Einsum',
  'Elu',
  'Erf',
  'Exp',
  'Expand',
  'Flatten',
  'Floor',
  'Gather',
  'GatherElements',
  'GatherND',
  'Gelu',
  'Gemm',
  'GlobalAveragePool',
  'GlobalLpPool',
  'GlobalMaxPool',
  'GroupNormalization',
  'HardSigmoid',
  'HardSwish',
  'Hardmax',
  'Identity',
  'InstanceNormalization',
  'LRN',
  'LeakyRelu',
  'Log',
  'LogSoftmax',
  'LpNormalization',
  'LpPool',
  'MatMul',
  'Max',
  'Mean',
  'MeanVarianceNormalization',
  'Min',
  'Mish',
  'Mod',
  'Mul',
  'Neg',
  'PRelu',
  'Pad',
  'Pow',
  'Range',
  'Reciprocal',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceMax',
  'ReduceMean',
  'ReduceMin',
  'ReduceProd',
  'ReduceSum',
  'ReduceSumSquare',
  'Relu',
  'Reshape',
  'Resize',
  'ReverseSequence',
  'Round',
  'Scatter',
  'ScatterElements',
  'ScatterND',
  'Selu',
  'Shrink',
  'Sigmoid',
  'Sign',
  'Sin',
  'Sinh',
  'Slice',
  'Softmax',
  'Softplus',
  'Softsign',
  'SpaceToDepth',
  'Sqrt',
  'Squeeze',
  'Sub',
  'Sum',
  'Tan',
  'Tanh',
  'ThresholdedRelu',
  'Tile',
  'Transpose',
  'Trilu',
  'Unsqueeze',
  'Upsample',
]);

const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);
const INT32_OUT = new Set(['MatMulInteger', 'ConvInteger']);
const BOOL_OUT = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
/** Ops whose every output has the element type of input 0 (recurrent layers, Split). */
const ALL_OUTPUTS_SAME = new Set(['LSTM', 'GRU', 'RNN', 'Split']);
/** Ops whose output type is given by a 'dtype' attribute (RandomNormal/RandomUniform default to float, the others to their input's). */
const DTYPE_ATTR = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'EyeLike', 'Bernoulli']);

function declared(type: TypeProto | undefined): number | undefined {
  const elem = type?.tensor_type?.elem_type;
  return elem === undefined || elem === DataType.UNDEFINED ? undefined : elem;
}

function attributeInt(node: NodeProto, name: string): number | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i === undefined ? undefined : toNumber(a.i);
}

/** The element type of each of the node's outputs that the rules reach, given the types known so far. */
export function outputElementTypes(node: NodeProto, typeOf: (name: string) => number | undefined): (number | undefined)[] {
  const input = (i: number) => typeOf(node.input[i] ?? '');
  if (node.domain === 'com.microsoft') {
    if (node.op_type === 'MatMulNBits') return [input(0)];
    if (node.op_type === 'GatherBlockQuantized') return [input(2)];
    return [];
  }
  if (node.domain && node.domain !== 'ai.onnx') return [];
  const op = node.op_type ?? '';
  if (op === 'Constant') return [constantTensor(node)?.data_type];
  if (op === 'Cast') return [attributeInt(node, 'to')];
  if (op === 'CastLike') return [input(1)];
  if (op === 'ConstantOfShape') return [constantTensor({ ...node, op_type: 'Constant' })?.data_type ?? DataType.FLOAT];
  if (INT64_OUT.has(op)) return [DataType.INT64];
  if (INT32_OUT.has(op)) return [DataType.INT32];
  if (BOOL_OUT.has(op)) return [DataType.BOOL];
  if (ALL_OUTPUTS_SAME.has(op)) return node.output.map(() => input(0));
  if (op === 'RoiAlign' || op === 'MaxRoiPool') return [input(0)];
  if (op === 'DequantizeLinear') return [input(1)];
  if (op === 'QuantizeLinear') return [input(2) ?? DataType.UINT8];
  if (op === 'OneHot') return [input(2)];
  if (op === 'Where') return [input(1)];
  if (DTYPE_ATTR.has(op))
    return [attributeInt(node, 'dtype') ?? (op === 'RandomNormal' || op === 'RandomUniform' ? DataType.FLOAT : input(0))];
  if (op === 'TopK' || op === 'MaxPool') return [input(0), DataType.INT64];
  if (op === 'Dropout') return [input(0), DataType.BOOL];
  if (op === 'LayerNormalization') return [input(0)];
  if (SAME_AS_FIRST.has(op)) return [input(0)];
  return [];
}

/** Element types of the graph's values by name (the main graph's scope; subgraphs are not entered). */
export function elementTypes(graph: GraphProto): Map<string, number> {
  const types = new Map<string, number>();
  const set = (name: string | undefined, type: number | undefined) => {
    if (name && type !== undefined && !types.has(name)) types.set(name, type);
  };
  for (const t of graph.initializer) set(t.name, t.data_type);
  for (const s of graph.sparse_initializer) set(s.values?.name, s.values?.data_type);
  for (const v of [...graph.input, ...graph.output, ...graph.value_info]) set(v.name, declared(v.type));
  const typeOf = (name: string) => types.get(name);
  let order: NodeProto[];
  try {
    order = new GraphIndex(graph).topologicalOrder();
  } catch {
    order = graph.node;
  }
  for (const node of order) {
    const out = outputElementTypes(node, typeOf);
    for (const [i, name] of node.output.entries()) set(name, out[i]);
  }
  return types;
}
