// Activation ranges for static quantization: the model is run in ONNX Runtime on the calibration data
// with the values to quantize exposed as extra outputs. The child process that runs it keeps per value
// only its running extremes (and, for percentile, entropy and mse, a histogram filled in a second pass
// over the data, once the extremes fix its bins); the activations never leave it, and it runs the data
// in batches sized so that one batch's exposed values take at most BATCH_BYTES.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { NamedArray } from '../io/testdata.js';
import { writeModel } from '../io/write.js';
import { GraphIndex } from '../ir/graph.js';
import { Model } from '../ir/model.js';
import type { ModelProto } from '../ir/onnx.js';
import { addExtremes, emptyExtremes, mergeExtremes, type Extremes } from '../kernels/activation-stats.js';
import { INT8, UINT8 } from '../kernels/quantize.js';
import { OrtProcess } from '../runtime/client.js';
import { loadEvalData, type EvalBatch } from '../runtime/data.js';
import { checkFeeds } from '../runtime/feeds.js';
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
}

export interface CalibratedRanges {
  ranges: Map<string, Range>;
  source: string;
  samples: number;
  warnings: string[];
}

/** The range of each named value (graph inputs or node outputs of the main graph) on the calibration data. */
export async function calibrateRanges(model: Model, names: string[], options: RangeOptions): Promise<CalibratedRanges> {
  const label = `calibration data ${options.data}`;
  const data = loadEvalData(model, { data: options.data });
  for (const batch of data.batches) {
    try {
      checkFeeds(model, label, batch.inputs);
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
    refuseNonFinite(batch, label);
  }
  const inputs = new Set(model.graph.input.map((i) => i.name ?? ''));
  const wanted = [...new Set(names)];
  const exposed = wanted.filter((n) => !inputs.has(n));
  // The graph inputs among the values asked for (a model whose first Conv stays float asks for none).
  const measuredInputs = new Set(wanted.filter((n) => inputs.has(n)));
  const probe = exposing(model, exposed);
  const splittable = freeFirstDimension(model);
  const dir = mkdtempSync(join(tmpdir(), 'onnxpress-ranges-'));
  // No time budget, as for GPTQ's calibration: --eval-timeout does not reach passes.
  const ort = new OrtProcess(Infinity);
  ort.prestart();
  try {
    const path = join(dir, 'probe.onnx');
    writeModel(probe, path);
    const session = await ort.load(path, model.source?.given ?? 'the model', options.threads ?? availableParallelism());
    // One pass over the data: graph inputs measured here, the exposed values in the child.
    const pass = async (visitInput: (name: string, values: Float32Array) => void, histograms?: Record<string, number>) => {
      let perSample = 0;
      for (const batch of data.batches) {
        for (const a of batch.inputs) if (measuredInputs.has(a.name) && a.data instanceof Float32Array) visitInput(a.name, a.data);
        if (exposed.length === 0) continue;
        const samples = batch.inputs[0]?.dims[0] ?? 1;
        const whole = !splittable || batch.inputs.some((a) => a.dims[0] !== samples);
        for (let from = 0; from < samples; ) {
          // The first run takes one sample, and tells how many fit in BATCH_BYTES.
          const take = whole ? samples : Math.max(1, Math.min(samples - from, perSample > 0 ? Math.floor(BATCH_BYTES / perSample) : 1));
          const part = whole ? batch.inputs : batch.inputs.map((a) => rows(a, from, from + take));
          const { bytes } = await ort.collect(session, part, exposed, histograms);
          perSample = Math.max(perSample, bytes / take);
          from += take;
        }
      }
      return ort.collected(session);
    };
    const extremes = new Map(wanted.map((n) => [n, emptyExtremes()]));
    const first = await pass((name, values) => addExtremes(extremes.get(name)!, values));
    for (const [name, e] of Object.entries(first.extremes)) mergeExtremes(extremes.get(name)!, e);
    const ranges = new Map<string, Range>();
    const warnings: string[] = [];
    if (options.method === 'minmax') {
      for (const [name, e] of extremes) ranges.set(name, seen(e));
    } else {
      if (data.samples < MIN_HISTOGRAM_SAMPLES) {
        warnings.push(
          `method=${options.method} on ${data.samples} calibration samples (fewer than ${MIN_HISTOGRAM_SAMPLES}): the tails it clips are measured on few values; give more samples, or method=minmax`,
        );
      }
      const histograms = new Map([...extremes].map(([n, e]) => [n, new Histogram(Math.max(Math.abs(seen(e).min), Math.abs(seen(e).max)))]));
      const second = await pass(
        (name, values) => histograms.get(name)!.add(values),
        Object.fromEntries(exposed.map((n) => [n, histograms.get(n)!.absMax])),
      );
      for (const [name, counts] of Object.entries(second.histograms)) {
        const h = histograms.get(name)!;
        for (let i = 0; i < counts.length; i++) h.counts[i]! += counts[i]!;
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
    rmSync(dir, { recursive: true, force: true });
  }
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
