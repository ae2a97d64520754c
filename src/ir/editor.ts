// Editing graphs while keeping their index current: who produces each value, and who reads it (an
// input slot of a node, or a read from inside the node's subgraphs: an If/Loop/Scan body reads the
// values of the graphs around it by name). Passes edit graphs only through here, so that "who reads
// this now?" asked halfway through a pass gets the answer a fresh GraphIndex would give, without
// rebuilding one after every edit; and so that each edit (removing an initializer, renaming a
// value's uses, inserting nodes) is written once.
import { GraphIndex, implicitInputs } from './graph.js';
import { NameAllocator } from './names.js';
import type { FunctionProto, GraphProto, ModelProto, NodeProto, TensorProto } from './onnx.js';
import { hasSubgraphs, subgraphsOf } from './walk.js';

/** A read of a value: input slot `index` of `node`, or SUBGRAPH_READ for a read inside its subgraphs. */
export interface Use {
  readonly node: NodeProto;
  readonly index: number;
}

export const SUBGRAPH_READ = -1;

/** Where inserted nodes go. */
export type Place = 'start' | 'end' | { before: NodeProto } | { after: NodeProto };

/** What an editor edits: a graph, or a model-local function's body (nodes only: no initializers). */
export type Body = GraphProto | FunctionProto;

/** What a node's entries in the index were made from (so they can be taken out however the node changed). */
interface Indexed {
  inputs: string[];
  outputs: string[];
  implicit: string[];
}

const isGraph = (body: Body): body is GraphProto => 'initializer' in body;

/** Removes, in place, the entries `keep` refuses (callers holding the array keep seeing the list). */
function keepWhere<T>(list: T[], keep: (item: T) => boolean): number {
  let at = 0;
  for (const item of list) if (keep(item)) list[at++] = item;
  const removed = list.length - at;
  list.length = at;
  return removed;
}

/** Puts a graph's nodes in topological order, in place (holders of the list see it); a sorted graph keeps its order. */
export function sortNodes(graph: GraphProto): void {
  const index = new GraphIndex(graph);
  if (index.isSorted()) return;
  index.topologicalOrder().forEach((n, i) => {
    graph.node[i] = n;
  });
}

/**
 * One graph (or function body) and its index. Values are assumed to have one producer each (as
 * ONNX requires). Edits inside a subgraph go through `subgraph(node, graph)`, whose editor tells
 * this one that the node's reads may have changed.
 */
export class GraphEditor {
  private readonly producers = new Map<string, NodeProto>();
  private readonly uses = new Map<string, Use[]>();
  private readonly indexed = new Map<NodeProto, Indexed>();
  /** Nodes whose subgraphs were edited since their reads were indexed: indexed again when asked. */
  private readonly stale = new Set<NodeProto>();
  private readonly children = new Map<GraphProto, GraphEditor>();

  constructor(
    readonly body: Body,
    private readonly parent?: { editor: GraphEditor; node: NodeProto },
  ) {
    for (const node of body.node) this.index(node);
  }

  // ---------------------------------------------------------------- queries

  producer(name: string): NodeProto | undefined {
    return this.producers.get(name);
  }

  /** Every read of the value, slot by slot (a node reading it twice is listed twice), as it is now. */
  consumers(name: string): Use[] {
    this.refreshStale();
    return [...(this.uses.get(name) ?? [])];
  }

  /** Whether any node reads the value (in an input slot or inside its subgraphs). */
  isRead(name: string): boolean {
    this.refreshStale();
    return this.uses.has(name);
  }

  /** The nodes reading the value, each once, in its inputs or inside its subgraphs. */
  readers(name: string): NodeProto[] {
    return [...new Set(this.consumers(name).map((u) => u.node))];
  }

  /** The nodes reading the value in an input slot, each once (reads inside subgraphs not counted). */
  directReaders(name: string): NodeProto[] {
    return [
      ...new Set(
        this.consumers(name)
          .filter((u) => u.index !== SUBGRAPH_READ)
          .map((u) => u.node),
      ),
    ];
  }

  /** Names the graph hands out (its outputs): part of the model's interface, never renamed by an edit. */
  outputNames(): Set<string> {
    return new Set(isGraph(this.body) ? this.body.output.map((o) => o.name ?? '') : this.body.output);
  }

  /** Whether the value is declared here (produced by a node, or a graph input or initializer) rather than read from outside. */
  defines(name: string): boolean {
    if (this.producers.has(name)) return true;
    if (!isGraph(this.body)) return this.body.input.includes(name);
    const g = this.body;
    return (
      g.input.some((i) => i.name === name) ||
      g.initializer.some((t) => t.name === name) ||
      g.sparse_initializer.some((s) => s.values?.name === name)
    );
  }

