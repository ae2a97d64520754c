// Safe rewrites that passes share: renaming a value's uses, inserting nodes, removing what no
// output depends on, and keeping the node list in topological order.
import type { GraphProto, NodeProto } from './onnx.js';
import { GraphIndex, outerScopeNames } from './graph.js';
import { subgraphsOf } from './walk.js';

function renameInSubgraphs(node: NodeProto, from: string, to: string): void {
  for (const g of subgraphsOf(node)) {
    if (!outerScopeNames(g).has(from)) continue;
    for (const n of g.node) {
      n.input = n.input.map((i) => (i === from ? to : i));
      renameInSubgraphs(n, from, to);
    }
    for (const o of g.output) if (o.name === from) o.name = to;
  }
}

/**
 * Makes the given nodes (default: every node) read `to` where they read `from`, including uses
 * inside their subgraphs. Graph outputs are left alone: an output's name is part of the model's interface.
 */
export function replaceInput(graph: GraphProto, from: string, to: string, only?: NodeProto[]): number {
  const targets = only ? new Set(only) : undefined;
  let count = 0;
  for (const node of graph.node) {
    if (targets && !targets.has(node)) continue;
    for (let i = 0; i < node.input.length; i++) {
      if (node.input[i] === from) { node.input[i] = to; count++; }
    }
    renameInSubgraphs(node, from, to);
  }
  return count;
}

/** Inserts `node` immediately before `before` (or at the start when before is not in the graph). */
export function insertNodeBefore(graph: GraphProto, node: NodeProto, before: NodeProto): void {
  const at = graph.node.indexOf(before);
  graph.node.splice(at < 0 ? 0 : at, 0, node);
}

/** Removes nodes whose outputs reach no graph output, then initializers nothing reads. */
export function removeDeadNodes(graph: GraphProto): { nodes: number; initializers: number } {
  const index = new GraphIndex(graph);
  const live = new Set<NodeProto>();
  const needed = [...index.outputs];
  const seen = new Set<string>();
  while (needed.length > 0) {
    const name = needed.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const p = index.producer.get(name);
    if (!p || live.has(p)) continue;
    live.add(p);
    needed.push(...p.input.filter((i) => i !== ''));
    for (const g of subgraphsOf(p)) needed.push(...outerScopeNames(g));
  }
  const before = graph.node.length;
  graph.node = graph.node.filter((n) => live.has(n));
  const initializers = removeUnusedInitializers(graph);
  return { nodes: before - graph.node.length, initializers };
}

/** Removes initializers no node (or subgraph, or graph output) reads; also their IR<4 graph-input entries. */
export function removeUnusedInitializers(graph: GraphProto): number {
  const index = new GraphIndex(graph);
  const unused = new Set(
    graph.initializer
      .map((t) => t.name ?? '')
      .filter((name) => index.consumersOf(name).length === 0 && !index.outputs.has(name)),
  );
  if (unused.size === 0) return 0;
  graph.initializer = graph.initializer.filter((t) => !unused.has(t.name ?? ''));
  graph.input = graph.input.filter((i) => !unused.has(i.name ?? ''));
  return unused.size;
}

/** Puts the node list in topological order (a graph that is already sorted keeps its order). */
export function sortGraph(graph: GraphProto): void {
  const index = new GraphIndex(graph);
  if (!index.isSorted()) graph.node = index.topologicalOrder();
}
