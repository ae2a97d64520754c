// The element type of every value of a graph, where it can be known without running the model:
// declared (inputs, outputs, value_info, initializers, Constant values) or following from the op
// (a Cast's `to`, Shape's int64, a comparison's bool, and the ops whose output has the type of their
// first input). Values no rule reaches are absent: a caller treats them as unknown.
import { DataType, type GraphProto, type NodeProto, type TypeProto } from './onnx.js';
import { GraphIndex } from './graph.js';
import { constantTensor } from './tensor.js';

/** Ops whose every output has the element type of their first input. */
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
  'Concat',
  'Conv',
  'ConvTranspose',
  'Cos',
  'Cosh',
  'CumSum',
  'DepthToSpace',
  'Div',
  'Dropout',
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
  'GlobalMaxPool',
  'GroupNormalization',
  'HardSigmoid',
  'HardSwish',
  'Identity',
  'InstanceNormalization',
  'LRN',
  'LayerNormalization',
  'LeakyRelu',
  'Log',
  'LogSoftmax',
  'LpNormalization',
  'MatMul',
  'Max',
  'MaxPool',
  'Mean',
  'Min',
  'Mish',
  'Mod',
  'Mul',
  'Neg',
  'PRelu',
  'Pad',
  'Pow',
  'Reciprocal',
  'ReduceL1',
  'ReduceL2',
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
  'Round',
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
  'Split',
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

const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin']);
const BOOL_OUT = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);

function declared(type: TypeProto | undefined): number | undefined {
  const elem = type?.tensor_type?.elem_type;
  return elem === undefined || elem === DataType.UNDEFINED ? undefined : elem;
}

function attributeInt(node: NodeProto, name: string): number | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i === undefined ? undefined : Number(a.i);
}

/** The element type of each output the rules reach, given the types known so far. */
function outputTypes(node: NodeProto, typeOf: (name: string) => number | undefined): (number | undefined)[] {
  if (node.domain === 'com.microsoft') {
    if (node.op_type === 'MatMulNBits') return [typeOf(node.input[0] ?? '')];
    if (node.op_type === 'GatherBlockQuantized') return [typeOf(node.input[2] ?? '')];
  }
  const op = node.domain && node.domain !== 'ai.onnx' ? undefined : (node.op_type ?? '');
  if (op === undefined) return [];
  if (op === 'Cast') return [attributeInt(node, 'to')];
  if (op === 'CastLike') return [typeOf(node.input[1] ?? '')];
  if (op === 'Constant') return [constantTensor(node)?.data_type];
  if (op === 'ConstantOfShape') return [constantTensor({ ...node, op_type: 'Constant' })?.data_type ?? DataType.FLOAT];
  if (INT64_OUT.has(op)) return [DataType.INT64];
  if (BOOL_OUT.has(op)) return [DataType.BOOL];
  if (op === 'Where') return [typeOf(node.input[1] ?? '')];
  if (op === 'TopK') return [typeOf(node.input[0] ?? ''), DataType.INT64];
  if (op === 'MaxPool') return [typeOf(node.input[0] ?? ''), DataType.INT64];
  if (op === 'Dropout') return [typeOf(node.input[0] ?? ''), DataType.BOOL];
  if (op === 'LayerNormalization') return [typeOf(node.input[0] ?? '')];
  if (op === 'DequantizeLinear') return [typeOf(node.input[1] ?? '')];
  if (op === 'QuantizeLinear') return [typeOf(node.input[2] ?? '') ?? DataType.UINT8];
  if (SAME_AS_FIRST.has(op)) return node.output.map(() => typeOf(node.input[0] ?? ''));
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
    const out = outputTypes(node, typeOf);
    for (const [i, name] of node.output.entries()) set(name, out[i]);
  }
  return types;
}
