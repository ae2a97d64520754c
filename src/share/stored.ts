// The values a graph stores itself (initializers and Constant-node values), and the two edits every
// sharing pass makes to them: pointing a value's readers at another value, and dropping its storage.
import type { GraphProto, NodeProto, TensorProto } from '../ir/onnx.js';
import type { ModelEditor } from '../ir/editor.js';
import type { Model } from '../ir/model.js';
import { constantTensor, toNumber } from '../ir/tensor.js';

export interface StoredValue {
  name: string;
  tensor: TensorProto;
  graph: GraphProto;
  /** Set when a Constant node holds the value rather than an initializer. */
  constant?: NodeProto;
}

/** Initializers first, then Constant values, each in graph order (the order decides which copy is kept). */
export function storedValues(graph: GraphProto): StoredValue[] {
  const out: StoredValue[] = graph.initializer.map((tensor) => ({ name: tensor.name ?? '', tensor, graph }));
  for (const node of graph.node) {
    const tensor = constantTensor(node);
    if (tensor && node.output[0]) out.push({ name: node.output[0], tensor, graph, constant: node });
  }
  return out;
}

/**
 * Why a value's storage must stay even when an equal value exists, or undefined when it may go.
 * A graph output's name is part of the model's interface; from IR 4 on, an initializer that is
 * also a graph input is a default the caller may override, so it is not a constant at all.
 */
export function mustKeep(model: Model, value: StoredValue): string | undefined {
  if (value.graph.output.some((o) => o.name === value.name)) return 'is a graph output';
  const ir = toNumber(model.proto.ir_version ?? 3);
  if (!value.constant && ir >= 4 && value.graph.input.some((i) => i.name === value.name)) return 'is an overridable graph input (IR ≥ 4)';
  return undefined;
}

/** Removes the value's storage: the initializer and its IR<4 graph-input entry, or the Constant node. */
export function dropStorage(edits: ModelEditor, value: StoredValue): void {
  const graph = edits.graph(value.graph);
  if (value.constant) graph.removeNode(value.constant);
  else graph.removeInitializer(value.tensor);
}
