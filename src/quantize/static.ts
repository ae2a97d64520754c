// Static int8 (--quantize int8:mode=static): Conv, Gemm and MatMul computed in integers with
// activation scales measured ahead of time, in the QDQ form ONNX Runtime fuses into its integer
// kernels (QLinearConv, QGemm, QLinearMatMul, MatMulIntegerToFloat). Weights are stored int8 per
// channel behind a DequantizeLinear, Conv and Gemm biases int32 with scale input_scale × weight_scale
// (a Mul of the two scales the model already holds), and each activation a compute node reads gets a
// QuantizeLinear → DequantizeLinear pair with one scale and zero point per tensor from the calibrated
// range. As ONNX Runtime's own quantizer places them:
// - a Conv's output is quantized too (QLinearConv writes 8 bits); a Gemm's or MatMul's only where an
//   integer node reads it next (elsewhere it stays float: QGemm and MatMulIntegerToFloat write float,
//   so the last layer needs no DequantizeLinear and its bias is added in the kernel);
// - a Relu reading a compute node alone is dropped under asymmetric activations: the output's
//   quantization to [0, max] (zero point at the lowest code) clips exactly as the Relu did;
// - Reshape, Flatten, Transpose, Squeeze, Unsqueeze and MaxPool between quantized values get the pair
//   on their output with their input's scale, which ONNX Runtime removes to run them on the 8-bit codes.
// A Conv reading fewer than MIN_INTEGER_CONV_CHANNELS channels whose dot products are also shorter than
// MIN_INTEGER_CONV_DEPTH (channels × kernel area: a greyscale or RGB first layer with a small kernel)
// stays float, weight included: ONNX Runtime's QLinearConv is slower there than its float Conv, which a
// dequantized weight would also slow (bench/RESULTS.md, conv-channels.mjs); its output is quantized
// for the next node.
// An Add of two activations or a Concat whose output is quantized gets its inputs quantized too, so
// that ONNX Runtime runs it on the codes (QLinearAdd, QLinearConcat): a CNN's residual stream stays in
// 8 bits. Everything else (Softmax, LayerNormalization, Gelu, a transformer's residual Adds, read by
// LayerNormalization) stays in float.
import { InputError } from '../errors.js';
import { dtypeName } from '../ir/dtype.js';
import { requireDefaultOpset } from '../convert/raise.js';
import { intAttribute, makeNode, replaceWeight } from '../ir/build.js';
import { ModelEditor, type GraphEditor } from '../ir/editor.js';
import { elementTypes } from '../ir/elem-types.js';
import type { Model } from '../ir/model.js';
import type { NameAllocator } from '../ir/names.js';
import { DataType, type NodeProto, type TensorProto } from '../ir/onnx.js';
import { opsetVersion } from '../ir/opset.js';
import { floatSource, floatValues, makeTensor, tensorByteLength, toNumber } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';
import { INT8, UINT8, clipRatios, groupParams, type QuantizeResult } from '../kernels/quantize.js';
import { KernelPool, inOrder, windowFor } from '../kernels/pool.js';
import type { OptionSpecs } from '../pass/options.js';
import { usedOps } from '../pass/ops.js';
import type { PassContext, PassSummary, Skip } from '../pass/pass.js';
import { chooseWeights } from '../pass/select.js';
import { foldBatchNorms } from './fold-batchnorm.js';
import { readRangesFile, type RangesRecord } from './ranges-file.js';
import { calibrateRanges, type RangeMethod } from './ranges.js';
import type { Range } from './range-methods.js';
import { dequantizeWeight, type WeightNaming } from './replace.js';

/** The options int8 takes for mode=static alone (no defaults: absent unless given, so other modes can refuse them). */
export const STATIC_OPTIONS = {
  activations: { type: 'enum', choices: ['uint8', 'int8'], description: 'mode=static: the type of quantized activations (default uint8)' },
  'activation-symmetric': {
    type: 'boolean',
    description: 'mode=static: activations with zero point 0 (int8) or 128 (uint8) instead of a calibrated one (default false)',
  },
  method: {
    type: 'enum',
    choices: ['minmax', 'percentile', 'entropy', 'mse'],
    description:
      "mode=static: how an activation's range is chosen from the calibration data: its extremes, a percentile of its values, the clipping with the least KL divergence, or the range with the least mean squared quantization error (default minmax)",
  },
  percentile: {
    type: 'number',
    min: 50,
    max: 100,
    description: 'method=percentile: the share of values the range keeps, in percent (default 99.999)',
  },
  ranges: {
    type: 'string',
    description:
      'mode=static: activation ranges from a file instead of calibrating: a JSON report of an earlier mode=static run (--report x.json) or a file with its `ranges` object',
  },
} as const satisfies OptionSpecs;

