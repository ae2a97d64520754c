// Converting a model's default-domain opset upward, one opset at a time, node by node: each node
// whose op got a new definition at that opset is adapted, left as it is when only types or
// defaults-as-before were added, or refused. Model-local functions and subgraphs are converted
// too. Nothing changes unless every node converts: the conversion runs first on a copy of the
// model's structure (tensors shared, never edited), then, when it succeeded, on the model itself, in
// place, so that graphs and nodes keep their identity for callers that hold them (a pass raising the
// opset halfway through its work).
import { InputError, UsageError } from '../errors.js';
import type { AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, TrainingInfoProto } from '../ir/onnx.js';
import { ModelEditor } from '../ir/editor.js';
import { minIrVersion, normalDomain } from '../ir/opset.js';
import { toNumber } from '../ir/tensor.js';
import { subgraphAttributes } from '../ir/walk.js';
import { AdapterContext, type Site } from './context.js';
import { ValueFacts } from './facts.js';
import { ruleFor } from './registry.js';
import { DEPRECATED_AT, MAX_OPSET, SCHEMA_VERSIONS, schemaVersion } from './schemas.js';

/** The oldest opset converted from. */
export const MIN_SOURCE_OPSET = 6;

export interface ConversionEntry {
  op: string;
  /** The op's definition version in the source opset and in the target. */
  from: number;
  to: number;
  /** The op it became (Upsample → Resize, Scatter → ScatterElements). */
  becomes?: string;
  /** What was done: the adapters' descriptions, or 'same meaning' when only the version changed. */
  how: string;
  count: number;
}

export interface ConversionSummary {
  from: number;
  to: number;
  irVersion: { from: number; to: number };
  /** Nodes whose op was adapted. */
  converted: ConversionEntry[];
  /** Nodes whose op's definition changed in ways that need nothing done. */
  unchanged: ConversionEntry[];
  /** Default-domain nodes in the model (functions and subgraphs included), before conversion. */
  nodes: number;
  /** Nodes added by adapters (Constant, Shape, Flatten, Reshape). */
  added: number;
  /** Nodes of other domains, left alone. */
  otherDomain: number;
  /** Model-local functions and subgraphs converted. */
  functions: number;
  subgraphs: number;
}

interface Refusal {
  op: string;
  from: number;
  to: number;
  reason?: string;
  where: string;
}

interface SiteAt extends Site {
  from: number;
}

function isDefault(node: NodeProto): boolean {
  return normalDomain(node.domain) === '';
}

// A copy of the structure (node lists, nodes, attributes, subgraphs); tensors stay shared.
function cloneAttribute(a: AttributeProto): AttributeProto {
  return {
    ...a,
    ints: [...a.ints],
    floats: [...a.floats],
    strings: [...a.strings],
    g: a.g && cloneGraph(a.g),
    graphs: a.graphs.map(cloneGraph),
  };
}
function cloneNode(n: NodeProto): NodeProto {
  return { ...n, input: [...n.input], output: [...n.output], attribute: n.attribute.map(cloneAttribute) };
}
function cloneGraph(g: GraphProto): GraphProto {
  return {
    ...g,
    node: g.node.map(cloneNode),
    initializer: [...g.initializer],
    input: [...g.input],
    output: [...g.output],
    value_info: [...g.value_info],
  };
}
function cloneFunction(f: FunctionProto): FunctionProto {
  return { ...f, node: f.node.map(cloneNode), opset_import: f.opset_import.map((o) => ({ ...o })) };
}
function cloneTraining(t: TrainingInfoProto): TrainingInfoProto {
  return { ...t, initialization: t.initialization && cloneGraph(t.initialization), algorithm: t.algorithm && cloneGraph(t.algorithm) };
}

function defaultVersion(imports: ModelProto['opset_import']): number | undefined {
  const entry = imports.find((o) => normalDomain(o.domain) === '');
  return entry?.version === undefined ? undefined : toNumber(entry.version);
}

