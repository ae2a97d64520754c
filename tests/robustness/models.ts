// Small hand-built models for the hardening tests: hostile structures and models ONNX Runtime
// refuses, encoded with onnxpress's own codec (Python is not available to the tests).
import { writeFileSync } from 'node:fs';
import { encode } from '../../src/io/codec.js';
import type { AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../src/ir/onnx.js';
import { makeTensor } from '../../src/ir/tensor.js';

export const FLOAT = 1,
  INT64 = 7,
  BOOL = 9;
const LOCAL = { domain: 'local', version: 1 };

export function valueInfo(name: string, elemType = FLOAT, dims: (number | string)[] = [1]): ValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim } } }, metadata_props: [] };
}

export function node(op: string, input: string[], output: string[], extra: Partial<NodeProto> = {}): NodeProto {
  return { op_type: op, input, output, attribute: [], metadata_props: [], device_configurations: [], ...extra };
}

export function graphAttribute(name: string, g: GraphProto): AttributeProto {
  return { name, type: 5, g, floats: [], ints: [], strings: [], tensors: [], graphs: [], type_protos: [], sparse_tensors: [] };
}

export function graph(
  nodes: NodeProto[],
  inputs: ValueInfoProto[],
  outputs: ValueInfoProto[],
  extra: Partial<GraphProto> = {},
): GraphProto {
  return {
    node: nodes,
    initializer: [],
    input: inputs,
    output: outputs,
    value_info: [],
    quantization_annotation: [],
    sparse_initializer: [],
    metadata_props: [],
    name: 'g',
    ...extra,
  };
}

export function tensor(name: string, dims: number[], dataType: number, raw: Uint8Array): TensorProto {
  return makeTensor(name, dataType, dims, raw);
}

export function int64s(name: string, values: bigint[], dims = [values.length]): TensorProto {
  return tensor(name, dims, INT64, new Uint8Array(new BigInt64Array(values).buffer));
}

/** A model-local function (domain 'local') from a to b. */
export function localFunction(name: string, nodes: NodeProto[], input = ['a'], output = ['b']): FunctionProto {
  return {
    name,
    domain: 'local',
    input,
    output,
    attribute: [],
    attribute_proto: [],
    node: nodes,
    opset_import: [{ domain: '', version: 17 }, LOCAL],
    value_info: [],
    metadata_props: [],
  };
}

export const call = (fn: string, input: string[], output: string[]) => node(fn, input, output, { domain: 'local' });

export function model(g: GraphProto, extra: Partial<ModelProto> = {}): ModelProto {
  const opsets = [{ domain: '', version: 17 }, ...(extra.functions?.length ? [LOCAL] : [])];
  return { ir_version: 8, opset_import: opsets, graph: g, functions: [], metadata_props: [], training_info: [], ...extra };
}

export function save(path: string, proto: ModelProto): string {
  writeFileSync(path, encode('onnx.ModelProto', proto));
  return path;
}

/** x -> y through `n` Identity nodes. */
export function identities(n: number): ModelProto {
  const nodes: NodeProto[] = new Array(n);
  for (let i = 0; i < n; i++) nodes[i] = node('Identity', [i === 0 ? 'x' : (i - 1).toString(36)], [i === n - 1 ? 'y' : i.toString(36)]);
  return model(graph(nodes, [valueInfo('x')], [valueInfo('y')]));
}

/** The main graph calls f0, f0 calls f1, ... f(n-1) is an Identity. */
export function chainedFunctions(n: number): ModelProto {
  const functions: FunctionProto[] = [];
  for (let i = 0; i < n; i++)
    functions.push(localFunction(`f${i}`, [i === n - 1 ? node('Identity', ['a'], ['b']) : call(`f${i + 1}`, ['a'], ['b'])]));
  return model(graph([call('f0', ['x'], ['y'])], [valueInfo('x')], [valueInfo('y')]), { functions });
}

/** f0 calls f1 twice, f1 calls f2 twice...: 2^(n-1) Identity nodes once expanded. */
export function doublingFunctions(n: number): ModelProto {
  const functions: FunctionProto[] = [];
  for (let i = 0; i < n; i++) {
    const body = i === n - 1 ? [node('Identity', ['a'], ['b'])] : [call(`f${i + 1}`, ['a'], ['t']), call(`f${i + 1}`, ['t'], ['b'])];
    functions.push(localFunction(`f${i}`, body));
  }
  return model(graph([call('f0', ['x'], ['y'])], [valueInfo('x')], [valueInfo('y')]), { functions });
}

/** `n` functions, each an If whose then-branch calls the next: subgraphs nested n deep once inlined. */
export function nestedThroughFunctions(n: number): ModelProto {
  const functions: FunctionProto[] = [];
  for (let i = 0; i < n; i++) {
    const inner = i === n - 1 ? node('Identity', ['x'], ['b']) : call(`f${i + 1}`, ['x', 'c'], ['b']);
    const ifNode = node('If', ['c'], ['r'], {
      attribute: [
        graphAttribute('then_branch', graph([inner], [], [valueInfo('b')])),
        graphAttribute('else_branch', graph([node('Identity', ['x'], ['e'])], [], [valueInfo('e')])),
      ],
    });
    functions.push(localFunction(`f${i}`, [ifNode], ['x', 'c'], ['r']));
  }
  return model(graph([call('f0', ['x', 'c'], ['y'])], [valueInfo('x'), valueInfo('c', BOOL, [])], [valueInfo('y')]), { functions });
}

/** A Loop of 2^63-1 iterations: ONNX Runtime never returns from running it. */
export function endlessLoop(): ModelProto {
  const body = graph(
    [node('Identity', ['cond_in'], ['cond_out']), node('Identity', ['v_in'], ['v_out'])],
    [valueInfo('iter', INT64, []), valueInfo('cond_in', BOOL, []), valueInfo('v_in')],
    [valueInfo('cond_out', BOOL, []), valueInfo('v_out')],
  );
  return model(
    graph([node('Loop', ['M', 'c', 'x'], ['y'], { attribute: [graphAttribute('body', body)] })], [valueInfo('x')], [valueInfo('y')], {
      initializer: [int64s('M', [9223372036854775807n], []), tensor('c', [], BOOL, new Uint8Array([1]))],
    }),
  );
}
