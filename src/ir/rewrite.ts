// One-off rewrites of a graph, for the library's users: each runs through a GraphEditor made for
// the occasion (passes keep one editor for all their edits instead, see editor.ts).
import { GraphEditor, sortNodes } from './editor.js';
import type { GraphProto, NodeProto } from './onnx.js';

/**
 * Makes the given nodes (default: every node) read `to` where they read `from`, including uses
 * inside their subgraphs. Graph outputs are left alone: an output's name is part of the model's interface.
 */
export function replaceInput(graph: GraphProto, from: string, to: string, only?: NodeProto[]): number {
  return new GraphEditor(graph).replaceAllUses(from, to, only);
}

/** Inserts `node` immediately before `before` (or at the start when before is not in the graph). */
export function insertNodeBefore(graph: GraphProto, node: NodeProto, before: NodeProto): void {
  new GraphEditor(graph).insertNode(node, graph.node.includes(before) ? { before } : 'start');
}

/** Removes nodes whose outputs reach no graph output, then initializers nothing reads. */
export function removeDeadNodes(graph: GraphProto): { nodes: number; initializers: number } {
  return new GraphEditor(graph).removeDeadNodes();
}

/** Removes initializers no node (or subgraph, or graph output) reads; also their IR<4 graph-input entries. */
export function removeUnusedInitializers(graph: GraphProto): number {
  return new GraphEditor(graph).removeUnusedInitializers();
}

/** Puts the node list in topological order (a graph that is already sorted keeps its order). */
export function sortGraph(graph: GraphProto): void {
  sortNodes(graph);
}