export const DEFAULT_PERCENTILE = 99.999;

export interface StaticOptionValues {
  readonly mode: string;
  readonly granularity: 'channel' | 'tensor';
  readonly symmetric: boolean;
  readonly search: 'none' | 'mse';
  readonly calibration?: string;
  readonly ops: string;
  readonly include?: string;
  readonly exclude?: string;
  readonly activations?: 'uint8' | 'int8';
  readonly 'activation-symmetric'?: boolean;
  readonly method?: RangeMethod;
  readonly percentile?: number;
  readonly ranges?: string;
}

/** What is wrong with the static options, checked before the model is read (a usage error). */
export function staticProblem(options: StaticOptionValues, exists: (path: string) => boolean): string | undefined {
  const given = (Object.keys(STATIC_OPTIONS) as (keyof typeof STATIC_OPTIONS)[]).filter((k) => options[k] !== undefined);
  if (options.mode !== 'static') return given.length ? `${given[0]}= applies to mode=static` : undefined;
  if (options.calibration === undefined && options.ranges === undefined) {
    return 'mode=static needs calibration=DATA (inputs to measure activation ranges on: a test_data_set folder, .npz, .npy or .pb) or ranges=FILE';
  }
  if (!options.symmetric)
    return "mode=static stores weights as symmetric int8 (what ONNX Runtime's integer kernels take): symmetric=false does not apply";
  if (options.ranges !== undefined && options.calibration !== undefined)
    return 'calibration= and ranges= both give activation ranges: give one';
  if (options.ranges !== undefined && options.method !== undefined)
    return 'method= chooses ranges from calibration data; with ranges=FILE the file gives them';
  if (options.percentile !== undefined && options.method !== 'percentile') return 'percentile= applies to method=percentile';
  if (options.ranges !== undefined && !exists(options.ranges)) return `ranges: ${options.ranges}: no such file`;
  return undefined;
}

type ComputeOp = 'Conv' | 'Gemm' | 'MatMul';
const COMPUTE_OPS: readonly ComputeOp[] = ['Conv', 'Gemm', 'MatMul'];

// The nodes and initializers static adds are many and small: in a small model their names weigh
// (the digits MLP's are 10 % of its quantized file), so the nodes go unnamed (their outputs are
// named) and suffixes are short.
const COMPACT_WEIGHT_NAMING: WeightNaming = { codes: '_q', zeroPoint: '_zp', nodeName: false };

/**
 * A Conv with one group, fewer input channels than MIN_INTEGER_CONV_CHANNELS and dot products shorter
 * than MIN_INTEGER_CONV_DEPTH (channels × kernel area) stays float: ONNX Runtime's QLinearConv is slower
 * there. Measured with 3×3 kernels: slower below 8 channels, faster from 8 (depth 72); with a 7×7
 * kernel, 1 channel (depth 49) twice as slow, 3 channels (ResNet's first layer, depth 147) as fast or
 * faster (bench/RESULTS.md). 1×1 kernels on many channels are fast in integers whatever their depth.
 */
export const MIN_INTEGER_CONV_CHANNELS = 8;
export const MIN_INTEGER_CONV_DEPTH = 72;

/** Ops ONNX Runtime runs on 8-bit codes (QLinearAdd, QLinearConcat) when every input and the output are quantized. */
const INTEGER_JOINS = new Set(['Add', 'Concat']);

/** Ops that read only their input's shape. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

/** Ops between quantized values that ONNX Runtime runs on the codes when input and output share a scale. */
const PASS_THROUGH = new Set(['Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze', 'MaxPool']);

interface Compute {
  node: NodeProto;
  op: ComputeOp;
  /** The activation it reads, by the name its pair is planned under (a graph input's readers move to a new name). */
  input: string;
  /** Its output's name, which its DequantizeLinear writes once the output is quantized. */
  output: string;
  weight: Weight;
  /** The weight's output-channel axis (undefined for per-tensor scales). */
  axis: number | undefined;
  /** A Conv's or Gemm's bias, stored int32. */
  bias?: TensorProto;
  /** Whether its output is quantized whatever reads it (a Conv's: QLinearConv writes 8 bits). */
  quantizedOutput: boolean;
}

