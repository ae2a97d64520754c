// What can be known of values without ONNX's shape inference: element types and ranks from the
// declared inputs, outputs, value_info, initializers and Constant nodes, carried forward through
// ops whose output has their first input's type (and rank, for elementwise ops).
import { outputElementTypes } from '../ir/elem-types.js';
import type { GraphProto, NodeProto, ValueInfoProto } from '../ir/onnx.js';
import { constantTensor } from '../ir/tensor.js';

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
      // Element types by the one set of rules (ir/elem-types.ts); what is declared stays.
      const types = outputElementTypes(node, (name) => this.type(name));
      for (const [i, name] of node.output.entries()) {
        const type = types[i];
        if (name && type && !this.types.has(name)) this.types.set(name, type);
      }
      if (op === 'Constant') {
        const t = constantTensor(node);
        if (t) this.ranks.set(out, t.dims.length);
        continue;
      }
      if (SAME_RANK.has(op) && !this.ranks.has(out)) {
        const r = this.rank(node.input[0] ?? '');
        if (r !== undefined) this.ranks.set(out, r);
      }
    }
  }
}