/** Every node list of the model with the facts known there, subgraphs after their parents. */
function collectSites(proto: ModelProto, from: number, edits: ModelEditor): { sites: SiteAt[]; functions: number; subgraphs: number } {
  const sites: SiteAt[] = [];
  let subgraphs = 0;
  const addSubgraphs = (nodes: NodeProto[], facts: ValueFacts, version: number, where: string) => {
    for (const node of nodes) {
      for (const { attribute, graph: g } of subgraphAttributes(node)) {
        subgraphs++;
        const inner = ValueFacts.ofGraph(g, facts);
        const at = `${where}, subgraph '${attribute.name ?? ''}' of node '${node.name || node.op_type}'`;
        sites.push({
          nodes: g.node,
          editor: edits.graph(g),
          outputs: new Set(g.output.map((o) => o.name ?? '')),
          facts: inner,
          where: at,
          from: version,
        });
        addSubgraphs(g.node, inner, version, at);
      }
    }
  };
  const addGraph = (g: GraphProto, where: string) => {
    const facts = ValueFacts.ofGraph(g);
    sites.push({ nodes: g.node, editor: edits.graph(g), outputs: new Set(g.output.map((o) => o.name ?? '')), facts, where, from });
    addSubgraphs(g.node, facts, from, where);
  };
  if (proto.graph) addGraph(proto.graph, 'the main graph');
  for (const t of proto.training_info) {
    if (t.initialization) addGraph(t.initialization, 'a training initialization graph');
    if (t.algorithm) addGraph(t.algorithm, 'a training algorithm graph');
  }
  for (const f of proto.functions) {
    const version = defaultVersion(f.opset_import) ?? from;
    const facts = ValueFacts.ofNodes(f.node);
    const where = `function '${f.name ?? ''}'`;
    sites.push({ nodes: f.node, editor: edits.graph(f), outputs: new Set(f.output), facts, where, from: version });
    addSubgraphs(f.node, facts, version, where);
  }
  return { sites, functions: proto.functions.length, subgraphs };
}

function refusalText(r: Refusal): string {
  const change = `${r.op} ${r.from}→${r.to}`;
  const where = r.where === 'the main graph' ? '' : ` (in ${r.where})`;
  return r.reason ? `${change}: ${r.reason}${where}` : `no adapter for ${change}${where}`;
}

/**
 * Converts the model's default-domain opset to `target` (at most 21, at least the model's), in
 * place. Throws a UsageError for a target out of range and an InputError naming every op it cannot
 * convert (the model is then left as it was).
 */
export function convertOpset(model: { proto: ModelProto }, target: number): ConversionSummary {
  const proto = model.proto;
  const from = defaultVersion(proto.opset_import);
  if (!Number.isInteger(target) || target > MAX_OPSET)
    throw new UsageError(`opset ${target}: onnxpress converts to opsets up to ${MAX_OPSET}`);
  if (from === undefined) throw new InputError('the model imports no default-domain (ai.onnx) opset to convert');
  if (target < from)
    throw new UsageError(`opset ${target} is older than the model's opset ${from}: onnxpress converts only to newer opsets`);
  if (from < MIN_SOURCE_OPSET)
    throw new InputError(`the model's opset ${from} is older than ${MIN_SOURCE_OPSET}, the oldest onnxpress converts from`);
  // A trial on a copy throws what cannot be converted; the same steps then run on the model.
  convertInPlace(structureCopy(proto), from, target);
  return convertInPlace(proto, from, target);
}

