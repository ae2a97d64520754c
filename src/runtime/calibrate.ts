// Calibration: what a layer's inputs look like on real data. The model is run in ONNX Runtime with
// the chosen layers' inputs exposed as extra outputs, and for each the Gram matrix XᵀX over all rows
// is accumulated: the curvature of the layer's output error, which GPTQ uses to decide how the
// rounding error of one input feature is compensated by the weights of the others, and the pruning
// passes use to score and update weights (Wanda, SparseGPT). Here, below the pass folders, so that
// quantize/ and prune/ share it.
import { makeScratchDir, removeScratchDir } from '../fs/scratch.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelProto, NodeProto, TensorProto } from '../ir/onnx.js';
import { intAttribute, intsAttribute, makeNode } from '../ir/build.js';
import { NameAllocator } from '../ir/names.js';
import { makeTensor } from '../ir/tensor.js';
import { patchFeatures, type ConvPatches } from '../ir/conv.js';
import { writeModel } from '../io/write.js';
import { Model } from '../ir/model.js';
import { opsetVersion } from '../ir/opset.js';
import { loadEvalData } from './data.js';
import { OrtProcess, onPassThreads, type RemoteSession } from './client.js';
import { checkFeeds } from './feeds.js';
import type { NamedArray } from '../io/testdata.js';
import { silentProgress, type Progress } from '../kernels/progress.js';

/** XᵀX (K×K, row-major, both triangles) of one value, over all its rows in the calibration data. */
export interface Gram {
  k: number;
  matrix: Float64Array;
  rows: number;
  /** Σx per feature, when asked for (GramRequest.sums). */
  sums?: Float64Array;
}

/** Σ x² per feature of one value (the squared L2 norm of each input feature's activations). */
export interface FeatureNorms {
  k: number;
  sumSq: Float64Array;
  rows: number;
}

/**
 * A value of the main graph whose last axis holds `k` features: the input of a layer whose weight
 * has K = k; or, with `patches`, the input [N, C, H, W] of a 2-D Conv, whose features are its
 * patches' entries (ir/conv.ts), one row per output position.
 */
export interface GramRequest {
  name: string;
  k: number;
  /** Also Σx per feature (a bias compensation's means, a least-squares intercept). */
  sums?: boolean;
  patches?: ConvPatches;
  /** The key of the result (default `name`): a value two Convs read with different patches is measured twice. */
  id?: string;
}

/** Feature norms of a value's last axis (a name), or of a Conv input's patches. */
export type NormRequest = string | { name: string; patches: ConvPatches; id: string };

export interface Calibration {
  gram: Map<string, Gram>;
  norms: Map<string, FeatureNorms>;
  samples: number;
  source: string;
}

/**
 * Adds nodes that turn a Conv's input [N, C, H, W] into its patches as rows [N, Ho, Wo, C·kh·kw]: a
 * Conv whose kernel picks one patch entry per output channel (a one-hot weight: each output is
 * exactly one input value), then channels last. Returns the rows' value.
 */
function patchRows(name: string, p: ConvPatches, names: NameAllocator, nodes: NodeProto[], initializers: TensorProto[]): string {
  const k = patchFeatures(p);
  const picks = new Float32Array(k * k);
  // Output channel f = (c·kh + i)·kw + j reads input channel c at kernel position (i, j): weight [f, c, i, j].
  for (let f = 0; f < k; f++) picks[f * k + f] = 1;
  const weight = names.fresh(`${name}_patch_picks`);
  initializers.push(makeTensor(weight, FLOAT, [k, p.channels, p.kh, p.kw], new Uint8Array(picks.buffer)));
  const [patches, rows] = [names.fresh(`${name}_patches`), names.fresh(`${name}_patch_rows`)];
  nodes.push(
    makeNode('Conv', [name, weight], [patches], names.fresh(`${name}_im2col`), [
      intsAttribute('kernel_shape', [p.kh, p.kw]),
      intsAttribute('strides', p.strides),
      intsAttribute('pads', p.pads),
      intsAttribute('dilations', p.dilations),
    ]),
    makeNode('Transpose', [patches], [rows], names.fresh(`${name}_patch_transpose`), [intsAttribute('perm', [0, 2, 3, 1])]),
  );
  return rows;
}

