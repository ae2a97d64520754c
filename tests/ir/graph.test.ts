import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import type { GraphProto, NodeProto } from '../../src/ir/onnx.js';
import { GraphIndex, implicitInputs } from '../../src/ir/graph.js';
import { removeDeadNodes, replaceInput, sortGraph, insertNodeBefore } from '../../src/ir/rewrite.js';
import { ensureOpset } from '../../src/convert/raise.js';
import { opsetVersion } from '../../src/ir/opset.js';
import { forEachGraph, forEachTensor } from '../../src/ir/walk.js';
import { constantTensor, floatValues, tensorValues } from '../../src/ir/tensor.js';
import { fixture } from '../helpers.js';

const node = (op: string, inputs: string[], outputs: string[], name = ''): NodeProto => ({
  op_type: op,
  input: inputs,
  output: outputs,
  name,
  attribute: [],
  metadata_props: [],
  device_configurations: [],
});
const graph = (nodes: NodeProto[], inputs: string[], outputs: string[]): GraphProto => ({
  node: nodes,
  initializer: [],
  input: inputs.map((name) => ({ name, metadata_props: [] })),
  output: outputs.map((name) => ({ name, metadata_props: [] })),
  value_info: [],
  quantization_annotation: [],
  sparse_initializer: [],
  metadata_props: [],
});

describe('GraphIndex', () => {
  it('orders an unsorted graph topologically, and keeps a sorted one as it is', () => {
    const model = readModel(fixture('conformance', 'unsorted', 'model.onnx'));
    const index = new GraphIndex(model.graph);
    expect(index.isSorted()).toBe(false);
    const order = index.topologicalOrder();
    const seen = new Set(model.graph.input.map((i) => i.name));
    for (const t of model.graph.initializer) seen.add(t.name);
    for (const n of order) {
      for (const i of n.input) if (i) expect(seen.has(i)).toBe(true);
      for (const o of n.output) seen.add(o);
    }
    const sorted = readModel(fixture('digits', 'model.onnx')).graph;
    expect(new GraphIndex(sorted).topologicalOrder()).toEqual(sorted.node);
  });

  it('reports a cycle instead of looping', () => {
    const g = graph([node('Add', ['x', 'b'], ['a']), node('Relu', ['a'], ['b'])], ['x'], ['b']);
    expect(() => new GraphIndex(g).topologicalOrder()).toThrow(/cycle/);
  });

  it('finds cycles when validating, direct or through a subgraph read, and none in sorted graphs', async () => {
    const { validateModel } = await import('../../src/ir/validate.js');
    const model = (g: GraphProto) =>
      ({
        graph: g,
        opset_import: [{ domain: '', version: 17 }],
        functions: [],
        metadata_props: [],
        training_info: [],
        configuration: [],
      }) as never;
    const direct = graph([node('Add', ['x', 'b'], ['a']), node('Relu', ['a'], ['b'])], ['x'], ['b']);
    expect(validateModel(model(direct)).join()).toMatch(/cycle/);
    // The If's branch reads 'later', which a node fed by the If produces.
    const branch = graph([node('Identity', ['later'], ['y'])], [], ['y']);
    const ifNode = {
      ...node('If', ['x'], ['z']),
      attribute: [
        { name: 'then_branch', g: branch, graphs: [], floats: [], ints: [], strings: [], tensors: [], sparse_tensors: [], type_protos: [] },
      ],
    } as NodeProto;
    const throughSubgraph = graph([ifNode, node('Relu', ['z'], ['later'])], ['x'], ['later']);
    expect(new GraphIndex(throughSubgraph).isSorted()).toBe(false);
    expect(validateModel(model(throughSubgraph)).join()).toMatch(/cycle/);
    const sorted = graph([node('Relu', ['x'], ['a']), node('Add', ['a', 'x'], ['b'])], ['x'], ['b']);
    expect(new GraphIndex(sorted).isSorted()).toBe(true);
    expect(validateModel(model(sorted))).toEqual([]);
  });

  it('treats IR 3 initializers listed as inputs as weights, not inputs', () => {
    const model = readModel(fixture('conformance', 'ir3_init_as_inputs', 'model.onnx'));
    const index = new GraphIndex(model.graph);
    expect(model.graph.input.length).toBeGreaterThan(index.realInputs().length);
    for (const i of index.realInputs()) expect(index.initializers.has(i.name!)).toBe(false);
  });

  it('counts values read from inside subgraphs as uses by the owning node', () => {
    const model = readModel(fixture('conformance', 'if_subgraph', 'model.onnx'));
    const ifNode = model.graph.node.find((n) => n.op_type === 'If')!;
    const outer = implicitInputs(ifNode);
    expect(outer.length).toBeGreaterThan(0);
    const index = new GraphIndex(model.graph);
    for (const name of outer) expect(index.consumersOf(name)).toContain(ifNode);
  });
});

