// Activation ranges for static quantization: the model is run in ONNX Runtime on the calibration data.
// The extremes of the values to quantize are computed by the model itself (ReduceMin/ReduceMax added
// as extra outputs), so that for minmax no activation leaves ONNX Runtime's memory; for percentile,
// entropy and mse the values are then exposed as extra outputs in a second pass over the data, and
// the child process that runs it keeps only a histogram of each (its bins fixed by the extremes).
// The data runs in batches sized so that one batch's values take at most BATCH_BYTES.
import { makeScratchDir, removeScratchDir } from '../fs/scratch.js';
import { availableParallelism } from 'node:os';
import { InputError } from '../errors.js';
import type { NamedArray } from '../io/testdata.js';
import { intAttribute, makeNode } from '../ir/build.js';
import { elementTypes } from '../ir/elem-types.js';
import { GraphIndex } from '../ir/graph.js';
import { Model } from '../ir/model.js';
import { NameAllocator } from '../ir/names.js';
import { DataType, type ModelProto } from '../ir/onnx.js';
import { addExtremes, emptyExtremes, mergeExtremes, type Extremes } from '../kernels/activation-stats.js';
import { INT8, UINT8 } from '../kernels/quantize.js';
import { OrtProcess, type RemoteSession } from '../runtime/client.js';
import type { Reduction } from '../runtime/protocol.js';
import { loadEvalData, type EvalBatch } from '../runtime/data.js';
import { checkFeeds } from '../runtime/feeds.js';
import { writeProbe } from './probe.js';
import { entropyRange, Histogram, mseRange, percentileRange, type Range } from './range-methods.js';

export type RangeMethod = 'minmax' | 'percentile' | 'entropy' | 'mse';

/** Below this many calibration samples, the tails percentile, entropy and mse cut are measured on too few values to trust. */
export const MIN_HISTOGRAM_SAMPLES = 100;

/**
 * The most bytes of exposed values one ONNX Runtime run of the calibration may produce, where the
 * data can be cut into smaller batches (samples along a first dimension the model leaves free).
 */
export const BATCH_BYTES = 64 * 2 ** 20;

export interface RangeOptions {
  /** The calibration data: a test_data_set folder, .npz, .npy or .pb, as --data. */
  data: string;
  method: RangeMethod;
  /** percentile: the share of values kept inside the range, in percent. */
  percentile: number;
  /** Whether activations are quantized symmetrically (which tail percentile cuts, how many levels entropy counts, mse's grid). */
  symmetric: boolean;
  /** The type of the quantized activations (mse's grid; default uint8). */
  activations?: 'uint8' | 'int8';
  /** ONNX Runtime's threads for the calibration runs (default: the machine's cores). */
  threads?: number;
  /** The most bytes of values one run may produce (default BATCH_BYTES). */
  batchBytes?: number;
}

export interface CalibratedRanges {
  ranges: Map<string, Range>;
  source: string;
  samples: number;
  warnings: string[];
}