const FLOAT = 1;
const DOUBLE = 11;
const INT64 = 7;

/**
 * Adds to the probe, for each value, the value as rows of k features (`rows`, float64), the rows'
 * shape, and with `sums` Σx per feature: XᵀX is then made from `rows` in the child by a second,
 * one-product model (gramModel), one layer at a time, so that a run's outputs are its activations
 * rather than every layer's K×K at once (BERT-base: 1.08 GB a run, held beside the sums).
 */
function gramNodes(model: Model, requests: GramRequest[]) {
  const names = new NameAllocator(model);
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  // `gram`: a fresh name, never a value of the graph: the key of the child's sum of XᵀX.
  const outputs = new Map<string, { rows: string; shape: string; sums?: string; gram: string; k: number }>();
  const opset = opsetVersion(model.proto, '') ?? 1;
  for (const { name, k, sums, patches, id } of requests) {
    const source = patches ? patchRows(name, patches, names, nodes, initializers) : name;
    const shape = names.fresh(`${name}_gram_shape`);
    initializers.push(makeTensor(shape, INT64, [2], new Uint8Array(BigInt64Array.of(-1n, BigInt(k)).buffer)));
    const [rows, double, rowsShape] = ['rows', 'double', 'rows_shape'].map((s) => names.fresh(`${name}_${s}`)) as [string, string, string];
    // In float64 whatever the model computes in (float32, float16 and bfloat16 become it exactly), for
    // the one-product model of each width and for the sums.
    nodes.push(
      makeNode('Reshape', [source, shape], [rows], names.fresh(`${name}_gram_reshape`)),
      makeNode('Cast', [rows], [double], names.fresh(`${name}_gram_cast`), [intAttribute('to', DOUBLE)]),
      makeNode('Shape', [rows], [rowsShape], names.fresh(`${name}_gram_rows`)),
    );
    const sum = sums ? reduceRows('ReduceSum', double, `${name}_sums`, opset, names, nodes, initializers) : undefined;
    outputs.set(id ?? name, { rows: double, shape: rowsShape, sums: sum, gram: names.fresh(`${name}_gram`), k });
  }
  return { nodes, initializers, outputs, names };
}

