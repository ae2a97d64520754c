// Activation ranges for static quantization: the model is run in ONNX Runtime on the calibration data
// with the values to quantize exposed as extra outputs, batch by batch, keeping per value only its
// running extremes (and, for percentile and entropy, a histogram filled in a second pass over the
// data, once the extremes fix its bins): memory holds one batch's activations at a time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { NamedArray } from '../io/testdata.js';
import { writeModel } from '../io/write.js';
import { Model } from '../ir/model.js';
import type { ModelProto } from '../ir/onnx.js';
import { loadEvalData, type EvalBatch } from '../runtime/data.js';
import { OrtProcess } from '../runtime/client.js';
import { checkFeeds } from '../runtime/feeds.js';
import { addExtremes, emptyExtremes, entropyRange, Histogram, percentileRange, type Extremes, type Range } from './range-methods.js';

export type RangeMethod = 'minmax' | 'percentile' | 'entropy';

/** Below this many calibration samples, the tails percentile and entropy cut are measured on too few values to trust. */
export const MIN_HISTOGRAM_SAMPLES = 100;

export interface RangeOptions {
  /** The calibration data: a test_data_set folder, .npz, .npy or .pb, as --data. */
  data: string;
  method: RangeMethod;
  /** percentile: the share of values kept inside the range, in percent. */
  percentile: number;
  /** Whether activations are quantized symmetrically (which tail percentile cuts, how many levels entropy counts). */
  symmetric: boolean;
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
  const probe = exposing(
    model,
    wanted.filter((n) => !inputs.has(n)),
  );
  const dir = mkdtempSync(join(tmpdir(), 'onnxpress-ranges-'));
  // No time budget, as for GPTQ's calibration: --eval-timeout does not reach passes.
  const ort = new OrtProcess(Infinity);
  ort.prestart();
  try {
    const path = join(dir, 'probe.onnx');
    writeModel(probe, path);
    const session = await ort.load(path, model.source?.given ?? 'the model');
    const each = async (visit: (name: string, values: Float32Array) => void) => {
      for (const batch of data.batches) {
        for (const a of batch.inputs) if (inputs.has(a.name) && a.data instanceof Float32Array) visit(a.name, a.data);
        for (const out of await ort.run(session, batch.inputs)) if (out.data instanceof Float32Array) visit(out.name, out.data);
      }
    };
    const extremes = new Map(wanted.map((n) => [n, emptyExtremes()]));
    await each((name, values) => {
      const e = extremes.get(name);
      if (e) addExtremes(e, values);
    });
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
      await each((name, values) => histograms.get(name)?.add(values));
      for (const [name, e] of extremes) {
        const h = histograms.get(name)!;
        if (e.count === 0 || !(h.absMax > 0)) ranges.set(name, seen(e));
        else if (options.method === 'percentile') ranges.set(name, percentileRange(h, e, options.percentile, options.symmetric));
        else ranges.set(name, entropyRange(h, e, !options.symmetric && (e.min >= 0 || e.max <= 0) ? 256 : 128));
      }
    }
    return { ranges, source: data.source, samples: data.samples, warnings };
  } finally {
    ort.close();
    rmSync(dir, { recursive: true, force: true });
  }
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