/** Where a quantized value's scale and zero point come from: its own range, or another value's parameters. */
type ParamSource = { range: string } | { same: string };

interface Plan {
  /** Values (as their readers name them) that get a QuantizeLinear → DequantizeLinear pair. */
  values: Map<string, ParamSource>;
  /** For a value whose Relu is dropped: the compute output the QuantizeLinear reads instead. */
  rawOf: Map<string, string>;
  removed: Set<NodeProto>;
  /** Filled as the pairs go in: the names QuantizeLinear reads (what the producers now write). */
  quantizedRaw: Set<string>;
}

interface Params {
  scale: number;
  zeroPoint: number;
  scaleName: string;
  zeroPointName: string;
}

/**
 * Runs mode=static on `model`, filling `summary`; returns the names of the weights it quantized (the
 * int8 pass stores the others weight-only, and reports what its selection leaves out).
 */
export async function quantizeStatic(
  model: Model,
  options: StaticOptionValues,
  context: PassContext,
  summary: PassSummary,
): Promise<Set<string>> {
  const graph = model.graph;
  const ops = options.ops
    .split(/[,|]/)
    .map((s) => s.trim())
    .filter((op) => ['Conv', 'Gemm', 'MatMul'].includes(op));
  // Every weight of a node computed in integers is quantized, whatever its size: a node with one
  // float weight could not run as QLinearConv. include/exclude choose the nodes.
  const select = () => chooseWeights(model, { ...options, 'min-size': 0, ops: ops.join(',') });
  const current = opsetVersion(model.proto, '') ?? 1;
  if (current < 13) {
    try {
      const change = requireDefaultOpset(model.proto, 13, usedOps(model));
      if (change)
        summary.notes.push(`default opset raised from ${change.from} to ${change.to} for per-channel QuantizeLinear/DequantizeLinear`);
    } catch (e) {
      summary.notes.push(`static: nothing computed in integers, as mode=static needs opset 13: ${(e as Error).message}`);
      return new Set();
    }
  }
  const first = select().weights;
  const edits = new ModelEditor(model);
  const names = edits.names;
  const g = edits.graph(graph);
  const folded = foldBatchNorms(g, names, (conv) => first.some((w) => w.name === conv.input[1] && w.uses.every((u) => u.node === conv)));
  if (folded.length)
    summary.notes.push(`${folded.length} BatchNormalization folded into the Conv before ${folded.length === 1 ? 'it' : 'them'}`);
  // The selection again, of the weights as the folding left them.
  const floatCompute: Skip[] = [];
  const keptFloat: Skip[] = [];
  const computes = findComputes(g, select().weights, options.granularity, floatCompute, keptFloat);
  if (floatCompute.length) {
    summary.notes.push(
      `static: ${floatCompute.length} weight${floatCompute.length === 1 ? '' : 's'} of nodes left to compute in float: ${floatCompute.map((s) => `${s.name} (${s.reason})`).join('; ')}`,
    );
  }
  if (keptFloat.length) {
    summary.notes.push(
      `static: ${keptFloat.length} Conv${keptFloat.length === 1 ? '' : 's'} kept in float, weight${keptFloat.length === 1 ? '' : 's'} included: ${keptFloat.map((s) => `${s.name} (${s.reason})`).join('; ')}`,
    );
  }
  if (computes.length === 0) return new Set(keptFloat.map((s) => s.name));
  const asymmetric = !options['activation-symmetric'];
  const plan = planValues(g, computes, asymmetric);
  const sources = [...new Set([...plan.values.values()].flatMap((s) => ('range' in s ? [s.range] : [])))];
  const ranges = await rangesFor(model, sources, options, summary);
  const activation = options.activations === 'int8' ? INT8 : UINT8;
  const params = new Map<string, Params>();
  // One initializer per zero point value: most are 0 (a Relu's output) or the type's middle.
  const zeroPoints = new Map<number, string>();
  const zeroPointName = (zeroPoint: number): string => {
    let name = zeroPoints.get(zeroPoint);
    if (name === undefined) {
      name = names.fresh(`zp_${activation === INT8 ? 'i8' : 'u8'}_${zeroPoint}`);
      g.addInitializer(makeTensor(name, activation === INT8 ? DataType.INT8 : DataType.UINT8, [], Uint8Array.of(zeroPoint & 0xff)));
      zeroPoints.set(zeroPoint, name);
    }
    return name;
  };
  const paramsOf = (value: string): Params => {
    const source = plan.values.get(value)!;
    if ('same' in source) return paramsOf(source.same);
    let p = params.get(source.range);
    if (!p) {
      const range = ranges.get(source.range)!;
      // Symmetric int8 activations use ±127, as ONNX Runtime's symmetric quantizer does.
      const { scale, zeroPoint } = groupParams(range.min, range.max, activation, !asymmetric);
      const scaleName = names.fresh(`${source.range}_scale`);
      g.addInitializer(makeTensor(scaleName, DataType.FLOAT, [], new Uint8Array(Float32Array.of(scale).buffer)));
      params.set(source.range, (p = { scale, zeroPoint, scaleName, zeroPointName: zeroPointName(zeroPoint) }));
    }
    return p;
  };
  insertPairs(g, plan, paramsOf, names);
  const handled = await quantizeComputeWeights(model, edits, computes, paramsOf, options, context, summary);
  for (const s of keptFloat) handled.add(s.name);
  const count = (op: ComputeOp) => computes.filter((c) => c.op === op).length;
  const computed = COMPUTE_OPS.filter((op) => count(op) > 0)
    .map((op) => `${count(op)} ${op}`)
    .join(', ');
  const removedRelus = plan.removed.size;
  summary.notes.push(
    `static: ${computed} computed in integers (QDQ); ${plan.values.size} activations quantized ${options.activations ?? 'uint8'} ${asymmetric ? 'asymmetric' : 'symmetric'} per tensor` +
      `${removedRelus ? `; ${removedRelus} Relu folded into the quantization before ${removedRelus === 1 ? 'it' : 'them'}` : ''}`,
  );
  summary.ranges!.values = Object.fromEntries(
    sources.map((s) => {
      const p = params.get(s);
      return [s, { ...ranges.get(s)!, ...(p ? { scale: p.scale, zeroPoint: p.zeroPoint } : {}) }];
    }),
  );
  return handled;
}