/** A model of one product: x, float64 [rows, k] → XᵀX [k, k]. */
function gramModel(k: number): Model {
  const nodes = [
    makeNode('Transpose', ['x'], ['transposed'], 'transpose', [intsAttribute('perm', [1, 0])]),
    makeNode('MatMul', ['transposed', 'x'], ['gram'], 'matmul'),
  ];
  const value = (name: string, type: number, dims: (number | string)[]) => ({
    name,
    metadata_props: [],
    type: {
      tensor_type: {
        elem_type: type,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  });
  return new Model({
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'onnxpress calibration',
    metadata_props: [],
    functions: [],
    training_info: [],
    graph: {
      name: `gram_${k}`,
      node: nodes,
      initializer: [],
      sparse_initializer: [],
      input: [value('x', DOUBLE, ['rows', k])],
      output: [value('gram', DOUBLE, [k, k])],
      value_info: [],
      quantization_annotation: [],
      metadata_props: [],
    },
  } as unknown as ModelProto);
}

/** The opset from which each reduction takes its axes as an input rather than an attribute. */
const AXES_INPUT_FROM = { ReduceSum: 13, ReduceSumSquare: 18 } as const;

/** Adds `op` over the rows (axis 0) of `input`, [rows, k] → [k]; returns the output's name. */
function reduceRows(
  op: keyof typeof AXES_INPUT_FROM,
  input: string,
  base: string,
  opset: number,
  names: NameAllocator,
  nodes: NodeProto[],
  initializers: TensorProto[],
): string {
  const out = names.fresh(base);
  if (opset >= AXES_INPUT_FROM[op]) {
    const axes = names.fresh(`${base}_axes`);
    initializers.push(makeTensor(axes, INT64, [1], new Uint8Array(BigInt64Array.of(0n).buffer)));
    nodes.push(makeNode(op, [input, axes], [out], names.fresh(`${base}_reduce`), [intAttribute('keepdims', 0)]));
  } else nodes.push(makeNode(op, [input], [out], names.fresh(`${base}_reduce`), [intsAttribute('axes', [0]), intAttribute('keepdims', 0)]));
  return out;
}

/**
 * Adds, for each Conv input, Σx² of each patch entry over all rows, computed by ONNX Runtime (only
 * C·kh·kw numbers per run cross to this process), and the rows' shape.
 */
function patchNormNodes(model: Model, requests: { name: string; patches: ConvPatches; id: string }[], names: NameAllocator) {
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const outputs = new Map<string, { sumSq: string; shape: string }>();
  const opset = opsetVersion(model.proto, '') ?? 1;
  for (const { name, patches, id } of requests) {
    const k = patchFeatures(patches);
    const rows4 = patchRows(name, patches, names, nodes, initializers);
    const shape = names.fresh(`${name}_norm_shape`);
    initializers.push(makeTensor(shape, INT64, [2], new Uint8Array(BigInt64Array.of(-1n, BigInt(k)).buffer)));
    const [rows, cast, rowsShape] = ['norm_rows', 'norm_double', 'norm_rows_shape'].map((x) => names.fresh(`${name}_${x}`)) as [
      string,
      string,
      string,
    ];
    nodes.push(
      makeNode('Reshape', [rows4, shape], [rows], names.fresh(`${name}_norm_reshape`)),
      makeNode('Cast', [rows], [cast], names.fresh(`${name}_norm_cast`), [intAttribute('to', DOUBLE)]),
      makeNode('Shape', [rows], [rowsShape], names.fresh(`${name}_norm_rows`)),
    );
    const sumSq = reduceRows('ReduceSumSquare', cast, `${name}_sum_squares`, opset, names, nodes, initializers);
    outputs.set(id, { sumSq, shape: rowsShape });
  }
  return { nodes, initializers, outputs };
}

/**
 * Samples per ONNX Runtime run when the data comes as one large batch: every activation of a run is
 * in the child's memory at once (BERT-base on 128 sequences of 128 tokens in one run: 5.3 GB), and
 * the layers' XᵀX add up over runs all the same.
 */
const CHUNK_SAMPLES = 16;

/**
 * The batch cut into runs of at most `size` samples along the first axis, where every input has
 * the same first dimension (the samples); otherwise the batch as it is.
 */
export function samplesOf(inputs: NamedArray[], size: number): NamedArray[][] {
  const count = inputs[0]?.dims[0];
  if (count === undefined || count <= size || !inputs.every((i) => i.dims.length > 0 && i.dims[0] === count)) return [inputs];
  const runs: NamedArray[][] = [];
  for (let at = 0; at < count; at += size) {
    const n = Math.min(size, count - at);
    runs.push(
      inputs.map((i) => {
        const per = i.data.length / count;
        return { ...i, dims: [n, ...i.dims.slice(1)], data: i.data.slice(at * per, (at + n) * per) as typeof i.data };
      }),
    );
  }
  return runs;
}

/** Adds Σ x² per feature of rows of length k to `sumSq`. */
function addSquares(sumSq: Float64Array, x: ArrayLike<number>, k: number): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    sumSq[i % k]! += v * v;
  }
}

/**
 * Runs `model` once over the calibration data, in one ONNX Runtime session for all layers (never a
 * run per layer), and returns XᵀX for each value in `grams` and the feature norms of each value in
 * `norms` (which needs only the activations, not a K×K product).
 */
