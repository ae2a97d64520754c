// Rewriting a weight as quantized storage plus a dequantizing node that recreates it under its
// own name, so that every consumer (subgraphs included) keeps reading the same value name.
import type { ModelEditor } from '../ir/editor.js';
import type { AttributeProto, NodeProto, TensorProto } from '../ir/onnx.js';
import { AttributeType, DataType } from '../ir/onnx.js';
import { toFloat16 } from '../ir/half.js';
import type { NameAllocator } from '../ir/names.js';
import { makeTensor } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';

export function intAttribute(name: string, value: number): AttributeProto {
  return { name, i: value, type: AttributeType.INT, floats: [], ints: [], strings: [], tensors: [], graphs: [], type_protos: [], sparse_tensors: [] };
}

export function makeNode(op: string, inputs: string[], outputs: string[], name: string, attributes: AttributeProto[] = [], domain?: string): NodeProto {
  const node: NodeProto = { input: inputs, output: outputs, name, op_type: op, attribute: attributes, metadata_props: [], device_configurations: [] };
  if (domain) node.domain = domain;
  return node;
}

/**
 * Removes the weight's float storage (initializer, its IR<4 graph-input entry, or Constant node) and
 * puts `initializers` and `nodes` in its home graph, the nodes where the Constant was or first; the
 * last node must output the weight's name.
 */
export function replaceWeight(edits: ModelEditor, weight: Weight, initializers: TensorProto[], nodes: NodeProto[]): void {
  const home = edits.graph(weight.home);
  if (weight.constant) home.replaceNode(weight.constant, nodes);
  else {
    home.removeInitializer(weight.tensor);
    home.insertNodes(nodes, 'start');
  }
  for (const t of initializers) home.addInitializer(t);
}

/** A DequantizeLinear node recreating `weight` from quantized codes. */
export function dequantizeWeight(
  weight: Weight,
  names: NameAllocator,
  q: { dataType: number; dims: number[]; bytes: Uint8Array },
  scale: { dims: number[]; values: Float32Array; /** float16 stores the scales as float16 (opset 19+) */ dataType?: number },
  zeroPoint: { dataType: number; bytes: Uint8Array } | undefined,
  attributes: AttributeProto[],
): { initializers: TensorProto[]; node: NodeProto } {
  const qName = names.fresh(`${weight.name}_quantized`);
  const sName = names.fresh(`${weight.name}_scale`);
  const initializers = [
    makeTensor(qName, q.dataType, q.dims, q.bytes),
    scale.dataType === DataType.FLOAT16
      ? makeTensor(sName, DataType.FLOAT16, scale.dims, new Uint8Array(toFloat16(scale.values).buffer))
      : makeTensor(sName, DataType.FLOAT, scale.dims, new Uint8Array(scale.values.buffer, scale.values.byteOffset, scale.values.byteLength)),
  ];
  const inputs = [qName, sName];
  if (zeroPoint) {
    const zName = names.fresh(`${weight.name}_zero_point`);
    initializers.push(makeTensor(zName, zeroPoint.dataType, scale.dims, zeroPoint.bytes));
    inputs.push(zName);
  }
  const node = makeNode('DequantizeLinear', inputs, [weight.name], names.fresh(`${weight.name}_DequantizeLinear`), attributes);
  return { initializers, node };
}