  /** The editor of a subgraph held by `node`; its edits keep this graph's view of what `node` reads current. */
  subgraph(node: NodeProto, graph: GraphProto): GraphEditor {
    let child = this.children.get(graph);
    if (!child) this.children.set(graph, (child = new GraphEditor(graph, { editor: this, node })));
    return child;
  }

  // ---------------------------------------------------------------- node edits

  setInput(node: NodeProto, index: number, name: string): void {
    const entry = this.entry(node);
    const old = node.input[index] ?? '';
    if (index > node.input.length) throw new Error(`node '${node.name || node.op_type}' has no input ${index}`);
    node.input[index] = name;
    entry.inputs[index] = name;
    if (old === name) return;
    if (old) this.dropUse(old, node, index);
    if (name) this.addUse(name, { node, index });
    this.changed();
  }

  /** Gives the node a new input list. */
  setInputs(node: NodeProto, inputs: string[]): void {
    this.entry(node);
    node.input = inputs;
    this.refresh(node);
  }

  setOutput(node: NodeProto, index: number, name: string): void {
    this.entry(node);
    if (index > node.output.length) throw new Error(`node '${node.name || node.op_type}' has no output ${index}`);
    node.output[index] = name;
    this.refresh(node);
  }

  /** Indexes `node` again after it was changed directly (inputs, outputs or subgraphs). */
  refresh(node: NodeProto): void {
    this.unindex(node);
    this.index(node);
    this.changed();
  }

  /**
   * Makes the readers of `from` (only those in `only`, when given) read `to` instead, inside their
   * subgraphs too. The graph's outputs keep their names: they are the model's interface. Returns
   * how many input slots changed (reads inside subgraphs not counted).
   */
  replaceAllUses(from: string, to: string, only?: Iterable<NodeProto>): number {
    return this.rename(from, to, only ? new Set(only) : undefined, false);
  }

  insertNode(node: NodeProto, place: Place = 'end'): void {
    this.insertNodes([node], place);
  }

  insertNodes(nodes: NodeProto[], place: Place = 'end'): void {
    if (nodes.length === 0) return;
    this.body.node.splice(this.positionOf(place), 0, ...nodes);
    for (const n of nodes) this.index(n);
    this.changed();
  }

  /**
   * Inserts many nodes in one pass over the list: each group right after its node, in the order
   * given; the group under `undefined` goes first. For a pass adding nodes all over a large graph.
   */
  insertAfterEach(groups: ReadonlyMap<NodeProto | undefined, NodeProto[]>): void {
    this.insertEach(groups, 'after');
  }

  /** As insertAfterEach, each group right before its node. */
  insertBeforeEach(groups: ReadonlyMap<NodeProto | undefined, NodeProto[]>): void {
    this.insertEach(groups, 'before');
  }

  /** Puts `replacement` where `node` was. */
  replaceNode(node: NodeProto, replacement: NodeProto[]): void {
    const at = this.positionOf({ before: node });
    this.unindex(node);
    this.body.node.splice(at, 1, ...replacement);
    for (const n of replacement) this.index(n);
    this.changed();
  }

  removeNode(node: NodeProto): void {
    this.removeNodes([node]);
  }

  removeNodes(nodes: Iterable<NodeProto>): number {
    const gone = new Set(nodes);
    if (gone.size === 0) return 0;
    for (const n of gone) this.unindex(n);
    const removed = keepWhere(this.body.node, (n) => !gone.has(n));
    this.changed();
    return removed;
  }

  // ---------------------------------------------------------------- initializers

  addInitializer(tensor: TensorProto): void {
    this.graph.initializer.push(tensor);
    this.changed();
  }

  /**
   * Removes an initializer (this tensor, or every one of this name) and the graph inputs of its name:
   * a model before IR 4 lists its initializers among the inputs as well.
   */
  removeInitializer(tensor: TensorProto | string): void {
    if (typeof tensor !== 'string') {
      this.removeInitializers([tensor]);
      return;
    }
    const g = this.graph;
    keepWhere(g.initializer, (t) => (t.name ?? '') !== tensor);
    keepWhere(g.input, (i) => i.name !== tensor);
    this.changed();
  }

  /** removeInitializer for many tensors, in one pass over the lists. */
  removeInitializers(tensors: Iterable<TensorProto>): void {
    const gone = new Set(tensors);
    if (gone.size === 0) return;
    const names = new Set([...gone].map((t) => t.name ?? ''));
    const g = this.graph;
    keepWhere(g.initializer, (t) => !gone.has(t));
    keepWhere(g.input, (i) => !names.has(i.name ?? ''));
    this.changed();
  }