/**
 * The nodes computed in integers: every use of a chosen weight that the integer kernels take.
 * `skipped` gets the weights whose nodes cannot be (stored weight-only by the int8 pass), `keptFloat`
 * those of Convs faster in float (left as they are).
 */
function findComputes(g: GraphEditor, weights: Weight[], granularity: 'channel' | 'tensor', skipped: Skip[], keptFloat: Skip[]): Compute[] {
  const graph = g.graph;
  const initializers = new Map(graph.initializer.map((t) => [t.name ?? '', t]));
  const types = elementTypes(graph);
  const computes: Compute[] = [];
  for (const w of weights) {
    const why = (() => {
      if (w.home !== graph || w.uses.some((u) => u.graph !== graph)) return 'used inside a subgraph: mode=static computes the main graph';
      if (w.tensor.data_type !== DataType.FLOAT) return `${dtypeName(w.tensor.data_type)} weights: mode=static takes float32 models`;
      const axes = new Set(w.uses.map((u) => u.outputAxis));
      if (axes.size > 1) return 'read along different axes by its nodes';
      for (const u of w.uses) {
        const problem = computeProblem(u.node, u.inputIndex, initializers, types);
        if (problem) return problem;
      }
      return undefined;
    })();
    if (why) {
      skipped.push({ name: w.name, reason: why });
      continue;
    }
    const shallow = w.uses.find((u) => u.node.op_type === 'Conv' && shallowConv(u.node, w.tensor));
    if (shallow) {
      const channels = toNumber(w.tensor.dims[1]!);
      keptFloat.push({
        name: w.name,
        reason: `Conv '${shallow.node.name}' reads ${channels} channel${channels === 1 ? '' : 's'} × a ${w.tensor.dims.slice(2).map(toNumber).join('×')} kernel, a depth of ${convDepth(w.tensor)}, below ${MIN_INTEGER_CONV_DEPTH} with fewer than ${MIN_INTEGER_CONV_CHANNELS} channels: ONNX Runtime's QLinearConv is slower there than its float Conv`,
      });
      continue;
    }
    for (const u of w.uses) {
      const op = u.node.op_type as ComputeOp;
      const bias = op === 'MatMul' ? undefined : u.node.input[2];
      computes.push({
        node: u.node,
        op,
        input: u.node.input[0]!,
        output: u.node.output[0]!,
        weight: w,
        axis: granularity === 'channel' ? u.outputAxis : undefined,
        bias: bias ? initializers.get(bias) : undefined,
        quantizedOutput: op === 'Conv',
      });
    }
  }
  return computes;
}

