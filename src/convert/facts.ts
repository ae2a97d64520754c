// What can be known of values without ONNX's shape inference: element types and ranks from the
// declared inputs, outputs, value_info, initializers and Constant nodes, carried forward through
// ops whose output has their first input's type (and rank, for elementwise ops).
import { DataType, type GraphProto, type NodeProto, type ValueInfoProto } from '../ir/onnx.js';
import { constantTensor, toNumber } from '../ir/tensor.js';

/** Ops whose first output has the element type of input 0 (or of the input named). */
const SAME_TYPE = new Set([
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
  'GlobalLpPool',
  'GlobalMaxPool',
  'GroupNormalization',
  'HardSigmoid',
  'HardSwish',
  'Hardmax',
  'Identity',
  'InstanceNormalization',
  'LRN',
  'LayerNormalization',
  'LeakyRelu',
  'Log',
  'LogSoftmax',
  'LpNormalization',
  'LpPool',
  'MatMul',
  'Max',
  'MaxPool',
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
  'Split',
  'Sqrt',
  'Squeeze',
  'Sub',
  'Sum',
  'Tan',
  'Tanh',
  'ThresholdedRelu',
  'Tile',
  'TopK',
  'Transpose',
  'Trilu',
  'Unsqueeze',
  'Upsample',
]);

/** Ops whose first output has the shape (so the rank) of input 0. */
const SAME_RANK = new Set([
  'Abs',
  'Acos',
  'Asin',
  'Atan',
  'BatchNormalization',
  'Ceil',
  'Celu',
  'Clip',
  'Cos',
  'Cosh',
  'CumSum',
  'Dropout',
  'Elu',
  'Erf',
  'Exp',
  'Floor',
  'Gelu',
  'HardSigmoid',
  'HardSwish',
  'Hardmax',
  'Identity',
  'InstanceNormalization',
  'LRN',
  'LayerNormalization',
  'LeakyRelu',
  'Log',
  'LogSoftmax',
  'LpNormalization',
  'Mish',
  'Neg',
  'Reciprocal',
  'Relu',
  'Round',
  'Selu',
  'Shrink',
  'Sigmoid',
  'Sign',
  'Sin',
  'Sinh',
  'Softmax',
  'Softplus',
  'Softsign',
  'Sqrt',
  'Tan',
  'Tanh',
  'ThresholdedRelu',
  'Conv',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'Upsample',
  'Resize',
  'Pad',
  'Transpose',
  'Tile',
]);

const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);
const INT32_OUT = new Set(['MatMulInteger', 'ConvInteger']);
/** Ops whose every output has the element type of input 0 (recurrent layers). */
const ALL_OUTPUTS_SAME = new Set(['LSTM', 'GRU', 'RNN']);
/** Ops whose output type is given by a 'dtype' attribute (default float). */
const DTYPE_ATTR = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'EyeLike', 'Bernoulli']);
const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);

export class ValueFacts {
  private readonly types = new Map<string, number>();
  private readonly ranks = new Map<string, number>();

  constructor(private readonly outer?: ValueFacts) {}

  type(name: string): number | undefined {
    return this.types.get(name) ?? this.outer?.type(name);
  }

  rank(name: string): number | undefined {
    return this.ranks.get(name) ?? this.outer?.rank(name);
  }

  private declare(v: ValueInfoProto): void {
    const t = v.type?.tensor_type;
    if (!v.name || !t) return;
    if (t.elem_type) this.types.set(v.name, t.elem_type);
    if (t.shape) this.ranks.set(v.name, t.shape.dim.length);
  }

  /** Facts of a graph's values; `outer` holds those of the enclosing scopes. */
  static ofGraph(graph: GraphProto, outer?: ValueFacts): ValueFacts {
    const facts = new ValueFacts(outer);
    for (const v of [...graph.input, ...graph.output, ...graph.value_info]) facts.declare(v);
    for (const t of graph.initializer) {
      if (!t.name) continue;
      if (t.data_type) facts.types.set(t.name, t.data_type);
      facts.ranks.set(t.name, t.dims.length);
    }
    facts.follow(graph.node);
    return facts;
  }

  /** Facts of a function body's values: only what its nodes tell (its inputs' types vary by call). */
  static ofNodes(nodes: NodeProto[]): ValueFacts {
    const facts = new ValueFacts();
    facts.follow(nodes);
    return facts;
  }

  private follow(nodes: NodeProto[]): void {
    for (const node of nodes) {
      if ((node.domain ?? '') !== '' && node.domain !== 'ai.onnx') continue;
      const op = node.op_type ?? '';
      const out = node.output[0];
      if (!out) continue;
      const set = (name: string, type: number | undefined) => {
        if (type && !this.types.has(name)) this.types.set(name, type);
      };
      if (op === 'Constant') {
        const t = constantTensor(node);
        if (t) {
          set(out, t.data_type);
          this.ranks.set(out, t.dims.length);
        }
        continue;
      }
      if (op === 'Cast') {
        const to = node.attribute.find((a) => a.name === 'to');
        if (to?.i !== undefined) set(out, toNumber(to.i));
      } else if (INT64_OUT.has(op)) set(out, DataType.INT64);
      else if (INT32_OUT.has(op)) set(out, DataType.INT32);
      else if (ALL_OUTPUTS_SAME.has(op)) {
        const t = this.type(node.input[0] ?? '');
        for (const o of node.output) if (o) set(o, t);
      } else if (op === 'RoiAlign' || op === 'MaxRoiPool') set(out, this.type(node.input[0] ?? ''));
      else if (op === 'DequantizeLinear') set(out, this.type(node.input[1] ?? ''));
      else if (op === 'OneHot') set(out, this.type(node.input[2] ?? ''));
      else if (op === 'ConstantOfShape') {
        const value = node.attribute.find((a) => a.name === 'value');
        set(out, value?.t?.data_type ?? DataType.FLOAT);
      } else if (DTYPE_ATTR.has(op)) {
        const dtype = node.attribute.find((a) => a.name === 'dtype');
        // RandomNormal/RandomUniform default to float; the others to their input's type.
        set(
          out,
          dtype?.i !== undefined
            ? toNumber(dtype.i)
            : op === 'RandomNormal' || op === 'RandomUniform'
              ? DataType.FLOAT
              : this.type(node.input[0] ?? ''),
        );
      } else if (BOOL_OUT.has(op)) set(out, DataType.BOOL);
      else if (op === 'Where') set(out, this.type(node.input[1] ?? ''));
      else if (SAME_TYPE.has(op)) {
        const t = this.type(node.input[0] ?? '');
        set(out, t);
        if (op === 'Split') for (const o of node.output) if (o) set(o, t);
      }
      if (op === 'TopK' && node.output[1]) set(node.output[1], DataType.INT64);
      if (SAME_RANK.has(op) && !this.ranks.has(out)) {
        const r = this.rank(node.input[0] ?? '');
        if (r !== undefined) this.ranks.set(out, r);
      }
    }
  }
}