  /** Puts `replacement` in the initializer's place (a new tensor for the value, or under a new name). */
  replaceInitializer(tensor: TensorProto, replacement: TensorProto): void {
    const list = this.graph.initializer;
    const at = list.indexOf(tensor);
    if (at < 0) throw new Error(`initializer '${tensor.name ?? ''}' is not in this graph`);
    list[at] = replacement;
    if (replacement.name !== tensor.name) this.changed();
  }

  /** Removes initializers nothing reads (no node, subgraph or graph output); returns how many went. */
  removeUnusedInitializers(): number {
    const g = this.graph;
    const outputs = this.outputNames();
    const unused = new Set(
      g.initializer.map((t) => t.name ?? '').filter((name) => this.consumers(name).length === 0 && !outputs.has(name)),
    );
    if (unused.size === 0) return 0;
    keepWhere(g.initializer, (t) => !unused.has(t.name ?? ''));
    keepWhere(g.input, (i) => !unused.has(i.name ?? ''));
    this.changed();
    return unused.size;
  }

  // ---------------------------------------------------------------- whole-graph edits

  /** Removes nodes whose outputs reach no graph output, then initializers nothing reads. */
  removeDeadNodes(): { nodes: number; initializers: number } {
    this.refreshStale();
    const live = new Set<NodeProto>();
    const needed = [...this.outputNames()];
    const seen = new Set<string>();
    while (needed.length > 0) {
      const name = needed.pop()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const p = this.producers.get(name);
      if (!p || live.has(p)) continue;
      live.add(p);
      const entry = this.indexed.get(p)!;
      needed.push(...entry.inputs.filter((i) => i !== ''), ...entry.implicit);
    }
    const nodes = this.removeNodes(this.body.node.filter((n) => !live.has(n)));
    return { nodes, initializers: this.removeUnusedInitializers() };
  }

  /** Puts the nodes in topological order, in place; a graph already in order keeps it. */
  sort(): void {
    sortNodes(this.graph);
  }

  // ---------------------------------------------------------------- the index itself

  /** The body as a graph (a function's body has no initializers, graph inputs or value_info). */
  get graph(): GraphProto {
    if (!isGraph(this.body)) throw new Error(`function '${this.body.name ?? ''}' is not a graph`);
    return this.body;
  }

  private entry(node: NodeProto): Indexed {
    const entry = this.indexed.get(node);
    if (!entry) throw new Error(`node '${node.name || node.op_type}' is not in this graph`);
    return entry;
  }

  private insertEach(groups: ReadonlyMap<NodeProto | undefined, NodeProto[]>, side: 'before' | 'after'): void {
    const list = this.body.node;
    const order = [...(groups.get(undefined) ?? [])];
    let anchored = 0;
    for (const n of list) {
      const near = groups.get(n);
      if (near) anchored++;
      if (near && side === 'before') order.push(...near);
      order.push(n);
      if (near && side === 'after') order.push(...near);
    }
    if (anchored < groups.size - (groups.has(undefined) ? 1 : 0)) throw new Error(`a node to insert ${side} is not in this graph`);
    const added = order.length - list.length;
    order.forEach((n, i) => {
      list[i] = n;
    });
    for (const nodes of groups.values()) for (const n of nodes) this.index(n);
    if (added > 0) this.changed();
  }

  private positionOf(place: Place): number {
    if (place === 'start') return 0;
    if (place === 'end') return this.body.node.length;
    const anchor = 'before' in place ? place.before : place.after;
    const at = this.body.node.indexOf(anchor);
    if (at < 0) throw new Error(`node '${anchor.name || anchor.op_type}' is not in this graph`);
    return 'before' in place ? at : at + 1;
  }

  private index(node: NodeProto): void {
    const entry: Indexed = { inputs: [...node.input], outputs: [...node.output], implicit: hasSubgraphs(node) ? implicitInputs(node) : [] };
    this.indexed.set(node, entry);
    for (const o of entry.outputs) if (o) this.producers.set(o, node);
    entry.inputs.forEach((name, index) => {
      if (name) this.addUse(name, { node, index });
    });
    for (const name of entry.implicit) this.addUse(name, { node, index: SUBGRAPH_READ });
  }