export async function calibrate(
  model: Model,
  requests: { grams?: GramRequest[]; norms?: NormRequest[] },
  dataPath: string,
  progress: Progress = silentProgress,
  threads = 1,
): Promise<Calibration> {
  const graph = model.graph;
  const gramRequests = [...new Map((requests.grams ?? []).map((r) => [r.id ?? r.name, r])).values()];
  const normNames = [...new Set((requests.norms ?? []).filter((r): r is string => typeof r === 'string'))];
  const patchNorms = [...new Map((requests.norms ?? []).flatMap((r) => (typeof r === 'string' ? [] : [[r.id, r] as const]))).values()];
  const added = gramNodes(model, gramRequests);
  const addedNorms = patchNormNodes(model, patchNorms, added.names);
  const existing = new Set(graph.output.map((o) => o.name));
  const extra = [
    ...normNames.filter((n) => !existing.has(n)),
    ...[...added.outputs.values()].flatMap((o) => (o.sums ? [o.rows, o.shape, o.sums] : [o.rows, o.shape])),
    ...[...addedNorms.outputs.values()].flatMap((o) => [o.sumSq, o.shape]),
  ];
  if (normNames.length > 0 && gramRequests.length > 0)
    throw new Error('calibrate: Gram matrices and the feature norms of plain values are gathered in separate calls');
  const proto: ModelProto = {
    ...model.proto,
    graph: {
      ...graph,
      node: [...graph.node, ...added.nodes, ...addedNorms.nodes],
      initializer: [...graph.initializer, ...added.initializers, ...addedNorms.initializers],
      output: [...graph.output, ...extra.map((name) => ({ name, metadata_props: [] }))],
    },
  };
  const probe = new Model(proto, model.source);
  const dir = makeScratchDir('calibrate');
  // In a child process, as evaluation: a model that crashes ONNX Runtime fails in one line. No time
  // budget: --eval-timeout does not reach here, and a large calibration set may rightly take long.
  // The child starts now, while the probe is written.
  const ort = new OrtProcess(Infinity);
  ort.prestart();
  try {
    const label = model.source?.given ?? 'the model';
    // The data is read and checked against the model's inputs before anything else: a mismatch is
    // one line naming the input, before the probe is written or ONNX Runtime started.
    const data = loadEvalData(model, { data: dataPath });
    for (const batch of data.batches) checkFeeds(model, label, batch.inputs);
    const path = join(dir, 'probe.onnx');
    writeModel(probe, path);
    const sessionOptions = onPassThreads(threads);
    const session = await ort.load(path, label, threads, sessionOptions);
    // One product model per width, for the child to make each XᵀX from the run's rows.
    const gramSessions = new Map<number, RemoteSession>();
    for (const k of new Set([...added.outputs.values()].map((o) => o.k))) {
      const file = join(dir, `gram-${k}.onnx`);
      writeModel(gramModel(k), file);
      gramSessions.set(k, await ort.load(file, `${label} (XᵀX of ${k} features)`, threads, sessionOptions));
    }
    const gram = new Map<string, Gram>();
    const norms = new Map<string, FeatureNorms>();
    /** Adds one run's outputs (or the child's sums over every run) to the Gram matrices and patch norms. */
    const take = (outputs: Map<string, { data: unknown }>) => {
      for (const { name: value, k, id } of gramRequests) {
        const name = id ?? value;
        const names = added.outputs.get(name)!;
        const g = outputs.get(names.gram)?.data;
        const shape = outputs.get(names.shape)?.data;
        if (!(g instanceof Float64Array) || !(shape instanceof BigInt64Array)) continue;
        const sums = names.sums ? outputs.get(names.sums)?.data : undefined;
        const entry = gram.get(name);
        if (!entry)
          gram.set(name, {
            k,
            matrix: g,
            rows: Number(shape[0]),
            sums: sums instanceof Float64Array ? Float64Array.from(sums) : undefined,
          });
        else {
          for (let i = 0; i < g.length; i++) entry.matrix[i]! += g[i]!;
          entry.rows += Number(shape[0]);
          if (entry.sums && sums instanceof Float64Array) for (let i = 0; i < k; i++) entry.sums[i]! += sums[i]!;
        }
      }
      for (const [id, names] of addedNorms.outputs) {
        const sumSq = outputs.get(names.sumSq)?.data;
        const shape = outputs.get(names.shape)?.data;
        if (!(sumSq instanceof Float64Array) || !(shape instanceof BigInt64Array)) continue;
        const entry = norms.get(id);
        if (!entry) norms.set(id, { k: sumSq.length, sumSq: Float64Array.from(sumSq), rows: Number(shape[0]) });
        else {
          for (let i = 0; i < entry.k; i++) entry.sumSq[i]! += sumSq[i]!;
          entry.rows += Number(shape[0]);
        }
      }
    };
    const chunks = data.batches.flatMap((b) => samplesOf(b.inputs, CHUNK_SAMPLES));
    // Calibration can take most of a pass's time (BERT-base, 128 sequences: 45 s): a run at a time.
    progress.start(chunks.length, 'calibrating');
    if (normNames.length === 0) {
      // Every output is a sum over rows: added up in the child and received once, one value's at a
      // time, where a run's outputs each crossed over before (BERT-base, 48 XᵀX of 1.08 GB in all:
      // 5.3 GB here at the peak).
      const groups = [
        ...[...added.outputs.values()].map((o) => (o.sums ? [o.gram, o.shape, o.sums] : [o.gram, o.shape])),
        ...[...addedNorms.outputs.values()].map((o) => [o.sumSq, o.shape]),
      ];
      // The outputs summed as they are; each XᵀX is summed from its rows' product (into `o.gram`).
      const summedOutputs = [
        ...[...added.outputs.values()].flatMap((o) => (o.sums ? [o.shape, o.sums] : [o.shape])),
        ...[...addedNorms.outputs.values()].flatMap((o) => [o.sumSq, o.shape]),
      ];
      const products = [...added.outputs.values()].map((o) => ({ value: o.rows, session: gramSessions.get(o.k)!, into: o.gram }));
      for (const inputs of chunks) {
        await ort.sum(session, inputs, summedOutputs, products);
        progress.tick(1);
      }
      for (const names of groups) take(new Map(Object.entries(await ort.summed(session, names)).map(([name, d]) => [name, { data: d }])));
    } else
      for (const inputs of chunks) {
        const outputs = new Map((await ort.run(session, inputs)).map((o) => [o.name, o]));
        progress.tick(1);
        take(outputs);
        for (const name of normNames) {
          const out = outputs.get(name);
          if (!out || !(out.data instanceof Float32Array || out.data instanceof Float64Array)) continue;
          const k = out.dims[out.dims.length - 1]!;
          let entry = norms.get(name);
          if (!entry) norms.set(name, (entry = { k, sumSq: new Float64Array(k), rows: 0 }));
          if (entry.k !== k) continue;
          addSquares(entry.sumSq, out.data, k);
          entry.rows += out.data.length / k;
        }
      }
    return { gram, norms, samples: data.samples, source: data.source };
  } finally {
    progress.stop();
    ort.close();
    removeScratchDir(dir);
  }
}