/** The range of each named float32 value (graph inputs or node outputs of the main graph) on the calibration data; [0, 0] for others. */
export async function calibrateRanges(model: Model, names: string[], options: RangeOptions): Promise<CalibratedRanges> {
  const dataLabel = `calibration data ${options.data}`;
  const data = loadEvalData(model, { data: options.data });
  for (const batch of data.batches) {
    try {
      checkFeeds(model, dataLabel, batch.inputs);
    } catch (e) {
      // checkFeeds speaks of evaluation data; here the file is named in the label.
      if (e instanceof InputError)
        throw new InputError(
          e.message
            .replace('which the evaluation data does not give', 'which it does not give')
            .replace('the evaluation data gives', 'it gives'),
        );
      throw e;
    }
    refuseNonFinite(batch, dataLabel);
  }
  const inputs = new Set(model.graph.input.map((i) => i.name ?? ''));
  const wanted = [...new Set(names)];
  // Activations are float32 (what static quantization takes); other values (shapes, masks) are not measured.
  const types = elementTypes(model.graph);
  const exposed = wanted.filter((n) => !inputs.has(n) && types.get(n) === DataType.FLOAT);
  // The graph inputs among the values asked for (a model whose first Conv stays float asks for none).
  const measuredInputs = new Set(wanted.filter((n) => inputs.has(n)));
  const splittable = freeFirstDimension(model);
  const label = model.source?.given ?? 'the model';
  const threads = options.threads ?? availableParallelism();
  const batchBytes = options.batchBytes ?? BATCH_BYTES;
  const dir = makeScratchDir('ranges');
  // No time budget, as for GPTQ's calibration: --eval-timeout does not reach passes.
  const ort = new OrtProcess(Infinity);
  ort.prestart();
  try {
    const load = async (probe: Model, file: string) => ort.load(writeProbe(probe, dir, file), label, threads, { spinning: false });
    /** One pass over the data: graph inputs measured here, the other values in the child (raw `names`, or `reductions`). */
    const pass = async (
      session: RemoteSession | undefined,
      visitInput: ((name: string, values: Float32Array) => void) | undefined,
      { names = [], histograms, reductions }: { names?: string[]; histograms?: Record<string, number>; reductions?: Reduction[] },
    ) => {
      let perSample = 0;
      for (const batch of data.batches) {
        if (visitInput)
          for (const a of batch.inputs) if (measuredInputs.has(a.name) && a.data instanceof Float32Array) visitInput(a.name, a.data);
        if (!session) continue;
        const samples = batch.inputs[0]?.dims[0] ?? 1;
        const whole = !splittable || batch.inputs.some((a) => a.dims[0] !== samples);
        for (let from = 0; from < samples; ) {
          // The first run takes one sample, and tells how many fit in BATCH_BYTES.
          const take = whole ? samples : Math.max(1, Math.min(samples - from, perSample > 0 ? Math.floor(batchBytes / perSample) : 1));
          const part = whole ? batch.inputs : batch.inputs.map((a) => rows(a, from, from + take));
          const { bytes } = await ort.collect(session, part, names, histograms, reductions);
          perSample = Math.max(perSample, bytes / take);
          from += take;
        }
      }
      return session ? ort.collected(session) : { extremes: {}, histograms: {}, nonFinite: [] };
    };
    const extremes = new Map(wanted.map((n) => [n, emptyExtremes()]));
    const measureInput = (name: string, values: Float32Array) => addExtremes(extremes.get(name)!, values);
    // The extremes, reduced inside ONNX Runtime: no value leaves its memory, and what reads a value
    // (a Relu after a Conv) is still fused with it.
    const reductions = reductionsOf(model, exposed);
    const reducedSession = reductions.length > 0 ? await load(withReductions(model, reductions), 'reduced.onnx') : undefined;
    const reduced = await pass(reducedSession, measureInput, { reductions });
    for (const [name, e] of Object.entries(reduced.extremes)) mergeExtremes(extremes.get(name)!, e);
    // Its weights (and ONNX Runtime's packed copies of them) go before the next session loads its own.
    await ort.releaseAll();
    const histogramMethod = options.method !== 'minmax';
    // The values themselves, exposed: those whose reduction met NaN or ±∞ (an attention mask's −∞),
    // whose extremes only count the finite elements, and every value for the histogram methods.
    const raw = histogramMethod ? exposed : reduced.nonFinite;
    const rawSession = raw.length > 0 ? await load(exposing(model, raw), 'exposed.onnx') : undefined;
    if (rawSession && reduced.nonFinite.length > 0) {
      const finite = await pass(rawSession, undefined, { names: reduced.nonFinite });
      for (const [name, e] of Object.entries(finite.extremes)) mergeExtremes(extremes.get(name)!, e);
    }
    const ranges = new Map<string, Range>();
    const warnings: string[] = [];
    if (!histogramMethod) {
      for (const [name, e] of extremes) ranges.set(name, seen(e));
    } else {
      if (data.samples < MIN_HISTOGRAM_SAMPLES) {
        warnings.push(
          `method=${options.method} on ${data.samples} calibration samples (fewer than ${MIN_HISTOGRAM_SAMPLES}): the tails it clips are measured on few values; give more samples, or method=minmax`,
        );
      }
      const histograms = new Map([...extremes].map(([n, e]) => [n, new Histogram(Math.max(Math.abs(seen(e).min), Math.abs(seen(e).max)))]));
      const counted = await pass(rawSession, (name, values) => histograms.get(name)!.add(values), {
        names: exposed,
        histograms: Object.fromEntries(exposed.map((n) => [n, histograms.get(n)!.absMax])),
      });
      for (const [name, counts] of Object.entries(counted.histograms)) {
        const h = histograms.get(name)!;
        for (let i = 0; i < counts.length; i++) h.slots[i]! += counts[i]!;
      }
      const activations = options.activations === 'int8' ? INT8 : UINT8;
      for (const [name, e] of extremes) {
        const h = histograms.get(name)!;
        if (e.count === 0 || !(h.absMax > 0)) ranges.set(name, seen(e));
        else if (options.method === 'percentile') ranges.set(name, percentileRange(h, e, options.percentile, options.symmetric));
        else if (options.method === 'mse') ranges.set(name, mseRange(h, e, activations, options.symmetric));
        else ranges.set(name, entropyRange(h, e, !options.symmetric && (e.min >= 0 || e.max <= 0) ? 256 : 128));
      }
    }
    return { ranges, source: data.source, samples: data.samples, warnings };
  } finally {
    ort.close();
    removeScratchDir(dir);
  }
}

