// Merging identical nodes that compute only from constants. Once dedup has made two copies of a
// weight one, nodes that recreated each copy (the DequantizeLinear of weights quantized before
// dedup, a Cast, a Transpose) read the same inputs and compute the same value: one is enough.
import type { AttributeProto, NodeProto } from '../ir/onnx.js';
import { normalDomain } from '../ir/opset.js';
import type { GraphEditor } from '../ir/editor.js';
import { storedValues } from './stored.js';
import { subgraphsOf } from '../ir/walk.js';

// Deterministic default-domain ops whose result depends only on inputs and attributes.
const PURE = new Set([
  'DequantizeLinear',
  'Transpose',
  'Cast',
  'Gather',
  'Reshape',
  'Unsqueeze',
  'Squeeze',
  'Identity',
  'Flatten',
  'Concat',
  'Add',
  'Sub',
  'Mul',
  'Div',
]);

function attributeKey(attributes: AttributeProto[]): string | undefined {
  if (attributes.some((a) => a.t || a.g || a.graphs.length || a.tensors.length || a.sparse_tensor || a.sparse_tensors.length))
    return undefined;
  const parts = attributes.map((a) => [
    a.name,
    a.type,
    a.i,
    a.f,
    a.s ? [...a.s] : undefined,
    a.ints,
    a.floats,
    a.strings.map((s) => [...s]),
  ]);
  parts.sort((x, y) => String(x[0]).localeCompare(String(y[0])));
  return JSON.stringify(parts, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/**
 * Merges, in `graph`, nodes with the same op, inputs and attributes whose inputs are all constants
 * (values stored in this graph, `outer` constants, or outputs of nodes merged this way).
 * Returns how many nodes went, and the graph's constant names for its subgraphs.
 */
export function mergeConstantNodes(editor: GraphEditor, outer: ReadonlySet<string>): { merged: number; constants: Set<string> } {
  editor.sort();
  const graph = editor.graph;
  const constants = new Set(outer);
  for (const v of storedValues(graph)) constants.add(v.name);
  const outputs = new Set(graph.output.map((o) => o.name ?? ''));
  const first = new Map<string, NodeProto>();
  const removed = new Set<NodeProto>();
  for (const node of graph.node) {
    if (!PURE.has(node.op_type ?? '') || normalDomain(node.domain) !== '' || subgraphsOf(node).length > 0) continue;
    if (node.input.length === 0 || !node.input.every((i) => i === '' || constants.has(i))) continue;
    const attributes = attributeKey(node.attribute);
    if (attributes === undefined) continue;
    const key = [node.op_type, node.input.length, ...node.input, attributes].join('\u0000');
    const kept = first.get(key);
    if (!kept || kept.output.length !== node.output.length || node.output.some((o) => outputs.has(o))) {
      if (!kept) first.set(key, node);
      for (const o of node.output) if (o) constants.add(o);
      continue;
    }
    node.output.forEach((o, k) => {
      if (o) editor.replaceAllUses(o, kept.output[k]!);
    });
    removed.add(node);
  }
  editor.removeNodes(removed);
  return { merged: removed.size, constants };
}
