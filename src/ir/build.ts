// Building the nodes and attributes passes add, and putting a weight's replacement (new storage and
// the nodes that recreate the weight under its own name) where the weight was.
import { AttributeType, type AttributeProto, type NodeProto, type TensorProto } from './onnx.js';
import type { ModelEditor } from './editor.js';
import type { Weight } from './weights.js';

/** An attribute of `type` with every repeated field empty, for the builders below to fill in one value. */
function attributeOf(name: string, type: number): AttributeProto {
  return { name, type, floats: [], ints: [], strings: [], tensors: [], graphs: [], type_protos: [], sparse_tensors: [] };
}

export function intAttribute(name: string, value: number): AttributeProto {
  return { ...attributeOf(name, AttributeType.INT), i: value };
}

export function intsAttribute(name: string, values: number[]): AttributeProto {
  return { ...attributeOf(name, AttributeType.INTS), ints: values };
}

export function stringAttribute(name: string, value: string): AttributeProto {
  return { ...attributeOf(name, AttributeType.STRING), s: new TextEncoder().encode(value) };
}

export function tensorAttribute(name: string, t: TensorProto): AttributeProto {
  return { ...attributeOf(name, AttributeType.TENSOR), t };
}

export function makeNode(
  op: string,
  inputs: string[],
  outputs: string[],
  name: string,
  attributes: AttributeProto[] = [],
  domain?: string,
): NodeProto {
  const node: NodeProto = {
    input: inputs,
    output: outputs,
    name,
    op_type: op,
    attribute: attributes,
    metadata_props: [],
    device_configurations: [],
  };
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