/**
 * Runs `model` once over the calibration data with the named values of the main graph exposed, and
 * hands each float32 value of each batch to `visit` (nothing is kept after the visit): for statistics
 * that are not a Gram matrix of the last axis (structured pruning's im2col features of a Conv's input,
 * and the feature sums its bias compensation needs). The data are checked against the model's inputs
 * first, as in calibrate().
 */
export async function collectActivations(
  model: Model,
  names: string[],
  dataPath: string,
  visit: (name: string, data: Float32Array, dims: number[]) => void,
  progress: Progress = silentProgress,
  threads = 1,
): Promise<{ samples: number; source: string }> {
  const graph = model.graph;
  const existing = new Set(graph.output.map((o) => o.name));
  const wanted = [...new Set(names)];
  const extra = wanted.filter((n) => !existing.has(n));
  const label = model.source?.given ?? 'the model';
  const data = loadEvalData(model, { data: dataPath });
  for (const batch of data.batches) checkFeeds(model, label, batch.inputs);
  const proto: ModelProto = {
    ...model.proto,
    graph: { ...graph, output: [...graph.output, ...extra.map((name) => ({ name, metadata_props: [] }))] },
  };
  const dir = makeScratchDir('activations');
  const ort = new OrtProcess(Infinity);
  ort.prestart();
  try {
    const path = join(dir, 'probe.onnx');
    writeModel(new Model(proto, model.source), path);
    const session = await ort.load(path, label, threads, onPassThreads(threads));
    progress.start(data.batches.length, 'calibrating');
    for (const batch of data.batches) {
      const outputs = new Map((await ort.run(session, batch.inputs)).map((o) => [o.name, o]));
      for (const name of wanted) {
        const out = outputs.get(name);
        if (out && out.data instanceof Float32Array) visit(name, out.data, out.dims);
      }
      progress.tick(1);
    }
    return { samples: data.samples, source: data.source };
  } finally {
    progress.stop();
    ort.close();
    removeScratchDir(dir);
  }
}

/** The `calibration=` option's problem, if any: it must name a file or folder that exists (checked before the model is read). */
export function calibrationProblem(options: { readonly calibration?: string }): string | undefined {
  const path = options.calibration;
  if (typeof path !== 'string') return undefined;
  return existsSync(path) ? undefined : `calibration: ${path}: no such file or folder`;
}
