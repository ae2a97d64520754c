// What a model holds: versions, interface, ops, parameters and bytes by dtype, the largest tensors,
// external data, and exact duplicate tensors. Weights are counted wherever they live.
import { createHash } from 'node:crypto';
import type { Model } from '../ir/model.js';
import { dtypeInfo, dtypeName } from '../ir/dtype.js';
import { forEachGraph, forEachTensor } from '../ir/walk.js';
import { numElements, tensorByteLength, tensorBytes, toNumber } from '../ir/tensor.js';
import { fileRangeOf } from '../ir/data.js';
import { normalDomain } from '../ir/opset.js';
import { DataType, type NodeProto, type TensorProto, type TypeProto, type ValueInfoProto } from '../ir/onnx.js';
import { formatBytes, formatCount, table } from './format.js';
import { printable } from './printable.js';
import { countBy, findQuantizedWeights } from '../ir/quantized.js';

export type Dim = number | string | null;

export interface ValueSummary {
  name: string;
  /** Element type for tensors; 'sequence<...>', 'map<...>', 'optional<...>' otherwise. */
  dtype: string;
  /** Dimensions: numbers, symbolic names as strings, null where unknown; null for an unknown rank. */
  shape: Dim[] | null;
}

export type TensorWhere = 'initializer' | 'constant' | 'subgraph' | 'external' | 'sparse-initializer' | 'attribute';

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  where: TensorWhere;
}

export interface InspectReport {
  file?: string;
  fileBytes?: number;
  irVersion: number;
  producer: { name?: string; version?: string };
  opsets: Record<string, number>;
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  nodes: number;
  /** op type (prefixed with its domain when not the default) → count, subgraphs and functions included. */
  ops: Record<string, number>;
  /** Total elements of all floating-point weights. */
  parameters: number;
  /** Total bytes of all weights, whatever their type. */
  weightBytes: number;
  byDtype: Record<string, { tensors: number; elements: number; bytes: number }>;
  tensors: TensorSummary[];
  largest: TensorSummary[];
  external: { files: string[]; tensors: number; bytes: number };
  /** Tensors whose dtype, shape and bytes equal another's: how many copies, and the bytes they waste. */
  duplicates: { tensors: number; groups: number; bytes: number };
  subgraphs: number;
  functions: number;
  /**
   * Weights already quantized (src/ir/quantized.ts): how many, the bytes of their codes, and counts
   * by form: "DequantizeLinear int8 per-axis", "ConvInteger uint8", "MatMulNBits 4-bit", ...
   */
  quantized: { tensors: number; bytes: number; byForm: Record<string, number> };
}

export function typeName(type: TypeProto | undefined): string {
  if (!type) return 'unknown';
  if (type.tensor_type) return dtypeName(type.tensor_type.elem_type);
  if (type.sparse_tensor_type) return `sparse<${dtypeName(type.sparse_tensor_type.elem_type)}>`;
  if (type.sequence_type) return `sequence<${typeName(type.sequence_type.elem_type)}>`;
  if (type.map_type) return `map<${dtypeName(type.map_type.key_type)},${typeName(type.map_type.value_type)}>`;
  if (type.optional_type) return `optional<${typeName(type.optional_type.elem_type)}>`;
  if (type.opaque_type) return `opaque<${type.opaque_type.domain ?? ''}.${type.opaque_type.name ?? ''}>`;
  return 'unknown';
}

function shapeOf(type: TypeProto | undefined): Dim[] | null {
  const shape = type?.tensor_type?.shape ?? type?.sparse_tensor_type?.shape;
  if (!shape) return null;
  return shape.dim.map((d) => (d.dim_value !== undefined ? toNumber(d.dim_value) : d.dim_param !== undefined ? d.dim_param : null));
}

export function summarizeValue(v: ValueInfoProto): ValueSummary {
  return { name: v.name ?? '', dtype: typeName(v.type), shape: shapeOf(v.type) };
}