  private unindex(node: NodeProto): void {
    const entry = this.indexed.get(node);
    if (!entry) return;
    this.indexed.delete(node);
    this.stale.delete(node);
    for (const o of entry.outputs) if (o && this.producers.get(o) === node) this.producers.delete(o);
    entry.inputs.forEach((name, index) => {
      if (name) this.dropUse(name, node, index);
    });
    for (const name of entry.implicit) this.dropUse(name, node, SUBGRAPH_READ);
  }

  private addUse(name: string, use: Use): void {
    const list = this.uses.get(name);
    if (list) list.push(use);
    else this.uses.set(name, [use]);
  }

  private dropUse(name: string, node: NodeProto, index: number): void {
    const list = this.uses.get(name);
    const at = list ? list.findIndex((u) => u.node === node && u.index === index) : -1;
    if (at < 0) return;
    list!.splice(at, 1);
    if (list!.length === 0) this.uses.delete(name);
  }

  /** A subgraph of `node` changed: what it reads from here is looked up again before the next query. */
  private invalidate(node: NodeProto): void {
    this.stale.add(node);
    this.changed();
  }

  private changed(): void {
    this.parent?.editor.invalidate(this.parent.node);
  }

  private refreshStale(): void {
    if (this.stale.size === 0) return;
    for (const node of this.stale) {
      const entry = this.indexed.get(node);
      if (!entry) continue;
      for (const name of entry.implicit) this.dropUse(name, node, SUBGRAPH_READ);
      entry.implicit = implicitInputs(node);
      for (const name of entry.implicit) this.addUse(name, { node, index: SUBGRAPH_READ });
    }
    this.stale.clear();
  }

  /** replaceAllUses, and (with `outputs`, inside a subgraph reading `from` from outside) the outputs that pass it on. */
  private rename(from: string, to: string, only: Set<NodeProto> | undefined, outputs: boolean): number {
    let count = 0;
    const inside = new Set<NodeProto>();
    for (const use of this.consumers(from)) {
      if (only && !only.has(use.node)) continue;
      if (use.index === SUBGRAPH_READ) inside.add(use.node);
      else {
        this.setInput(use.node, use.index, to);
        count++;
      }
    }
    for (const node of inside) {
      for (const g of subgraphsOf(node)) {
        const child = this.subgraph(node, g);
        if (!child.defines(from)) child.rename(from, to, undefined, true);
      }
    }
    if (outputs && isGraph(this.body)) {
      for (const o of this.body.output) {
        if (o.name !== from) continue;
        o.name = to;
        this.changed();
      }
    }
    return count;
  }
}

/**
 * The editors of one model's graphs, made when first asked for, and fresh names that collide with
 * none in the model. A subgraph's editor is linked to its owner's, so that edits inside it keep
 * the enclosing graphs' lists current.
 */
export class ModelEditor {
  readonly names: NameAllocator;
  private readonly editors = new Map<Body, GraphEditor>();
  private owners?: Map<GraphProto, { body: Body; node: NodeProto }>;

  constructor(
    readonly model: { proto: ModelProto },
    names?: NameAllocator,
  ) {
    this.names = names ?? new NameAllocator(model);
  }

  /** `base` if no name in the model is `base`, else `base_2`, `base_3`, ... */
  fresh(base: string): string {
    return this.names.fresh(base);
  }

  /** Drops every graph's index (made again when next asked for): after the model was edited by other means, as an opset conversion. */
  reindex(): void {
    this.editors.clear();
    this.owners = undefined;
  }

  /** The editor of a graph of the model (main, training, subgraph) or of a function's body. */
  graph(body: Body): GraphEditor {
    const known = this.editors.get(body);
    if (known) return known;
    const owner = isGraph(body) ? this.ownerOf(body) : undefined;
    const editor = owner ? this.graph(owner.body).subgraph(owner.node, body as GraphProto) : new GraphEditor(body);
    this.editors.set(body, editor);
    return editor;
  }

  private ownerOf(graph: GraphProto): { body: Body; node: NodeProto } | undefined {
    const proto = this.model.proto;
    if (graph === proto.graph || proto.training_info.some((t) => graph === t.initialization || graph === t.algorithm)) return undefined;
    if (!this.owners?.has(graph)) {
      // Looked up again when a graph is not known: nodes holding subgraphs may have been added.
      const owners = (this.owners = new Map());
      const visit = (body: Body) => {
        for (const node of body.node)
          for (const sub of subgraphsOf(node)) {
            owners.set(sub, { body, node });
            visit(sub);
          }
      };
      if (proto.graph) visit(proto.graph);
      for (const t of proto.training_info) for (const g of [t.initialization, t.algorithm]) if (g) visit(g);
      for (const f of proto.functions) visit(f);
    }
    return this.owners.get(graph);
  }
}
