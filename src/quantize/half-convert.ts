// Moving a graph's float32 compute to float16 or bfloat16, node by node. The caller says which nodes
// may move (halfNodes); each value then has one type — half where a moved node makes it, or where it
// is an initializer or Constant that only moved nodes read — and a Cast is added on every edge where
// a value's type is not what its reader takes. Graph inputs and outputs keep float32 with keepIo.
// Tensors are replaced, never changed in place, so a trial on a copy of the graph leaves the
// model's own tensors as they were.
import { setData, type TensorData } from '../ir/data.js';
import { elementTypes } from '../ir/elem-types.js';
import { FLOAT16_MAX, type HalfConversion, type HalfFigures } from '../ir/half.js';
import { HalfOfFile } from '../kernels/half-file.js';
import { simdKernels } from '../kernels/simd.js';
import { weightErrorOf, type WeightError } from '../kernels/weight-error.js';
import type { Model } from '../ir/model.js';
import { GraphEditor, ModelEditor, SUBGRAPH_READ } from '../ir/editor.js';
import { DataType, type GraphProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../ir/onnx.js';
import { constantTensor, floatSource, numElements, type FloatSource } from '../ir/tensor.js';
import { halfInputs, halfOpOf, halfOutputs } from './half-ops.js';
import { intAttribute, makeNode } from '../ir/build.js';
import { forEachGraph } from '../ir/walk.js';

/** Ops that read values of any type and make a type of their own (shapes, sizes, a Cast's `to`): they need no Cast before them. */
const ANY_TYPE_READERS = new Set(['Shape', 'Size', 'Cast']);

export type HalfType = typeof DataType.FLOAT16 | typeof DataType.BFLOAT16;

export interface HalfPlanOptions {
  dtype: HalfType;
  /** The model's default-domain opset (some ops take a half type only from a version on). */
  opset: number;
  /** Why a node must keep float32 (blocked op, excluded, measured overflow), or undefined when it may move. */
  keep(node: NodeProto): string | undefined;
  /** Initializers with fewer elements keep float32 (their half readers get a Cast). */
  minSize: number;
  conversions: HalfConversions;
  /** The graph's element types (ir/elem-types.ts), when the caller has them for this same graph. */
  types?: Map<string, number>;
}

export interface HalfPlan {
  /** The nodes that move to the half type. */
  moved: Set<NodeProto>;
  /** Nodes with float32 values that stay float32, and why. */
  kept: { node: NodeProto; reason: string }[];
}

const typeName = (dtype: HalfType) => (dtype === DataType.FLOAT16 ? 'float16' : 'bfloat16');

/**
 * Each float32 tensor converted once, when first asked (the plan's range check, a trial, the final
 * rewrite all read the same conversion): one read of its values and one pass over them. With
 * `deferFromFiles`, a weight still in its file that nothing has converted yet is assumed to fit and
 * left to be converted as it is written (kernels/half-file.ts; PassContext.deferConversions).
 */
export class HalfConversions {
  private readonly done = new Map<TensorProto, HalfConversion>();
  constructor(
    readonly dtype: HalfType,
    private readonly deferFromFiles = false,
  ) {}

  of(t: TensorProto): HalfConversion {
    let c = this.done.get(t);
    if (!c) this.done.set(t, (c = simdKernels().toHalf(floatSource(t), this.dtype === DataType.BFLOAT16)));
    return c;
  }

  /** The values still in a file, when this tensor's conversion is left to the writer. */
  private deferred(t: TensorProto): FloatSource | undefined {
    if (!this.deferFromFiles || this.done.has(t) || t.data_type !== DataType.FLOAT) return undefined;
    const source = floatSource(t);
    return source instanceof Float32Array ? undefined : source;
  }

  /**
   * Whether the tensor's values fit the half type (bfloat16 has float32's range). A deferred one is
   * assumed to: its conversion checks, and compress() runs again without deferring if it does not.
   */
  fits(t: TensorProto): boolean {
    if (this.dtype === DataType.BFLOAT16 || this.deferred(t)) return true;
    const largest = this.of(t).largest;
    return largest <= FLOAT16_MAX;
  }

  /** The tensor's half-precision data and, once converted, its error. */
  stored(t: TensorProto): { data: TensorData; error: () => WeightError | undefined } {
    const source = this.deferred(t);
    if (source) {
      const half = new HalfOfFile(t.name ?? '', source, this.dtype === DataType.BFLOAT16);
      return { data: half, error: () => half.figures && errorOf(half.figures) };
    }
    const c = this.of(t);
    const error = errorOf(c);
    return { data: new Uint8Array(c.bits.buffer), error: () => error };
  }
}

function errorOf(f: HalfFigures): WeightError {
  return weightErrorOf(f.maxAbsError, f.errorSquares, f.squares);
}

/** Which nodes of the main graph move to the half type, and why the others with float32 values do not. */
export function planHalf(graph: GraphProto, options: HalfPlanOptions): HalfPlan {
  const types = options.types ?? elementTypes(graph);
  const initializers = new Map(graph.initializer.map((t) => [t.name ?? '', t]));
  const index = new GraphEditor(graph);
  const outputs = index.outputNames();
  const used = (name: string) => index.isRead(name) || outputs.has(name);
  const readInside = (name: string) => index.consumers(name).some((u) => u.index === SUBGRAPH_READ);
  const outOfRange = (name: string): number | undefined => {
    const t = initializers.get(name);
    if (!t || t.data_type !== DataType.FLOAT || options.conversions.fits(t)) return undefined;
    return options.conversions.of(t).largest;
  };
  const moved = new Set<NodeProto>();
  const kept: HalfPlan['kept'] = [];
  const name = typeName(options.dtype);
  for (const node of graph.node) {
    const floatIn = node.input.filter((i) => i && types.get(i) === DataType.FLOAT);
    const floatOut = node.output.filter((o) => o && types.get(o) === DataType.FLOAT);
    // Constant values are data: they follow their readers (applyHalf), they compute nothing.
    if (
      (floatIn.length === 0 && floatOut.length === 0) ||
      (!node.domain && (node.op_type === 'Constant' || ANY_TYPE_READERS.has(node.op_type ?? '')))
    )
      continue;
    const keep = (reason: string) => kept.push({ node, reason });
    const op = halfOpOf(node);
    if (!op || (options.dtype === DataType.BFLOAT16 && !op.bfloat16) || (op.minOpset !== undefined && options.opset < op.minOpset)) {
      keep(`ONNX Runtime's CPU provider has no ${name} ${node.domain ? `${node.domain}.` : ''}${node.op_type} (measured)`);
      continue;
    }
    const reason = options.keep(node);
    if (reason) {
      keep(reason);
      continue;
    }
    const ins = halfInputs(op, node.input.length).filter((i) => node.input[i]);
    const outs = halfOutputs(op, node.output.length);
    const unknown = [...ins.map((i) => node.input[i]!), ...outs.map((i) => node.output[i]!)].filter((v) => v && !types.has(v));
    if (unknown.length > 0) {
      keep(`the type of '${unknown[0]}' is not declared and does not follow from the graph`);
      continue;
    }
    if (
      ins.some((i) => types.get(node.input[i]!) !== DataType.FLOAT) ||
      outs.some((i) => node.output[i] && types.get(node.output[i]!) !== DataType.FLOAT)
    ) {
      keep('its values are not float32');
      continue;
    }
    const otherOutputUsed = node.output.some((o, i) => o && !outs.includes(i) && used(o));
    if (otherOutputUsed) {
      keep(`an output ${name} has no form for is used`);
      continue;
    }
    if (outs.some((i) => readInside(node.output[i]!))) {
      keep('its output is read inside a subgraph, which stays float32');
      continue;
    }
    const large = ins.map((i) => [node.input[i]!, outOfRange(node.input[i]!)] as const).find(([, max]) => max !== undefined);
    if (large) {
      keep(`'${large[0]}' holds values up to ${large[1]}, beyond float16's range`);
      continue;
    }
    moved.add(node);
  }
  dropIsolated(graph, moved, kept, initializers);
  return { moved, kept };
}

/** Ops that only move or select values: in the half type they save no arithmetic. */
const MOVES_ONLY = new Set([
  'Concat',
  'DepthToSpace',
  'Expand',
  'Flatten',
  'Gather',
  'Identity',
  'Pad',
  'Reshape',
  'Slice',
  'SpaceToDepth',
  'Split',
  'Squeeze',
  'Tile',
  'Transpose',
  'Unsqueeze',
]);

/**
 * Takes back groups of moved nodes (joined by the values they pass in the half type) that read no
 * weight and either only move values or are a single node: between float32 nodes, moving them
 * would only add Casts and round their values.
 */
function dropIsolated(graph: GraphProto, moved: Set<NodeProto>, kept: HalfPlan['kept'], initializers: Map<string, TensorProto>): void {
  const constants = new Set(graph.node.filter((n) => n.op_type === 'Constant' && !n.domain).map((n) => n.output[0]));
  const parent = new Map<NodeProto, NodeProto>([...moved].map((n) => [n, n]));
  const root = (n: NodeProto): NodeProto => {
    while (parent.get(n) !== n) n = parent.get(n)!;
    return n;
  };
  const producer = new Map<string, NodeProto>();
  for (const node of moved)
    for (const i of halfOutputs(halfOpOf(node)!, node.output.length)) if (node.output[i]) producer.set(node.output[i]!, node);
  const readsWeight = new Set<NodeProto>();
  for (const node of moved) {
    for (const i of halfInputs(halfOpOf(node)!, node.input.length)) {
      const v = node.input[i];
      if (!v) continue;
      if (initializers.has(v) || constants.has(v)) readsWeight.add(node);
      const from = producer.get(v);
      if (from) parent.set(root(node), root(from));
    }
  }
  const groups = new Map<NodeProto, NodeProto[]>();
  for (const node of moved) {
    const r = root(node);
    let list = groups.get(r);
    if (!list) groups.set(r, (list = []));
    list.push(node);
  }
  for (const members of groups.values()) {
    if (members.some((n) => readsWeight.has(n))) continue;
    if (members.length > 1 && members.some((n) => !MOVES_ONLY.has(n.op_type ?? ''))) continue;
    for (const node of members) {
      moved.delete(node);
      kept.push({ node, reason: 'among float32 nodes, reading no weight: moving it would only add Casts' });
    }
  }
}

export interface Converted {
  before: TensorProto;
  after: TensorProto;
  /** The rounding error; undefined until a conversion left to the writer has run. */
  error: () => WeightError | undefined;
}

export interface HalfResult {
  /** Initializers and Constant values stored in the half type now: their old and new tensors, and the rounding error. */
  converted: Converted[];
  casts: number;
}

function halfTensor(t: TensorProto, conversions: HalfConversions): { tensor: TensorProto; error: Converted['error'] } {
  const { data, error } = conversions.stored(t);
  const tensor: TensorProto = { ...t, data_type: conversions.dtype };
  setData(tensor, data);
  return { tensor, error };
}

function setElemType(info: ValueInfoProto, dtype: number): ValueInfoProto {
  if (!info.type?.tensor_type) return info;
  return { ...info, type: { ...info.type, tensor_type: { ...info.type.tensor_type, elem_type: dtype } } };
}

/** A weight's names for include/exclude: its own, then its readers' (as pass/select.ts matches weights). */
function matchNames(value: string, readers: { node: NodeProto }[]): string[] {
  return [value, ...readers.map((r) => r.node.name ?? '')].filter((n) => n !== '');
}

/** Weights at least this large, read only by nodes that keep float32, are stored in the half type and cast back (weightOnly). */
export const WEIGHT_ONLY_MIN_ELEMENTS = 256;

/**
 * Applies a plan to `model`'s main graph: moved nodes compute in the half type, Casts join them to
 * the rest. Returns the tensors converted and the Casts added.
 */
export function applyHalf(
  model: Model,
  plan: HalfPlan,
  options: {
    dtype: HalfType;
    keepIo: boolean;
    minSize: number;
    weightOnly: boolean;
    /** Whether include/exclude take a weight matched by these names (its own, then its readers'); default all. */
    weightChosen?: (names: string[]) => boolean;
    conversions: HalfConversions;
    /** The graph's element types before any edit, when the caller has them (see HalfPlanOptions). */
    types?: Map<string, number>;
    /**
     * For a trial run, not an output: weights stay float32 and Casts make their half values (and
     * weight-only's float32 readers read them cast there and back), so the trial refers to the
     * original's bytes where they lie instead of a converted copy that must be written out. ONNX
     * Runtime folds the Casts as it loads the trial; the values are the same.
     */
    castWeights?: boolean;
  },
): HalfResult {
  const graph = model.graph;
  const { dtype } = options;
  const types = options.types ?? elementTypes(graph);
  const edits = new ModelEditor(model);
  const editor = edits.graph(graph);
  const names = edits.names;
  const initializerAt = new Map(graph.initializer.map((t, i) => [t.name ?? '', i]));
  const constants = new Map<string, NodeProto>();
  for (const n of graph.node)
    if (n.op_type === 'Constant' && !n.domain && n.output[0] && constantTensor(n)?.data_type === DataType.FLOAT)
      constants.set(n.output[0], n);
  const graphInputs = new Set(graph.input.map((i) => i.name ?? ''));
  const graphOutputs = new Set(graph.output.map((o) => o.name ?? ''));

  // Who reads a float32 value in an input, and whether in the half type (Shape and Size read any type).
  const readsAnyType = (node: NodeProto) => !node.domain && ANY_TYPE_READERS.has(node.op_type ?? '');
  const readersOf = (name: string) =>
    editor
      .consumers(name)
      .filter((u) => u.index !== SUBGRAPH_READ && !readsAnyType(u.node))
      .map((u) => ({ ...u, half: plan.moved.has(u.node) && halfInputs(halfOpOf(u.node)!, u.node.input.length).includes(u.index) }));
  // The float32 values read, in the order nodes first read them (the order names and Casts are made in).
  const read = new Set<string>();
  for (const node of graph.node)
    if (!readsAnyType(node)) for (const name of node.input) if (name && types.get(name) === DataType.FLOAT) read.add(name);
  const producedHalf = new Set<string>();
  for (const node of plan.moved)
    for (const i of halfOutputs(halfOpOf(node)!, node.output.length)) if (node.output[i]) producedHalf.add(node.output[i]!);

  const converted: HalfResult['converted'] = [];
  const added: { node: NodeProto; after?: NodeProto }[] = [];
  const cast = (from: string, to: string, toType: number, after: NodeProto | undefined) => {
    added.push({ node: makeNode('Cast', [from], [to], names.fresh(`${to}_Cast`), [intAttribute('to', toType)]), after });
  };
  const halfName = typeName(dtype);

  const halfValues = new Set(producedHalf);
  for (const value of new Set([...read, ...producedHalf])) {
    const list = types.get(value) === DataType.FLOAT ? readersOf(value) : [];
    const halfReaders = list.filter((r) => r.half);
    const floatReaders = list.filter((r) => !r.half);
    const isOutput = graphOutputs.has(value);
    if (producedHalf.has(value)) {
      // Made in the half type. A graph output kept float32 is renamed away and cast back under its name.
      let halfValue = value;
      if (isOutput && options.keepIo) {
        halfValue = names.fresh(`${value}_${halfName}`);
        halfValues.delete(value);
        const producer = editor.producer(value)!;
        producer.output.forEach((o, i) => {
          if (o === value) editor.setOutput(producer, i, halfValue);
        });
        for (const r of halfReaders) editor.setInput(r.node, r.index, halfValue);
        cast(halfValue, value, DataType.FLOAT, producer);
      } else if (floatReaders.length > 0) {
        const back = names.fresh(`${value}_float32`);
        cast(value, back, DataType.FLOAT, editor.producer(value));
        for (const r of floatReaders) editor.setInput(r.node, r.index, back);
      }
      continue;
    }
    const initializer = initializerAt.get(value);
    if (halfReaders.length === 0) {
      // Read in float32 only: a large weight may still be stored in the half type and cast back.
      const t = initializer === undefined ? undefined : graph.initializer[initializer]!;
      if (
        !options.weightOnly ||
        !t ||
        isOutput ||
        graphInputs.has(value) ||
        numElements(t.dims) < Math.max(options.minSize, WEIGHT_ONLY_MIN_ELEMENTS) ||
        !(options.weightChosen?.(matchNames(value, floatReaders)) ?? true)
      )
        continue;
      if (!options.conversions.fits(t)) continue;
      if (options.castWeights) {
        const half = names.fresh(`${value}_${halfName}`),
          back = names.fresh(`${value}_float32`);
        cast(value, half, dtype, undefined);
        cast(half, back, DataType.FLOAT, undefined);
        for (const r of floatReaders) editor.setInput(r.node, r.index, back);
        continue;
      }
      const half = halfTensor(t, options.conversions);
      const after = { ...half.tensor, name: names.fresh(`${value}_${halfName}`) };
      editor.replaceInitializer(t, after);
      converted.push({ before: t, after, error: half.error });
      cast(after.name, value, DataType.FLOAT, undefined);
      continue;
    }
    const constant = constants.get(value);
    const allHalf = floatReaders.length === 0 && !isOutput && !graphInputs.has(value);
    // (castWeights: such an initializer goes the way of one with float32 readers too, through a Cast below.)
    if (
      allHalf &&
      initializer !== undefined &&
      !options.castWeights &&
      numElements(graph.initializer[initializer]!.dims) >= options.minSize
    ) {
      const before = graph.initializer[initializer]!;
      const { tensor: after, error } = halfTensor(before, options.conversions);
      editor.replaceInitializer(before, after);
      converted.push({ before, after, error });
      halfValues.add(value);
      continue;
    }
    if (allHalf && constant) {
      const attr = constant.attribute.findIndex((a) => a.name === 'value' && a.t);
      if (attr >= 0) {
        const before = constant.attribute[attr]!.t!;
        const { tensor: after, error } = halfTensor(before, options.conversions);
        constant.attribute = constant.attribute.map((a, i) => (i === attr ? { ...a, t: after } : a));
        converted.push({ before, after, error });
        halfValues.add(value);
        continue;
      }
    }
    if (graphInputs.has(value) && !options.keepIo && initializer === undefined) continue; // the input itself becomes half below
    const toHalf = names.fresh(`${value}_${halfName}`);
    cast(value, toHalf, dtype, editor.producer(value));
    for (const r of halfReaders) editor.setInput(r.node, r.index, toHalf);
  }

  // Without keepIo, float32 graph inputs read in the half type become half; float32 readers get a Cast back.
  if (!options.keepIo) {
    graph.input = graph.input.map((input) => {
      const name = input.name ?? '';
      const list = types.get(name) === DataType.FLOAT ? readersOf(name) : [];
      if (initializerAt.has(name) || types.get(name) !== DataType.FLOAT || !list.some((r) => r.half)) return input;
      const floatReaders = list.filter((r) => !r.half);
      if (floatReaders.length > 0) {
        const back = names.fresh(`${name}_float32`);
        cast(name, back, DataType.FLOAT, undefined);
        for (const r of floatReaders) editor.setInput(r.node, r.index, back);
      }
      return setElemType(input, dtype);
    });
  }
  // Declared types follow the values.
  graph.value_info = graph.value_info.map((v) =>
    halfValues.has(v.name ?? '') && types.get(v.name ?? '') === DataType.FLOAT ? setElemType(v, dtype) : v,
  );
  graph.output = graph.output.map((o) => (halfValues.has(o.name ?? '') && !options.keepIo ? setElemType(o, dtype) : o));

  // Casts go right after their producer (graph inputs and initializers: first), keeping the order valid.
  const after = new Map<NodeProto | undefined, NodeProto[]>();
  for (const a of added) {
    let list = after.get(a.after);
    if (!list) after.set(a.after, (list = []));
    list.push(a.node);
  }
  editor.insertAfterEach(after);
  const inSubgraphs = options.weightOnly ? storeSubgraphWeights(model, edits, options) : { converted: [], casts: 0 };
  return { converted: [...converted, ...inSubgraphs.converted], casts: added.length + inSubgraphs.casts };
}

/**
 * Weights inside subgraphs (If branches, Loop and Scan bodies), which the plan leaves in float32 (the
 * CPU provider has no float16 If), and the main graph's Constant values still float32: stored in the
 * half type and cast back where they are declared, as the main graph's float32-only initializers are.
 * The Silero VADs keep their whole network inside an If, or their LSTM weights in Constants.
 */
function storeSubgraphWeights(
  model: Model,
  edits: ModelEditor,
  options: { dtype: HalfType; minSize: number; weightChosen?: (names: string[]) => boolean; conversions: HalfConversions },
): { converted: HalfResult['converted']; casts: number } {
  const chosen = (value: string, readers: { node: NodeProto }[]) => options.weightChosen?.(matchNames(value, readers)) ?? true;
  const converted: HalfResult['converted'] = [];
  let casts = 0;
  const large = (t: TensorProto) =>
    t.data_type === DataType.FLOAT &&
    numElements(t.dims) >= Math.max(options.minSize, WEIGHT_ONLY_MIN_ELEMENTS) &&
    options.conversions.fits(t);
  forEachGraph(model.proto, ({ graph, depth }) => {
    const editor = edits.graph(graph);
    const outputs = new Set(graph.output.map((o) => o.name ?? ''));
    const castBack = (from: string, to: string) =>
      makeNode('Cast', [from], [to], edits.names.fresh(`${to}_Cast`), [intAttribute('to', DataType.FLOAT)]);
    const after = new Map<NodeProto | undefined, NodeProto[]>();
    for (const node of [...graph.node]) {
      const value = node.output[0];
      const attr = node.attribute.findIndex((a) => a.name === 'value' && a.t);
      if (node.op_type !== 'Constant' || node.domain || !value || outputs.has(value) || attr < 0) continue;
      const before = node.attribute[attr]!.t!;
      if (!large(before) || !chosen(value, [{ node }, ...editor.consumers(value)])) continue;
      const { tensor, error } = halfTensor(before, options.conversions);
      const stored = edits.names.fresh(`${value}_${typeName(options.dtype)}`);
      node.attribute = node.attribute.map((a, i) => (i === attr ? { ...a, t: tensor } : a));
      editor.setOutput(node, 0, stored);
      after.set(node, [castBack(stored, value)]);
      converted.push({ before: { ...before, name: value }, after: tensor, error });
    }
    // The main graph's initializers that its own nodes read were handled with the plan (applyHalf);
    // those read only inside subgraphs were not.
    const onlyInSubgraphs = (name: string) => editor.consumers(name).every((u) => u.index === SUBGRAPH_READ);
    for (const t of [...graph.initializer]) {
      const value = t.name ?? '';
      if (!large(t) || outputs.has(value) || (depth === 0 && !onlyInSubgraphs(value)) || !chosen(value, editor.consumers(value))) continue;
      const { tensor, error } = halfTensor(t, options.conversions);
      const stored = { ...tensor, name: edits.names.fresh(`${value}_${typeName(options.dtype)}`) };
      editor.replaceInitializer(t, stored);
      after.set(undefined, [...(after.get(undefined) ?? []), castBack(stored.name, value)]);
      converted.push({ before: t, after: stored, error });
    }
    casts += [...after.values()].reduce((n, list) => n + list.length, 0);
    editor.insertAfterEach(after);
  });
  return { converted, casts };
}