function countDuplicates(tensors: { t: import('../ir/onnx.js').TensorProto; bytes: number }[]) {
  // Group by what must match anyway (dtype, dims, size); hash only the groups that could hold copies.
  const groups = new Map<string, typeof tensors>();
  for (const entry of tensors) {
    if (entry.bytes === 0) continue;
    const key = `${entry.t.data_type}|${entry.t.dims.join(',')}|${entry.bytes}`;
    let list = groups.get(key);
    if (!list) groups.set(key, (list = []));
    list.push(entry);
  }
  let copies = 0,
    groupCount = 0,
    bytes = 0;
  for (const list of groups.values()) {
    if (list.length < 2) continue;
    const byHash = new Map<string, number>();
    for (const { t, bytes: n } of list) {
      if (t.data_type === 8) continue;
      const digest = createHash('sha256').update(tensorBytes(t)).digest('hex');
      const seen = byHash.get(digest) ?? 0;
      byHash.set(digest, seen + 1);
      if (seen === 1) groupCount++;
      if (seen >= 1) {
        copies++;
        bytes += n;
      }
    }
  }
  return { tensors: copies, groups: groupCount, bytes };
}

/**
 * Parameters of a model, as the report counts them: elements of floating-point weights, plus the
 * logical elements of quantized weights (the codes read by DequantizeLinear, and K·N for the packed
 * weight of each MatMulNBits; their scales and zero points not counted), so that quantization keeps
 * the count and pruning lowers it. A clustered weight (codes → Cast [→ Add] → Gather of a float
 * codebook) counts its codes: the elements of the weight the model computes, not its k centroids.
 */
export function countParameters(model: Model): number {
  return parameterCounts(model).effective;
}

export interface ParameterCounts {
  /** Elements of the weights as the model computes them (countParameters). */
  effective: number;
  /** Elements stored: the same, plus the values of the codebooks that clustered weights' codes index. */
  stored: number;
}

/** The codes initializer behind a Gather's indices: Cast of an 8- or 4-bit unsigned initializer, maybe plus channel offsets (share/codebook.ts). */
function codesBehind(indices: string, producers: Map<string, NodeProto>, initializers: Map<string, TensorProto>): string | undefined {
  let node = producers.get(indices);
  if (node?.op_type === 'Add' && node.input[0]) node = producers.get(node.input[0]);
  const source = node?.op_type === 'Cast' ? initializers.get(node.input[0] ?? '') : undefined;
  return source && (source.data_type === DataType.UINT8 || source.data_type === DataType.UINT4) ? source.name : undefined;
}