/** Whether the model's default opset can be converted to `target`: undefined, or the reason it cannot. */
export function conversionProblem(proto: ModelProto, target: number): string | undefined {
  try {
    const from = defaultVersion(proto.opset_import);
    if (from === undefined || from >= target) return undefined;
    if (target > MAX_OPSET || from < MIN_SOURCE_OPSET) return `opset conversion goes from ${MIN_SOURCE_OPSET} up to ${MAX_OPSET}`;
    convertInPlace(structureCopy(proto), from, target);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

function structureCopy(proto: ModelProto): ModelProto {
  return {
    ...proto,
    graph: proto.graph && cloneGraph(proto.graph),
    functions: proto.functions.map(cloneFunction),
    training_info: proto.training_info.map(cloneTraining),
    opset_import: proto.opset_import.map((o) => ({ ...o })),
  };
}

function convertInPlace(copy: ModelProto, from: number, target: number): ConversionSummary {
  const irFrom = toNumber(copy.ir_version ?? 3);
  const edits = new ModelEditor({ proto: copy });
  const { sites, functions, subgraphs } = collectSites(copy, from, edits);
  for (const f of copy.functions) for (const n of [...f.input, ...f.output]) edits.fresh(n);

  // Original nodes: what they were and what was done to them.
  const records = new Map<NodeProto, { op: string; from: number; hows: string[]; site: SiteAt }>();
  const refusals: Refusal[] = [];
  const refused = new Set<NodeProto>();
  let nodes = 0,
    otherDomain = 0;
  for (const site of sites) {
    for (const node of site.nodes) {
      if (!isDefault(node)) {
        otherDomain++;
        continue;
      }
      nodes++;
      const op = node.op_type ?? '';
      const version = schemaVersion(op, site.from);
      const base = { op, from: site.from, to: target, where: site.where };
      if (!SCHEMA_VERSIONS[op]) {
        refusals.push({ ...base, reason: `'${op}' is not an ONNX operator` });
        refused.add(node);
        continue;
      }
      if (version === undefined) {
        refusals.push({ ...base, reason: `${op} does not exist at opset ${site.from}` });
        refused.add(node);
        continue;
      }
      if (DEPRECATED_AT[op] !== undefined && DEPRECATED_AT[op]! <= site.from) {
        refusals.push({ ...base, reason: `${op} is deprecated at opset ${site.from}` });
        refused.add(node);
        continue;
      }
      records.set(node, { op, from: version, hows: [], site });
    }
  }
  // Whether a value is read anywhere in the model: a node of any list, or any list's outputs.
  const isRead = (name: string) => sites.some((s) => s.outputs.has(name) || s.editor.isRead(name));
  let added = 0;
  for (const site of sites) {
    for (let v = site.from + 1; v <= target; v++) {
      for (const node of [...site.nodes]) {
        if (!isDefault(node) || refused.has(node)) continue;
        const op = node.op_type ?? '';
        if (!SCHEMA_VERSIONS[op]?.includes(v)) continue;
        const rule = ruleFor(op, v);
        const record = records.get(node);
        const prev = schemaVersion(op, v - 1) ?? v - 1;
        if (rule.kind === 'unchanged') continue;
        if (rule.kind === 'refused') {
          refusals.push({ op, from: prev, to: v, reason: rule.reason, where: site.where });
          refused.add(node);
          continue;
        }
        const before = site.nodes.length;
        const ctx = new AdapterContext(node, site, v, edits.names, isRead);
        const result = rule.adapter.apply(ctx) ?? {};
        // Adapters change their node's inputs and outputs directly.
        site.editor.refresh(node);
        if (result.refused) {
          refusals.push({ op, from: prev, to: v, reason: result.refused, where: site.where });
          refused.add(node);
          continue;
        }
        added += site.nodes.length - before;
        record?.hows.push(`${op} ${v}: ${result.how ?? rule.adapter.how}`);
      }
    }
  }
  if (refusals.length > 0) {
    const seen = new Set<string>();
    const texts = refusals.map(refusalText).filter((t) => !seen.has(t) && seen.add(t));
    throw new InputError(
      `cannot convert from opset ${from} to ${target}: ${texts.slice(0, 8).join('; ')}${texts.length > 8 ? `; and ${texts.length - 8} more` : ''}`,
    );
  }

  const setDefault = (imports: ModelProto['opset_import']) => {
    for (const o of imports) if (normalDomain(o.domain) === '') o.version = target;
  };
  setDefault(copy.opset_import);
  for (const f of copy.functions) setDefault(f.opset_import);
  const irTo = Math.max(irFrom, minIrVersion(target));
  if (irTo !== irFrom) copy.ir_version = irTo;

  const converted = new Map<string, ConversionEntry>();
  const unchanged = new Map<string, ConversionEntry>();
  for (const [node, r] of records) {
    const finalOp = node.op_type ?? r.op;
    const to = schemaVersion(finalOp, target) ?? target;
    if (finalOp === r.op && to === r.from) continue;
    const meaningful = r.hows.filter((h) => !/: (unchanged|.*: unchanged)$/.test(h));
    const how = meaningful.length > 0 ? meaningful.map((h) => h.replace(/^\S+ \d+: /, '')).join('; ') : 'same meaning';
    const into = meaningful.length > 0 ? converted : unchanged;
    const key = `${r.op}|${r.from}|${finalOp}|${to}|${how}`;
    const entry = into.get(key);
    if (entry) entry.count++;
    else into.set(key, { op: r.op, from: r.from, to, ...(finalOp !== r.op ? { becomes: finalOp } : {}), how, count: 1 });
  }
  const order = (a: ConversionEntry, b: ConversionEntry) => a.op.localeCompare(b.op) || a.from - b.from;
  return {
    from,
    to: target,
    irVersion: { from: irFrom, to: irTo },
    converted: [...converted.values()].sort(order),
    unchanged: [...unchanged.values()].sort(order),
    nodes,
    added,
    otherDomain,
    functions,
    subgraphs,
  };
}

/** "Clip 6→11: min/max attributes to inputs ×3" */
export function conversionLine(e: ConversionEntry): string {
  return `${e.op} ${e.from}→${e.becomes ? `${e.becomes} ` : ''}${e.to}: ${e.how} ×${e.count}`;
}