describe('walking', () => {
  it('finds weights in subgraphs and in Constant nodes', () => {
    const places = (path: string) => {
      const out: string[] = [];
      forEachTensor(readModel(path).proto, (s) => out.push(`${s.place}@${s.depth}`));
      return out;
    };
    expect(places(fixture('conformance', 'if_subgraph', 'model.onnx')).some((p) => p.endsWith('@1'))).toBe(true);
    expect(places(fixture('conformance', 'constants', 'model.onnx'))).toContain('constant@0');
    let subgraphs = 0;
    forEachGraph(readModel(fixture('conformance', 'loop_scan', 'model.onnx')).proto, ({ depth }) => {
      if (depth > 0) subgraphs++;
    });
    expect(subgraphs).toBeGreaterThanOrEqual(2);
  });

  it('reads constant values from every Constant form', () => {
    const model = readModel(fixture('conformance', 'constants', 'model.onnx'));
    const constants = model.graph.node.filter((n) => n.op_type === 'Constant').map(constantTensor);
    expect(constants.every((t) => t !== undefined)).toBe(true);
    for (const t of constants) expect(tensorValues(t!).length).toBeGreaterThan(0);
  });

  it('gives float values of every float tensor, views where aligned', () => {
    const model = readModel(fixture('digits', 'model.onnx'));
    for (const t of model.graph.initializer) {
      const values = floatValues(t);
      expect(values.length).toBe(t.dims.reduce<number>((a, b) => a * Number(b), 1));
      expect(values.every(Number.isFinite)).toBe(true);
    }
  });
});

describe('rewrites', () => {
  it('renames uses, inserts nodes, removes dead nodes and unused initializers, sorts', () => {
    const g = graph([node('Relu', ['x'], ['a'], 'r'), node('Neg', ['x'], ['dead'], 'd'), node('Abs', ['a'], ['y'], 'abs')], ['x'], ['y']);
    g.initializer.push({
      name: 'unused',
      dims: [1],
      data_type: 1,
      float_data: [1],
      int32_data: [],
      string_data: [],
      int64_data: [],
      double_data: [],
      uint64_data: [],
      external_data: [],
      metadata_props: [],
    });
    const absNode = g.node[2]!;
    insertNodeBefore(g, node('Sigmoid', ['a'], ['a2'], 's'), absNode);
    expect(replaceInput(g, 'a', 'a2', [absNode])).toBe(1);
    expect(absNode.input).toEqual(['a2']);
    expect(removeDeadNodes(g)).toEqual({ nodes: 1, initializers: 1 });
    expect(g.node.map((n) => n.name)).toEqual(['r', 's', 'abs']);
    g.node.reverse();
    sortGraph(g);
    expect(g.node.map((n) => n.name)).toEqual(['r', 's', 'abs']);
  });

  it('adds a domain, raises the default opset by converting the model (and refuses past 21)', () => {
    const model = readModel(fixture('digits', 'model.onnx')).proto;
    expect(ensureOpset(model, 'com.microsoft', 1)).toEqual({ domain: 'com.microsoft', to: 1 });
    expect(opsetVersion(model, 'com.microsoft')).toBe(1);
    expect(ensureOpset(model, '', 21, ['Conv', 'Gemm', 'Relu'])).toEqual({ domain: '', from: 17, to: 21 });
    const other = readModel(fixture('digits', 'model.onnx')).proto;
    expect(() => ensureOpset(other, '', 22)).toThrow(
      /cannot raise the default opset from 17 to 22: opset 22: onnxpress converts to opsets up to 21/,
    );
    expect(opsetVersion(other, '')).toBe(17);
  });
});
