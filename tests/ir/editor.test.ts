// The editor's producer and reader lists against an independent oracle: a GraphIndex built from
// scratch after every edit of a seeded random sequence, subgraph reads included.
import { describe, expect, it } from 'vitest';
import { GraphEditor, ModelEditor, SUBGRAPH_READ } from '../../src/ir/editor.js';
import { GraphIndex } from '../../src/ir/graph.js';
import type { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto } from '../../src/ir/onnx.js';
import { removeDeadNodes } from '../../src/ir/rewrite.js';
import { seededRandom } from '../../src/kernels/random.js';

const node = (op: string, inputs: string[], outputs: string[], name = ''): NodeProto => ({
  op_type: op,
  input: inputs,
  output: outputs,
  name,
  attribute: [],
  metadata_props: [],
  device_configurations: [],
});
const graph = (nodes: NodeProto[], inputs: string[], outputs: string[], initializers: string[] = []): GraphProto => ({
  node: nodes,
  initializer: initializers.map(tensor),
  input: inputs.map((name) => ({ name, metadata_props: [] })),
  output: outputs.map((name) => ({ name, metadata_props: [] })),
  value_info: [],
  quantization_annotation: [],
  sparse_initializer: [],
  metadata_props: [],
});
const tensor = (name: string): TensorProto => ({ name, dims: [1], data_type: 1, float_data: [0] }) as unknown as TensorProto;
const graphAttribute = (name: string, g: GraphProto): AttributeProto => ({
  name,
  g,
  graphs: [],
  floats: [],
  ints: [],
  strings: [],
  tensors: [],
  sparse_tensors: [],
  type_protos: [],
});
const model = (g: GraphProto): ModelProto =>
  ({ graph: g, opset_import: [], functions: [], metadata_props: [], training_info: [], configuration: [] }) as unknown as ModelProto;

/** The editor's lists equal a fresh GraphIndex's: producers, and readers (input slots and subgraph reads). */
function expectCurrent(editor: GraphEditor, g: GraphProto): void {
  const oracle = new GraphIndex(g);
  const names = new Set<string>([...oracle.producer.keys(), ...oracle.consumers.keys()]);
  for (const n of g.node) for (const i of n.input) names.add(i);
  for (const name of names) {
    if (!name) continue;
    expect(editor.producer(name), `producer of ${name}`).toBe(oracle.producer.get(name));
    const readers = new Set(editor.readers(name));
    expect(readers, `readers of ${name}`).toEqual(new Set(oracle.consumersOf(name)));
  }
  for (const n of g.node) {
    n.input.forEach((name, index) => {
      if (name) expect(editor.consumers(name)).toContainEqual({ node: n, index });
    });
  }
}

