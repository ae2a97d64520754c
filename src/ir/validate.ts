// Checks a model before it is written: acyclic graphs, every input of every node produced (by a
// node, an initializer, a graph input or an enclosing scope), every op's domain imported, and every
// stored tensor holding as many bytes as its shape and type say. A model the tool wrote that fails
// is a bug in a pass; the message names what is wrong so the report can name the pass.
import type { GraphProto, ModelProto, TensorProto } from './onnx.js';
import { DataType } from './onnx.js';
import { dtypeInfo, dtypeName, rawByteLength, type DtypeInfo } from './dtype.js';
import { GraphIndex } from './graph.js';
import { normalDomain } from './opset.js';
import { numElements } from './tensor.js';
import { subgraphsOf } from './walk.js';

const TYPED_FIELDS = ['float_data', 'int32_data', 'string_data', 'int64_data', 'double_data', 'uint64_data'] as const;

/**
 * Entries of its typed field that `count` elements take (onnx.proto, TensorProto): two per complex
 * element (real, imaginary); int32_data holds two 4-bit or four 2-bit elements per entry, packed
 * like raw_data, and one element of every other type, 6-bit floats included.
 */
function typedEntries(info: DtypeInfo, count: number): number {
  if (info.code === DataType.COMPLEX64 || info.code === DataType.COMPLEX128) return 2 * count;
  if (info.field === 'int32_data' && (info.bits === 4 || info.bits === 2)) return Math.ceil((count * info.bits) / 8);
  return count;
}

/**
 * Why a tensor's stored data does not match its declared shape and type, or undefined when it does.
 * The rules of onnx.proto (what ONNX's checker enforces), made exact: dims not negative; the values
 * in one place only (raw_data, external data, or the typed field for the type); that place holding
 * exactly the elements of the shape, and a tensor of no elements holding nothing. Every later step
 * trusts this: a count that disagrees would make it allocate, or read, what is not there.
 */
export function tensorSizeProblem(t: TensorProto, externalLength?: number): string | undefined {
  const name = `tensor '${t.name ?? ''}'`;
  const shape = `[${t.dims.join(', ')}]`;
  if (t.dims.some((d) => Number(d) < 0)) return `${name} has a negative dimension in shape ${shape}`;
  const count = numElements(t.dims);
  if (!Number.isSafeInteger(count)) return `${name} declares ${String(count)} elements`;
  const info = dtypeInfo(t.data_type);
  // An unknown or missing type: nothing to measure the data by (passes leave such tensors alone).
  if (!info) return undefined;
  const places: string[] = TYPED_FIELDS.filter((f) => t[f].length > 0);
  if (t.raw_data !== undefined && t.raw_data.byteLength > 0) places.push('raw_data');
  // An empty external range is no data (a zero-element tensor may point at one).
  if (externalLength !== undefined && (externalLength > 0 || count > 0)) places.push('external data');
  if (places.length > 1) return `${name} of shape ${shape} holds values in both ${places.join(' and ')}; ONNX allows one`;
  const place = places[0];
  if (count === 0) {
    if (place === undefined) return undefined;
    const held =
      place === 'external data'
        ? `${externalLength} bytes of external data`
        : place === 'raw_data'
          ? `${t.raw_data!.byteLength} bytes of raw_data`
          : `${t[place as (typeof TYPED_FIELDS)[number]].length} values in ${place}`;
    return `${name} of shape ${shape} has no elements but holds ${held}`;
  }
  if (info.code === DataType.STRING) {
    if (place === 'raw_data' || place === 'external data')
      return `${name} is a string tensor, whose values ONNX keeps in string_data only, but holds ${place}`;
  } else if (place === 'external data' || (place === undefined && t.raw_data !== undefined) || place === 'raw_data') {
    const expected = rawByteLength(info.code, count);
    const actual = externalLength ?? t.raw_data!.byteLength;
    if (actual !== expected) return `${name} has ${actual} bytes of data for shape ${shape}, which needs ${expected}`;
    return undefined;
  }
  if (place === undefined) return `${name} declares ${count} elements but holds no data`;
  if (place !== info.field) return `${name} is ${dtypeName(info.code)}, whose values ONNX keeps in ${info.field}, but holds ${place}`;
  const entries = t[info.field].length;
  const needed = typedEntries(info, count);
  if (entries !== needed)
    return `${name} has ${entries} values in ${info.field} for shape ${shape} of ${dtypeName(info.code)}, which needs ${needed}`;
  return undefined;
}

function checkGraph(graph: GraphProto, outer: Set<string>, domains: Set<string>, problems: string[], where: string): void {
  const index = new GraphIndex(graph);
  const known = new Set(outer);
  for (const i of graph.input) known.add(i.name ?? '');
  for (const t of graph.initializer) known.add(t.name ?? '');
  for (const s of graph.sparse_initializer) known.add(s.values?.name ?? '');
  for (const n of graph.node) for (const o of n.output) if (o) known.add(o);
  for (const n of graph.node) {
    const label = n.name || n.op_type || '(unnamed)';
    for (const input of n.input)
      if (input && !known.has(input)) problems.push(`${where}: node '${label}' reads '${input}', which nothing produces`);
    const domain = normalDomain(n.domain);
    if (!domains.has(domain))
      problems.push(`${where}: node '${label}' uses domain '${domain || 'ai.onnx'}', which the model does not import`);
    for (const g of subgraphsOf(n)) checkGraph(g, known, domains, problems, `${where}/${label}`);
  }
  for (const o of graph.output) if (!known.has(o.name ?? '')) problems.push(`${where}: output '${o.name}' is not produced`);
  try {
    // A graph in order (as ONNX asks) has no cycle; only others need sorting to find one. Without the
    // sort a cold validation of BERT-base (twice a run) took about half as long (bench/RESULTS.md,
    // §"What changed, each measured against the build before it", 8d60361).
    if (!index.isSorted()) index.topologicalOrder();
  } catch (e) {
    problems.push(`${where}: ${(e as Error).message}`);
  }
}

/** Every problem found (empty when the model is sound). */
export function validateModel(model: ModelProto): string[] {
  const problems: string[] = [];
  if (!model.graph) return ['the model has no graph'];
  const domains = new Set(model.opset_import.map((o) => normalDomain(o.domain)));
  for (const f of model.functions) domains.add(normalDomain(f.domain));
  checkGraph(model.graph, new Set(), domains, problems, model.graph.name || 'graph');
  const visit = (g: GraphProto) => {
    for (const t of g.initializer) {
      const p = tensorSizeProblem(t);
      if (p) problems.push(p);
    }
    for (const n of g.node) for (const sub of subgraphsOf(n)) visit(sub);
  };
  visit(model.graph);
  return problems;
}
