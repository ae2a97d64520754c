// What exporters leave on every node for debugging, which no runtime reads: torch.onnx's dynamo
// exporter writes each node's Python stack trace, FX node and module path into its metadata_props
// (the Silero VAD op18 export: 635 kB of 90 nodes' metadata, more than its int8 weights), older
// exporters a doc_string. Removed from the nodes of every graph and function; the model's and the
// graphs' own metadata (licences, labels, a tokenizer's settings) and the inputs' and outputs' stay.
import type { ModelProto, NodeProto } from './onnx.js';
import { forEachGraph } from './walk.js';

export interface StrippedDebugInfo {
  /** Nodes that had any. */
  nodes: number;
  /** UTF-8 bytes of the keys, values and doc strings removed (the file shrinks by about this much). */
  bytes: number;
  /** Bytes removed per metadata key ("doc_string" for the doc strings), largest first. */
  byKey: [string, number][];
}

const utf8 = new TextEncoder();
const length = (s: string | undefined) => (s ? utf8.encode(s).length : 0);

export function stripDebugInfo(model: ModelProto): StrippedDebugInfo {
  const byKey = new Map<string, number>();
  let nodes = 0;
  const strip = (node: NodeProto) => {
    const doc = length(node.doc_string);
    if (node.metadata_props.length === 0 && doc === 0) return;
    nodes++;
    for (const p of node.metadata_props) byKey.set(p.key ?? '', (byKey.get(p.key ?? '') ?? 0) + length(p.key) + length(p.value));
    if (doc > 0) byKey.set('doc_string', (byKey.get('doc_string') ?? 0) + doc);
    node.metadata_props = [];
    node.doc_string = undefined;
  };
  forEachGraph(model, ({ graph }) => {
    for (const node of graph.node) strip(node);
  });
  for (const f of model.functions) for (const node of f.node) strip(node);
  const sorted = [...byKey].sort((a, b) => b[1] - a[1]);
  return { nodes, bytes: sorted.reduce((n, [, b]) => n + b, 0), byKey: sorted };
}