/** The length of a Conv's dot products: input channels × kernel area, from its weight. */
function convDepth(weight: TensorProto): number {
  return weight.dims.slice(1).reduce((n: number, d) => n * toNumber(d), 1);
}

/** Whether a Conv of one group reads too few channels, over too small a kernel, to gain from integers. */
function shallowConv(conv: NodeProto, weight: TensorProto): boolean {
  const group = conv.attribute.find((a) => a.name === 'group');
  if (group?.i !== undefined && toNumber(group.i) !== 1) return false;
  return toNumber(weight.dims[1] ?? 0) < MIN_INTEGER_CONV_CHANNELS && convDepth(weight) < MIN_INTEGER_CONV_DEPTH;
}

/** Whether a Gemm computes plain A·B (+ C): no transA, alpha and beta 1 (what QGemm's int32 bias assumes). */
function plainGemm(node: NodeProto): boolean {
  const value = (name: string, fallback: number) => {
    const a = node.attribute.find((x) => x.name === name);
    return a === undefined ? fallback : a.f !== undefined ? a.f : a.i !== undefined ? toNumber(a.i) : fallback;
  };
  return value('transA', 0) === 0 && value('alpha', 1) === 1 && value('beta', 1) === 1;
}

/** Why a node cannot be computed in integers by ONNX Runtime's QDQ fusions, or undefined. */
function computeProblem(
  node: NodeProto,
  inputIndex: number,
  initializers: Map<string, TensorProto>,
  types: Map<string, number>,
): string | undefined {
  const op = node.op_type;
  if ((node.domain ?? '') !== '' || !(COMPUTE_OPS as readonly string[]).includes(op ?? ''))
    return `read by ${op}, which mode=static does not compute`;
  if (inputIndex !== 1) return `the first input of ${op} '${node.name}': mode=static quantizes weights read as the second`;
  const input = node.input[0] ?? '';
  if (initializers.has(input)) return `${op} '${node.name}' reads two constants`;
  if (types.get(input) !== DataType.FLOAT) return `${op} '${node.name}' reads '${input}', which is not known to be float32`;
  if (op === 'Gemm' && !plainGemm(node))
    return `Gemm '${node.name}' has transA, alpha or beta other than 1, which QGemm's int32 bias does not take`;
  const bias = node.input[2];
  if (op !== 'MatMul' && bias) {
    const t = initializers.get(bias);
    // QLinearConv and QGemm take the bias as int32 codes: it must be a float32 constant with a value per output channel.
    const weight = initializers.get(node.input[1]!);
    const transB = node.attribute.find((a) => a.name === 'transB')?.i;
    const axis = op === 'Gemm' && (transB === undefined || toNumber(transB) === 0) ? 1 : 0;
    const channels = toNumber(weight?.dims[axis] ?? 0);
    if (!t || t.data_type !== DataType.FLOAT || t.dims.length !== 1 || toNumber(t.dims[0]!) !== channels) {
      return `${op} '${node.name}' has a bias that is not a float32 constant vector (${op === 'Conv' ? 'QLinearConv' : 'QGemm'} takes it as int32)`;
    }
  }
  return undefined;
}