describe('GraphEditor', () => {
  it('keeps producers and readers current through random edits, as a fresh GraphIndex sees them', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const next = seededRandom(seed);
      const pick = <T>(list: T[]): T => list[Math.floor(next() * list.length)]!;
      // An If whose branch reads 'a' and 'w0' from the main graph.
      const branch = graph([node('Add', ['a', 'w0'], ['t'], 'inner'), node('Relu', ['t'], ['u'])], [], ['u']);
      const ifNode = { ...node('If', ['x'], ['y'], 'if'), attribute: [graphAttribute('then_branch', branch)] };
      const g = graph(
        [node('Relu', ['x'], ['a'], 'r'), node('Mul', ['a', 'w1'], ['b'], 'm'), ifNode, node('Add', ['b', 'y'], ['z'], 'out')],
        ['x', 'w0'],
        ['z'],
        ['w0', 'w1', 'w2'],
      );
      const edits = new ModelEditor({ proto: model(g) });
      const editor = edits.graph(g);
      const inner = edits.graph(branch);
      let fresh = 0;
      const values = () => [
        ...new Set([...g.node.flatMap((n) => n.output), ...g.input.map((i) => i.name!), ...g.initializer.map((t) => t.name!)]),
      ];
      for (let step = 0; step < 60; step++) {
        const plain = g.node.filter((n) => n !== ifNode);
        const choice = Math.floor(next() * 11);
        if (choice === 0 && plain.length > 0) {
          const n = pick(plain);
          if (n.input.length > 0) editor.setInput(n, Math.floor(next() * n.input.length), pick(values()));
        } else if (choice === 1) {
          editor.replaceAllUses(pick(values()), pick(values()));
        } else if (choice === 2) {
          const anchor = plain.length > 0 ? pick(plain) : undefined;
          const added = node('Add', [pick(values()), pick(values())], [`v${fresh++}`], `n${fresh}`);
          editor.insertNode(added, anchor ? (next() < 0.5 ? { before: anchor } : { after: anchor }) : 'start');
        } else if (choice === 3 && plain.length > 2) {
          editor.removeNode(pick(plain));
        } else if (choice === 4 && g.initializer.length > 0) {
          editor.removeInitializer(pick(g.initializer));
        } else if (choice === 5) {
          editor.addInitializer(tensor(`w${fresh++}`));
        } else if (choice === 6 && plain.length > 0) {
          editor.replaceNode(pick(plain), [node('Neg', [pick(values())], [`v${fresh++}`]), node('Abs', [pick(values())], [`v${fresh++}`])]);
        } else if (choice === 7 && branch.node.length > 0) {
          // An edit inside the If's branch changes what the If reads from the main graph.
          const n = pick(branch.node);
          inner.setInput(n, 0, pick([...values(), 't']));
        } else if (choice === 8 && plain.length > 0) {
          const n = pick(plain);
          n.input.push(pick(values()));
          editor.refresh(n);
        }
        if (choice === 9 && plain.length > 0) {
          const groups = new Map<NodeProto | undefined, NodeProto[]>([[undefined, [node('Neg', [pick(values())], [`v${fresh++}`])]]]);
          for (const anchor of [pick(plain), pick(plain)]) groups.set(anchor, [node('Abs', [pick(values())], [`v${fresh++}`])]);
          if (next() < 0.5) editor.insertAfterEach(groups);
          else editor.insertBeforeEach(groups);
        } else if (choice === 10 && g.initializer.length > 0) {
          editor.replaceInitializer(pick(g.initializer), tensor(next() < 0.5 ? `w${fresh++}` : 'w0'));
        }
        expectCurrent(editor, g);
        expectCurrent(inner, branch);
      }
    }
  });

  it('counts reads inside subgraphs as reads of the outer value, and renames them there', () => {
    const nested = graph([node('Identity', ['w'], ['k'])], [], ['k']);
    const loopBody = { ...node('If', ['c'], ['o'], 'inner-if'), attribute: [graphAttribute('then_branch', nested)] };
    const branch = graph([loopBody, node('Add', ['o', 'a'], ['s'])], [], ['s', 'a']);
    const ifNode = { ...node('If', ['c'], ['y'], 'if'), attribute: [graphAttribute('then_branch', branch)] };
    const g = graph([node('Relu', ['x'], ['a'], 'r'), ifNode], ['x', 'c'], ['y'], ['w', 'v']);
    const editor = new ModelEditor({ proto: model(g) }).graph(g);
    expect(editor.consumers('w')).toEqual([{ node: ifNode, index: SUBGRAPH_READ }]);
    expect(editor.readers('a')).toEqual([ifNode]);
    expect(editor.replaceAllUses('w', 'v')).toBe(0);
    expect(nested.node[0]!.input).toEqual(['v']);
    expect(editor.consumers('w')).toEqual([]);
    expect(editor.readers('v')).toEqual([ifNode]);
    // A subgraph output that passes an outer value on is renamed with it; the main graph's outputs are not.
    editor.replaceAllUses('a', 'x');
    expect(branch.output.map((o) => o.name)).toEqual(['s', 'x']);
    expect(branch.node[1]!.input).toEqual(['o', 'x']);
    expectCurrent(editor, g);
  });

  it('leaves a subgraph that declares the name itself alone', () => {
    const branch = graph([node('Relu', ['a'], ['b'])], ['a'], ['b']);
    const ifNode = { ...node('If', ['a'], ['y'], 'if'), attribute: [graphAttribute('then_branch', branch)] };
    const g = graph([node('Relu', ['x'], ['a']), ifNode], ['x'], ['y']);
    const editor = new GraphEditor(g);
    editor.replaceAllUses('a', 'x');
    expect(ifNode.input).toEqual(['x']);
    expect(branch.node[0]!.input).toEqual(['a']);
    expectCurrent(editor, g);
  });

  it('removes an initializer with its graph-input entry, and dead nodes with what only they read', () => {
    const g = graph(
      [node('Mul', ['x', 'w'], ['m']), node('Add', ['m', 'b'], ['dead']), node('Relu', ['m'], ['y'])],
      ['x', 'w', 'b'],
      ['y'],
      ['w', 'b', 'c'],
    );
    const editor = new GraphEditor(g);
    editor.removeInitializer('c');
    expect(g.initializer.map((t) => t.name)).toEqual(['w', 'b']);
    expect(editor.removeDeadNodes()).toEqual({ nodes: 1, initializers: 1 });
    expect(g.node.map((n) => n.output[0])).toEqual(['m', 'y']);
    expect(g.input.map((i) => i.name)).toEqual(['x', 'w']);
    expectCurrent(editor, g);
    // The same answer as the graph-level function, which runs through a fresh editor.
    const again = graph(
      [node('Mul', ['x', 'w'], ['m']), node('Add', ['m', 'b'], ['dead']), node('Relu', ['m'], ['y'])],
      ['x', 'w', 'b'],
      ['y'],
      ['w', 'b'],
    );
    expect(removeDeadNodes(again)).toEqual({ nodes: 1, initializers: 1 });
  });

  it('sorts in place and keeps the node list the caller holds', () => {
    const g = graph([node('Relu', ['a'], ['b'], 'second'), node('Relu', ['x'], ['a'], 'first')], ['x'], ['b']);
    const list = g.node;
    const editor = new GraphEditor(g);
    editor.sort();
    expect(g.node).toBe(list);
    expect(g.node.map((n) => n.name)).toEqual(['first', 'second']);
    expectCurrent(editor, g);
  });

  it('inserts groups of nodes right after (or before) their anchors in one pass, the unanchored group first', () => {
    const [a, b] = [node('Relu', ['x'], ['a'], 'a'), node('Relu', ['a'], ['b'], 'b')];
    const g = graph([a, b], ['x'], ['b']);
    const editor = new GraphEditor(g);
    editor.insertAfterEach(
      new Map([
        [b, [node('Neg', ['b'], ['n2'], 'after-b')]],
        [undefined, [node('Neg', ['x'], ['n0'], 'first')]],
        [a, [node('Neg', ['a'], ['n1'], 'after-a'), node('Abs', ['a'], ['n3'], 'after-a-2')]],
      ]),
    );
    expect(g.node.map((n) => n.name)).toEqual(['first', 'a', 'after-a', 'after-a-2', 'b', 'after-b']);
    expectCurrent(editor, g);
    editor.insertBeforeEach(new Map([[b, [node('Neg', ['a'], ['n4'], 'before-b')]]]));
    expect(g.node.map((n) => n.name)).toEqual(['first', 'a', 'after-a', 'after-a-2', 'before-b', 'b', 'after-b']);
    expectCurrent(editor, g);
  });

  it('refuses to edit around a node that is not in the graph', () => {
    const g = graph([node('Relu', ['x'], ['y'])], ['x'], ['y']);
    const editor = new GraphEditor(g);
    expect(() => editor.insertNode(node('Neg', ['x'], ['n']), { before: node('Relu', [], []) })).toThrow(/not in this graph/);
    expect(() => editor.setInput(node('Relu', [], []), 0, 'x')).toThrow(/not in this graph/);
  });
});