/** Output names for each value's minimum, maximum and element count, free in the model. */
function reductionsOf(model: Model, values: string[]): Reduction[] {
  const names = new NameAllocator(model);
  return values.map((name) => ({
    name,
    min: names.fresh(`${name}_calibration_min`),
    max: names.fresh(`${name}_calibration_max`),
    size: names.fresh(`${name}_calibration_size`),
  }));
}

/** The model with ReduceMin, ReduceMax (over all axes) and Size of each value as its outputs. */
function withReductions(model: Model, reductions: Reduction[]): Model {
  const graph = model.graph;
  const nodes = reductions.flatMap((r) => [
    makeNode('ReduceMin', [r.name], [r.min], r.min, [intAttribute('keepdims', 0)]),
    makeNode('ReduceMax', [r.name], [r.max], r.max, [intAttribute('keepdims', 0)]),
    makeNode('Size', [r.name], [r.size], r.size),
  ]);
  const outputs = reductions.flatMap((r) => [r.min, r.max, r.size].map((name) => ({ name, metadata_props: [] })));
  const proto: ModelProto = { ...model.proto, graph: { ...graph, node: [...graph.node, ...nodes], output: [...graph.output, ...outputs] } };
  return new Model(proto, model.source);
}

/** Whether every input of the model leaves its first dimension free (symbolic or unknown), so that samples can be run in smaller batches. */
function freeFirstDimension(model: Model): boolean {
  return new GraphIndex(model.graph).realInputs().every((i) => {
    const first = i.type?.tensor_type?.shape?.dim?.[0];
    return first !== undefined && (first.dim_value === undefined || first.dim_value === null);
  });
}

/** Samples [from, to) of an input, along its first dimension. */
function rows(a: NamedArray, from: number, to: number): NamedArray {
  const per = a.dims.slice(1).reduce((n, d) => n * d, 1);
  return { ...a, dims: [to - from, ...a.dims.slice(1)], data: a.data.slice(from * per, to * per) } as NamedArray;
}

/** The extremes as a range ([0, 0] for a value with no finite element). */
function seen(e: Extremes): Range {
  return e.count === 0 ? { min: 0, max: 0 } : { min: e.min, max: e.max };
}

/** The model with the named values among its outputs (ONNX Runtime infers their types). */
function exposing(model: Model, names: string[]): Model {
  const graph = model.graph;
  const present = new Set(graph.output.map((o) => o.name));
  const extra = names.filter((n) => !present.has(n)).map((name) => ({ name, metadata_props: [] }));
  const proto: ModelProto = { ...model.proto, graph: { ...graph, output: [...graph.output, ...extra] } };
  return new Model(proto, model.source);
}

/** Calibration on NaN or infinity would give NaN scales: such data is refused, naming the input and batch. */
function refuseNonFinite(batch: EvalBatch, label: string): void {
  for (const a of batch.inputs as NamedArray[]) {
    if (!(a.data instanceof Float32Array || a.data instanceof Float64Array)) continue;
    const i = a.data.findIndex((v) => !Number.isFinite(v));
    if (i >= 0)
      throw new InputError(
        `${label}: input '${a.name}' of ${batch.source} holds ${a.data[i]} at element ${i}: calibration needs finite values`,
      );
  }
}