/** Which values get a QuantizeLinear → DequantizeLinear pair, and where each one's parameters come from. */
function planValues(g: GraphEditor, computes: Compute[], asymmetric: boolean): Plan {
  const graph = g.graph;
  const types = elementTypes(graph);
  const initializers = new Set(graph.initializer.map((t) => t.name ?? ''));
  const outputs = g.outputNames();
  const computeOutputs = new Set(computes.map((c) => c.node.output[0]!));
  const plan: Plan = { values: new Map(), rawOf: new Map(), removed: new Set(), quantizedRaw: new Set() };
  const readBy = (value: string, node: NodeProto) => !outputs.has(value) && g.readers(value).every((n) => n === node);
  const droppable = (p: NodeProto) =>
    asymmetric && p.op_type === 'Relu' && (p.domain ?? '') === '' && computeOutputs.has(p.input[0]!) && readBy(p.input[0]!, p);
  const want = (value: string): boolean => {
    if (plan.values.has(value)) return true;
    if (initializers.has(value) || types.get(value) !== DataType.FLOAT) return false;
    const p = g.producer(value);
    if (p && droppable(p)) {
      plan.removed.add(p);
      plan.rawOf.set(value, p.input[0]!);
      plan.values.set(value, { range: value });
    } else if (
      p &&
      PASS_THROUGH.has(p.op_type ?? '') &&
      (p.domain ?? '') === '' &&
      p.output.filter((o) => o).length === 1 &&
      want(p.input[0] ?? '')
    ) {
      plan.values.set(value, { same: p.input[0]! });
    } else {
      plan.values.set(value, { range: value });
      // An Add of two activations or a Concat whose output is quantized runs on the codes (QLinearAdd,
      // QLinearConcat) once its inputs are quantized too: a residual stream or a branch's concatenation
      // between integer nodes stays in 8 bits instead of DequantizeLinear, float, QuantizeLinear.
      if (p && integerJoin(p)) for (const input of p.input) want(input);
    }
    return true;
  };
  const integerJoin = (p: NodeProto): boolean =>
    (p.domain ?? '') === '' &&
    INTEGER_JOINS.has(p.op_type ?? '') &&
    p.output.filter((o) => o).length === 1 &&
    p.input.length >= (p.op_type === 'Add' ? 2 : 1) &&
    p.input.every((i) => i && !initializers.has(i) && types.get(i) === DataType.FLOAT);
  for (const c of computes) {
    if (!c.quantizedOutput) continue;
    // QLinearConv and QLinearMatMul write 8 bits: the output is quantized, after its Relu where that can go.
    const output = c.node.output[0]!;
    const readers = g.readers(output);
    const relu = readers.length === 1 && droppable(readers[0]!) ? readers[0]! : undefined;
    want(relu ? relu.output[0]! : output);
  }
  for (const c of computes) want(c.input);
  // A Gemm or MatMul whose Relu stays (symmetric activations) and is quantized after: ONNX Runtime
  // fuses neither with a Relu between it and a QuantizeLinear that does not clip as the Relu does, so
  // its own output is quantized too (QGemm, QLinearMatMul), and the Relu runs between two pairs.
  for (const c of computes) {
    const readers = g.readers(c.output);
    const relu = readers.length === 1 && readers[0]!.op_type === 'Relu' ? readers[0]! : undefined;
    if (relu && !plan.removed.has(relu) && plan.values.has(relu.output[0]!) && !outputs.has(c.output)) want(c.output);
  }
  return plan;
}

/** Inserts each planned pair: the producer writes a new name, which QuantizeLinear reads; DequantizeLinear writes the value's own name. */
function insertPairs(g: GraphEditor, plan: Plan, paramsOf: (value: string) => Params, names: NameAllocator): void {
  for (const value of plan.values.keys()) {
    const p = paramsOf(value);
    const producer = g.producer(value);
    let raw = plan.rawOf.get(value);
    let visible = value;
    if (raw === undefined && producer) {
      raw = names.fresh(`${value}_float`);
      g.setOutput(producer, producer.output.indexOf(value), raw);
    } else if (raw === undefined) {
      // A graph input keeps its name: its readers move to the dequantized value.
      raw = value;
      visible = names.fresh(`${value}_dq`);
      g.replaceAllUses(value, visible);
    }
    plan.quantizedRaw.add(raw);
    // Short suffixes: a pair per activation adds up in a small model's file.
    const quantized = names.fresh(`${value}_q8`);
    const pair = [
      makeNode('QuantizeLinear', [raw, p.scaleName, p.zeroPointName], [quantized], ''),
      makeNode('DequantizeLinear', [quantized, p.scaleName, p.zeroPointName], [visible], ''),
    ];
    // A dropped Relu's place goes to the pair that clips as it did.
    if (!producer) g.insertNodes(pair, 'start');
    else if (plan.removed.has(producer)) g.replaceNode(producer, pair);
    else g.insertNodes(pair, { after: producer });
    // A Shape or Size reads the float value itself: through the pair it would keep a DequantizeLinear
    // of the whole tensor running for its dimensions alone.
    for (const reader of g.readers(visible)) {
      if ((reader.domain ?? '') !== '' || !SHAPE_ONLY.has(reader.op_type ?? '')) continue;
      reader.input.forEach((name, i) => {
        if (name === visible) g.setInput(reader, i, raw);
      });
    }
  }
}

