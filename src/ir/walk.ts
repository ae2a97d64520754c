// Visiting every graph and every tensor of a model: the main graph, subgraphs of If/Loop/Scan
// (any graph-valued attribute), model-local functions and training graphs.
import type { AttributeProto, GraphProto, ModelProto, NodeProto, SparseTensorProto, TensorProto } from './onnx.js';

export interface GraphSite {
  graph: GraphProto;
  /** 0 for the main graph, +1 per enclosing node. */
  depth: number;
  /** The node whose attribute holds this graph (undefined for the main graph and training graphs). */
  owner?: NodeProto;
}

/** Where a tensor lives, for reports and for passes that choose by location. */
export type TensorPlace = 'initializer' | 'sparse-initializer' | 'constant' | 'attribute';

export interface TensorSite {
  tensor: TensorProto;
  place: TensorPlace;
  /** The graph that holds it (undefined inside a function body). */
  graph?: GraphProto;
  depth: number;
  /** The node whose attribute holds it (Constant nodes and other tensor attributes). */
  node?: NodeProto;
  attribute?: AttributeProto;
}

/** The graphs held by a node's attributes (If branches, Loop and Scan bodies), each with its attribute. */
export function subgraphAttributes(node: NodeProto): { attribute: AttributeProto; graph: GraphProto }[] {
  const out: { attribute: AttributeProto; graph: GraphProto }[] = [];
  for (const attribute of node.attribute) {
    if (attribute.g) out.push({ attribute, graph: attribute.g });
    for (const graph of attribute.graphs) out.push({ attribute, graph });
  }
  return out;
}

/** The graphs held by a node's attributes (If branches, Loop and Scan bodies). */
export function subgraphsOf(node: NodeProto): GraphProto[] {
  return subgraphAttributes(node).map((s) => s.graph);
}

/** Whether any attribute of the node holds a graph. */
export function hasSubgraphs(node: NodeProto): boolean {
  return node.attribute.some((a) => a.g !== undefined || a.graphs.length > 0);
}

function walkNodes(nodes: NodeProto[], depth: number, visit: (site: GraphSite) => void): void {
  for (const node of nodes) {
    for (const g of subgraphsOf(node)) walkGraph(g, depth + 1, node, visit);
  }
}

function walkGraph(graph: GraphProto, depth: number, owner: NodeProto | undefined, visit: (site: GraphSite) => void): void {
  visit({ graph, depth, owner });
  walkNodes(graph.node, depth, visit);
}

/** Calls `visit` for every graph in the model, parents before their subgraphs. */
export function forEachGraph(model: ModelProto, visit: (site: GraphSite) => void): void {
  if (model.graph) walkGraph(model.graph, 0, undefined, visit);
  for (const f of model.functions) walkNodes(f.node, 0, visit);
  for (const t of model.training_info) {
    if (t.initialization) walkGraph(t.initialization, 0, undefined, visit);
    if (t.algorithm) walkGraph(t.algorithm, 0, undefined, visit);
  }
}

function sparseParts(s: SparseTensorProto): TensorProto[] {
  const out: TensorProto[] = [];
  if (s.values) out.push(s.values);
  if (s.indices) out.push(s.indices);
  return out;
}

function visitNodeTensors(nodes: NodeProto[], graph: GraphProto | undefined, depth: number, visit: (site: TensorSite) => void): void {
  for (const node of nodes) {
    const place: TensorPlace = node.op_type === 'Constant' && (node.domain ?? '') === '' ? 'constant' : 'attribute';
    for (const attribute of node.attribute) {
      const tensors: TensorProto[] = [];
      if (attribute.t) tensors.push(attribute.t);
      tensors.push(...attribute.tensors);
      if (attribute.sparse_tensor) tensors.push(...sparseParts(attribute.sparse_tensor));
      for (const s of attribute.sparse_tensors) tensors.push(...sparseParts(s));
      for (const tensor of tensors) visit({ tensor, place, graph, depth, node, attribute });
    }
  }
}

/** Calls `visit` for every TensorProto that holds data: initializers, sparse parts, and tensor attributes. */
export function forEachTensor(model: ModelProto, visit: (site: TensorSite) => void): void {
  forEachGraph(model, ({ graph, depth }) => {
    for (const tensor of graph.initializer) visit({ tensor, place: 'initializer', graph, depth });
    for (const s of graph.sparse_initializer) {
      for (const tensor of sparseParts(s)) visit({ tensor, place: 'sparse-initializer', graph, depth });
    }
    visitNodeTensors(graph.node, graph, depth, visit);
  });
  for (const f of model.functions) visitNodeTensors(f.node, undefined, 0, visit);
}
