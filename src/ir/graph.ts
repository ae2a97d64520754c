// Graph queries: who produces a value, who consumes it (including uses from inside subgraphs),
// initializers (also in IR < 4 models where they are listed among the inputs), and topological order.
import { InputError } from '../errors.js';
import type { GraphProto, NodeProto, TensorProto } from './onnx.js';
import { hasSubgraphs, subgraphsOf } from './walk.js';

/** Names a subgraph reads from enclosing scopes: used but neither produced nor declared inside it. */
export function outerScopeNames(graph: GraphProto): Set<string> {
  const defined = new Set<string>();
  for (const i of graph.input) if (i.name) defined.add(i.name);
  for (const t of graph.initializer) if (t.name) defined.add(t.name);
  for (const s of graph.sparse_initializer) if (s.values?.name) defined.add(s.values.name);
  for (const n of graph.node) for (const o of n.output) if (o) defined.add(o);
  const used = new Set<string>();
  for (const n of graph.node) {
    for (const i of n.input) if (i && !defined.has(i)) used.add(i);
    for (const name of implicitInputs(n)) if (!defined.has(name)) used.add(name);
  }
  for (const o of graph.output) if (o.name && !defined.has(o.name)) used.add(o.name);
  return used;
}

/** Values a node reads through its subgraphs (If/Loop/Scan bodies referring to the outer graph). */
export function implicitInputs(node: NodeProto): string[] {
  const names = new Set<string>();
  for (const g of subgraphsOf(node)) for (const name of outerScopeNames(g)) names.add(name);
  return [...names];
}

export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly outputs: Set<string>;

  constructor(readonly graph: GraphProto) {
    for (const t of graph.initializer) if (t.name !== undefined) this.initializers.set(t.name, t);
    for (const node of graph.node) {
      for (const o of node.output) if (o) this.producer.set(o, node);
      const reads = new Set([...node.input.filter((i) => i !== ''), ...implicitInputs(node)]);
      for (const name of reads) {
        let list = this.consumers.get(name);
        if (!list) this.consumers.set(name, (list = []));
        list.push(node);
      }
    }
    this.outputs = new Set(graph.output.map((o) => o.name ?? ''));
  }

  consumersOf(name: string): NodeProto[] {
    return this.consumers.get(name) ?? [];
  }

  /** Graph inputs that are real inputs, not initializers listed as inputs (IR < 4 style). */
  realInputs() {
    return this.graph.input.filter((i) => !this.initializers.has(i.name ?? ''));
  }

  /** Nodes in an order where every node comes after the producers of its inputs; stable for sorted graphs. */
  topologicalOrder(): NodeProto[] {
    const nodes = this.graph.node;
    const position = new Map<NodeProto, number>();
    for (const [i, n] of nodes.entries()) position.set(n, i);
    const waiting = new Map<NodeProto, number>();
    const dependents = new Map<NodeProto, NodeProto[]>();
    for (const node of nodes) {
      const deps = new Set<NodeProto>();
      for (const name of [...node.input, ...implicitInputs(node)]) {
        const p = name ? this.producer.get(name) : undefined;
        if (p && p !== node) deps.add(p);
        else if (p === node)
          throw new InputError(`graph '${this.graph.name ?? ''}' has a cycle: node '${node.name ?? node.op_type}' reads its own output`);
      }
      waiting.set(node, deps.size);
      for (const d of deps) {
        let list = dependents.get(d);
        if (!list) dependents.set(d, (list = []));
        list.push(node);
      }
    }
    // A min-heap on original position keeps an already sorted graph in its order.
    const ready: NodeProto[] = nodes.filter((n) => waiting.get(n) === 0);
    const order: NodeProto[] = [];
    const less = (a: NodeProto, b: NodeProto) => position.get(a)! < position.get(b)!;
    const push = (n: NodeProto) => {
      ready.push(n);
      let i = ready.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!less(ready[i]!, ready[p]!)) break;
        [ready[i], ready[p]] = [ready[p]!, ready[i]!];
        i = p;
      }
    };
    const pop = (): NodeProto => {
      const top = ready[0]!;
      const last = ready.pop()!;
      if (ready.length > 0) {
        ready[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1,
            r = l + 1;
          let m = i;
          if (l < ready.length && less(ready[l]!, ready[m]!)) m = l;
          if (r < ready.length && less(ready[r]!, ready[m]!)) m = r;
          if (m === i) break;
          [ready[i], ready[m]] = [ready[m]!, ready[i]!];
          i = m;
        }
      }
      return top;
    };
    const initial = ready.splice(0);
    for (const n of initial) push(n);
    while (ready.length > 0) {
      const n = pop();
      order.push(n);
      for (const d of dependents.get(n) ?? []) {
        const left = waiting.get(d)! - 1;
        waiting.set(d, left);
        if (left === 0) push(d);
      }
    }
    if (order.length !== nodes.length) {
      const stuck = nodes.find((n) => waiting.get(n)! > 0)!;
      throw new InputError(`graph '${this.graph.name ?? ''}' has a cycle through node '${stuck.name || stuck.op_type}'`);
    }
    return order;
  }

  /** Whether every node comes after the producers of what it reads, its subgraphs' reads included. */
  isSorted(): boolean {
    const seen = new Set<string>();
    for (const i of this.graph.input) seen.add(i.name ?? '');
    for (const name of this.initializers.keys()) seen.add(name);
    const early = (name: string) => !name || !this.producer.has(name) || seen.has(name);
    for (const node of this.graph.node) {
      if (!node.input.every(early)) return false;
      if (hasSubgraphs(node) && !implicitInputs(node).every(early)) return false;
      for (const o of node.output) seen.add(o);
    }
    return true;
  }
}