/** The calibrated (or read) range of each value, recorded in the summary. */
async function rangesFor(model: Model, values: string[], options: StaticOptionValues, summary: PassSummary): Promise<Map<string, Range>> {
  if (options.ranges !== undefined) {
    const record: RangesRecord = readRangesFile(options.ranges);
    const missing = values.find((v) => !Object.hasOwn(record.values, v));
    if (missing !== undefined)
      throw new InputError(
        `ranges ${options.ranges}: no range for '${missing}', which this model quantizes (the file has ${Object.keys(record.values).length})`,
      );
    summary.ranges = { method: record.method, source: record.source, samples: record.samples, values: {} };
    summary.notes.push(`activation ranges read from ${options.ranges} (${record.method} on ${record.source})`);
    return new Map(values.map((v) => [v, { min: record.values[v]!.min, max: record.values[v]!.max }]));
  }
  const method = options.method ?? 'minmax';
  const percentile = options.percentile ?? DEFAULT_PERCENTILE;
  const calibrated = await calibrateRanges(model, values, {
    data: options.calibration!,
    method,
    percentile,
    symmetric: options['activation-symmetric'] ?? false,
    activations: options.activations,
  });
  const described = method === 'percentile' ? `percentile ${percentile}` : method;
  summary.notes.push(`activation ranges: ${described} on ${calibrated.samples} samples from ${calibrated.source}`);
  summary.notes.push(...calibrated.warnings.map((w) => `warning: ${w}`));
  summary.ranges = { method: described, source: calibrated.source, samples: calibrated.samples, values: {} };
  return calibrated.ranges;
}

/**
 * Weights int8 per channel behind DequantizeLinear, biases int32 with the scale the fused kernel
 * assumes. Returns the names of the weights and of their codes.
 */
async function quantizeComputeWeights(
  model: Model,
  edits: ModelEditor,
  computes: Compute[],
  paramsOf: (value: string) => Params,
  options: StaticOptionValues,
  context: PassContext,
  summary: PassSummary,
): Promise<Set<string>> {
  const names = edits.names;
  const handled = new Set<string>();
  const weights = [...new Set(computes.map((c) => c.weight))];
  const axisOf = (w: Weight) => computes.find((c) => c.weight === w)!.axis;
  const ratios = options.search === 'mse' ? clipRatios(20, 0.5) : undefined;
  const pool = new KernelPool(context.threads);
  const start = (w: Weight, progress: Parameters<KernelPool['run']>[1]): Promise<QuantizeResult> => {
    const axis = axisOf(w),
      dims = w.tensor.dims.map(Number);
    return pool.run(
      {
        values: floatSource(w.tensor),
        groups: axis === undefined ? { kind: 'tensor' } : { kind: 'channel', dims, axis },
        options: { range: INT8, symmetric: true, clipRatios: ratios },
      },
      progress,
    );
  };
  const scalesOf = new Map<Weight, { values: Float32Array; name: string }>();
  try {
    const report = { progress: context.progress, label: 'int8 static', bytesOf: (w: Weight) => tensorByteLength(w.tensor) };
    for await (const [w, result] of inOrder(weights, windowFor(context.threads), start, report)) {
      const axis = axisOf(w),
        dims = w.tensor.dims.map(Number);
      const bytesBefore = tensorByteLength(w.tensor);
      // ONNX Runtime fuses a QDQ Gemm into QGemm only when its weight's DequantizeLinear names a zero point.
      const zeroPoint = computes.some((c) => c.weight === w && c.op === 'Gemm')
        ? { dataType: DataType.INT8, bytes: new Uint8Array(result.scales.length) }
        : undefined;
      const { initializers, node } = dequantizeWeight(
        w,
        names,
        { dataType: DataType.INT8, dims, bytes: new Uint8Array(result.codes.buffer, result.codes.byteOffset, result.codes.byteLength) },
        { dims: axis === undefined ? [] : [dims[axis]!], values: result.scales },
        zeroPoint,
        axis === undefined ? [] : [intAttribute('axis', axis)],
        COMPACT_WEIGHT_NAMING,
      );
      replaceWeight(edits, w, initializers, [node]);
      model.settle(initializers);
      scalesOf.set(w, { values: result.scales, name: initializers[1]!.name! });
      handled.add(w.name).add(initializers[0]!.name!);
      const bytesAfter = initializers.reduce((n, t) => n + (t.raw_data?.byteLength ?? 0), 0);
      summary.bytesBefore += bytesBefore;
      summary.bytesAfter += bytesAfter;
      const ops = [...new Set(computes.filter((c) => c.weight === w).map((c) => c.op))].join('+');
      summary.tensors.push({
        name: w.name,
        shape: dims,
        dtypeBefore: 'float32',
        dtypeAfter: 'int8',
        bytesBefore,
        bytesAfter,
        ...result.error,
        form: `QDQ int8 symmetric ${axis === undefined ? 'per-tensor' : `per-channel (axis ${axis})`}, ${ops} computed in integers (static)`,
        details: result.errorBeforeSearch
          ? { relRmsErrorMinMax: result.errorBeforeSearch.relRmsError, maxAbsErrorMinMax: result.errorBeforeSearch.maxAbsError }
          : undefined,
      });
    }
  } finally {
    await pool.close();
  }
  const g = edits.graph(model.graph);
  for (const c of computes) {
    if (!c.bias) continue;
    const change = quantizeBias(g, c, paramsOf(c.input), scalesOf.get(c.weight)!, names);
    summary.bytesBefore += change.bytesBefore;
    summary.bytesAfter += change.bytesAfter;
    summary.tensors.push(change);
  }
  return handled;
}