export function parameterCounts(model: Model): ParameterCounts {
  const quantized = new Map<string, number>();
  const codebooks = new Set<string>();
  forEachGraph(model.proto, ({ graph }) => {
    const activationScales = new Set(graph.node.filter((n) => n.op_type === 'DynamicQuantizeLinear').map((n) => n.output[1]));
    const producers = new Map(graph.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
    const initializers = new Map(graph.initializer.map((t) => [t.name ?? '', t]));
    for (const n of graph.node) {
      // A codebook's values are stored once; the weight the model computes has an element per code.
      const codes =
        n.op_type === 'Gather' && n.input[0] && n.input[1] && initializers.has(n.input[0])
          ? codesBehind(n.input[1], producers, initializers)
          : undefined;
      if (codes) {
        quantized.set(codes, -1);
        quantized.set(n.input[0]!, 0);
        codebooks.add(n.input[0]!);
      }
      if ((n.op_type === 'MatMulInteger' || n.op_type === 'ConvInteger') && n.input[1]) {
        quantized.set(n.input[1], -1);
        if (n.input[3]) quantized.set(n.input[3], 0);
      }
      // The weight scale of the dynamic form is multiplied with the activation scale.
      if (n.op_type === 'Mul' && n.input.length === 2 && activationScales.has(n.input[0])) quantized.set(n.input[1]!, 0);
      // Scales and zero points are bookkeeping of the quantized weight, not parameters of their own.
      if (n.op_type === 'DequantizeLinear' && n.input[0]) {
        quantized.set(n.input[0], -1);
        for (const aux of n.input.slice(1)) if (aux) quantized.set(aux, 0);
      }
      if (n.op_type === 'MatMulNBits' && n.input[1]) {
        for (const aux of n.input.slice(2, 4)) if (aux) quantized.set(aux, 0);
        const k = n.attribute.find((a) => a.name === 'K')?.i,
          nn = n.attribute.find((a) => a.name === 'N')?.i;
        if (k !== undefined && nn !== undefined) quantized.set(n.input[1], toNumber(k) * toNumber(nn));
      }
    }
  });
  let count = 0,
    codebookValues = 0;
  forEachTensor(model.proto, ({ tensor }) => {
    const q = quantized.get(tensor.name ?? '');
    if (q !== undefined) count += q >= 0 ? q : numElements(tensor.dims);
    else if (dtypeInfo(tensor.data_type)?.isFloat) count += numElements(tensor.dims);
    if (codebooks.has(tensor.name ?? '')) codebookValues += numElements(tensor.dims);
  });
  return { effective: count, stored: count + codebookValues };
}

export function inspectModel(model: Model): InspectReport {
  const proto = model.proto;
  const graph = model.graph;
  const initializerNames = new Set(graph.initializer.map((t) => t.name ?? ''));
  const ops: Record<string, number> = {};
  let nodes = 0,
    subgraphs = 0;
  const countNodes = (list: import('../ir/onnx.js').NodeProto[]) => {
    for (const n of list) {
      const domain = normalDomain(n.domain);
      const key = domain ? `${domain}.${n.op_type ?? ''}` : (n.op_type ?? '');
      ops[key] = (ops[key] ?? 0) + 1;
      nodes++;
    }
  };
  forEachGraph(proto, ({ graph: g, depth }) => {
    if (depth > 0) subgraphs++;
    countNodes(g.node);
  });
  for (const f of proto.functions) countNodes(f.node);

  const tensors: TensorSummary[] = [];
  const forDuplicates: { t: import('../ir/onnx.js').TensorProto; bytes: number }[] = [];
  const byDtype: InspectReport['byDtype'] = {};
  let parameters = 0,
    weightBytes = 0,
    externalTensors = 0,
    externalBytes = 0;
  const externalFiles = new Set<string>();
  forEachTensor(proto, ({ tensor, place, depth }) => {
    const bytes = tensorByteLength(tensor);
    const elements = numElements(tensor.dims);
    const dtype = dtypeName(tensor.data_type);
    const range = fileRangeOf(tensor);
    let where: TensorWhere;
    if (range?.location !== undefined) {
      where = 'external';
      externalTensors++;
      externalBytes += bytes;
      externalFiles.add(range.location);
    } else if (place === 'sparse-initializer') where = 'sparse-initializer';
    else if (depth > 0) where = 'subgraph';
    else if (place === 'constant') where = 'constant';
    else if (place === 'attribute') where = 'attribute';
    else where = 'initializer';
    tensors.push({ name: tensor.name ?? '', dtype, shape: tensor.dims.map(toNumber), bytes, where });
    forDuplicates.push({ t: tensor, bytes });
    const entry = (byDtype[dtype] ??= { tensors: 0, elements: 0, bytes: 0 });
    entry.tensors++;
    entry.elements += elements;
    entry.bytes += bytes;
    weightBytes += bytes;
    if (dtypeInfo(tensor.data_type)?.isFloat) parameters += elements;
  });
  const quantized = findQuantizedWeights(model);
  const largest = [...tensors].sort((a, b) => b.bytes - a.bytes).slice(0, 10);
  const opsets: Record<string, number> = {};
  for (const o of proto.opset_import) opsets[normalDomain(o.domain) || 'ai.onnx'] = o.version === undefined ? 1 : toNumber(o.version);
  return {
    file: model.source?.given,
    fileBytes: model.source?.bytes,
    irVersion: toNumber(proto.ir_version ?? 0),
    producer: { name: proto.producer_name, version: proto.producer_version },
    opsets,
    inputs: graph.input.filter((i) => !initializerNames.has(i.name ?? '')).map(summarizeValue),
    outputs: graph.output.map(summarizeValue),
    nodes,
    ops: Object.fromEntries(Object.entries(ops).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
    parameters,
    weightBytes,
    byDtype,
    tensors,
    largest,
    external: { files: [...externalFiles], tensors: externalTensors, bytes: externalBytes },
    duplicates: countDuplicates(forDuplicates),
    subgraphs,
    functions: proto.functions.length,
    quantized: { tensors: quantized.length, bytes: quantized.reduce((a, q) => a + q.bytes, 0), byForm: countBy(quantized, (q) => q.label) },
  };
}

function shapeText(v: ValueSummary): string {
  return v.shape === null ? '(unknown rank)' : `[${v.shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** "quantized weights: 12 tensors, 1.2 MB: 10 DequantizeLinear int8, 2 ConvInteger uint8" (forms counted without their granularity). */
export function quantizedLine(q: InspectReport['quantized']): string {
  const counts = new Map<string, number>();
  for (const [form, n] of Object.entries(q.byForm)) {
    const short = form.replace(/ (per-tensor|per-axis|blocked)$/, '');
    counts.set(short, (counts.get(short) ?? 0) + n);
  }
  const forms = [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([f, n]) => `${n} ${f}`)
    .join(', ');
  return `quantized weights: ${q.tensors} tensor${q.tensors === 1 ? '' : 's'}, ${formatBytes(q.bytes)}: ${forms}`;
}

/** The report as `onnxpress inspect` prints it. */
export function renderInspect(unsafe: InspectReport): string {
  const r = printable(unsafe);
  const lines: string[] = [];
  lines.push(`${r.file ?? 'model'}  ${r.fileBytes !== undefined ? formatBytes(r.fileBytes) : ''}`.trimEnd());
  lines.push(
    `  IR ${r.irVersion}, opsets ${Object.entries(r.opsets)
      .map(([d, v]) => `${d} ${v}`)
      .join(', ')}${r.producer.name ? `, made by ${r.producer.name} ${r.producer.version ?? ''}`.trimEnd() : ''}`,
  );
  lines.push('', 'inputs');
  lines.push(table(r.inputs.map((v) => ['  ' + v.name, v.dtype, shapeText(v)])));
  lines.push('outputs');
  lines.push(table(r.outputs.map((v) => ['  ' + v.name, v.dtype, shapeText(v)])));
  lines.push(
    '',
    `${r.nodes} nodes${r.subgraphs ? ` (${r.subgraphs} subgraphs)` : ''}${r.functions ? `, ${r.functions} functions` : ''}: ` +
      Object.entries(r.ops)
        .slice(0, 12)
        .map(([op, n]) => `${op} ${n}`)
        .join(', ') +
      (Object.keys(r.ops).length > 12 ? ', …' : ''),
  );
  lines.push(
    '',
    `weights: ${formatCount(r.parameters)} floating-point parameters, ${formatBytes(r.weightBytes)} in ${r.tensors.length} tensors`,
  );
  lines.push(
    table(
      Object.entries(r.byDtype).map(([d, e]) => ['  ' + d, `${e.tensors} tensors`, formatCount(e.elements), formatBytes(e.bytes)]),
      [false, true, true, true],
    ),
  );
  if (r.external.tensors > 0)
    lines.push(`external data: ${r.external.tensors} tensors, ${formatBytes(r.external.bytes)} in ${r.external.files.join(', ')}`);
  if (r.quantized.tensors > 0) lines.push(quantizedLine(r.quantized));
  lines.push(
    `duplicates: ${r.duplicates.tensors} tensors repeat another (${formatBytes(r.duplicates.bytes)} in ${r.duplicates.groups} groups)`,
  );
  if (r.largest.length > 0) {
    lines.push('', 'largest tensors');
    lines.push(
      table(
        r.largest.slice(0, 5).map((t) => ['  ' + t.name, t.dtype, `[${t.shape.join(', ')}]`, formatBytes(t.bytes), t.where]),
        [false, false, false, true, false],
      ),
    );
  }
  return lines.join('\n');
}