/**
 * The bias as int32 codes with scale input_scale × weight_scale per channel (zero point 0): the scale
 * QLinearConv and QGemm assume for their int32 bias. The scale is a Mul of the two scales the model
 * already holds (ONNX Runtime folds it before fusing), not 4 more bytes per channel. The float
 * initializer goes once nothing reads it.
 */
function quantizeBias(
  g: GraphEditor,
  c: Compute,
  input: Params,
  weightScales: { values: Float32Array; name: string },
  names: NameAllocator,
) {
  const bias = c.bias!;
  const values = floatValues(bias);
  const n = values.length;
  const codes = new Int32Array(n);
  let maxAbs = 0,
    errSq = 0,
    refSq = 0;
  for (let i = 0; i < n; i++) {
    // What Mul computes in float32: the product of two float32s, rounded once.
    const scale = Math.fround(input.scale * weightScales.values[weightScales.values.length === 1 ? 0 : i]!);
    const x = values[i]!;
    codes[i] = scale > 0 ? Math.max(-2147483648, Math.min(2147483647, Math.round(x / scale))) : 0;
    const d = Math.abs(Math.fround(codes[i]! * scale) - x);
    maxAbs = Math.max(maxAbs, d);
    errSq += d * d;
    refSq += x * x;
  }
  const name = bias.name!;
  // Read by this node alone, the float bias goes and its DequantizeLinear writes its name, as a
  // weight's does; a bias shared with other nodes gets a DequantizeLinear of its own per node.
  const alone = g.readers(name).every((r) => r === c.node) && !g.outputNames().has(name);
  if (alone) g.removeInitializer(bias);
  const q = names.fresh(`${name}_int32`),
    s = names.fresh(`${name}_scale`),
    out = alone ? name : names.fresh(`${name}_dq`);
  g.addInitializer(makeTensor(q, DataType.INT32, [n], new Uint8Array(codes.buffer)));
  const perChannel = weightScales.values.length > 1;
  g.insertNodes(
    [
      makeNode('Mul', [input.scaleName, weightScales.name], [s], ''),
      makeNode('DequantizeLinear', [q, s], [out], '', perChannel ? [intAttribute('axis', 0)] : []),
    ],
    'start',
  );
  if (!alone) g.setInput(c.node, 2, out);
  const removedNow = !alone && !g.isRead(name) && !g.outputNames().has(name);
  if (removedNow) g.removeInitializer(bias);
  const stillRead = !alone && !removedNow;
  return {
    name,
    shape: [n],
    dtypeBefore: 'float32',
    dtypeAfter: 'int32',
    bytesBefore: stillRead ? 0 : n * 4,
    bytesAfter: n * 4,
    maxAbsError: maxAbs,
    relRmsError: refSq > 0 ? Math.sqrt(errSq / refSq) : 0,
    form: `int32, scale input × weight (${c.op} '${c.node.name}', static)`,
  };
}
