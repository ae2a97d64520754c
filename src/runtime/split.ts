// Two disjoint parts of the evaluation data. `auto` chooses on the first (tuning) part and reports its
// figures on the second (held-out) one, so that what it reports was not measured on the samples its
// choices were fitted to. Several batches are split between batches; a single batch between samples.
import { UsageError } from '../errors.js';
import type { ArrayData, NamedArray } from '../io/testdata.js';
import type { EvalBatch, EvalData } from './data.js';

export type DataPart = 'tuning' | 'held-out';

/** Which part of the data an evaluation ran on, and the other part, as "samples 1–180 of 360". */
export interface PartDescription {
  part: DataPart;
  range: string;
  other: string;
}

/** Samples in a batch: the first dimension of its first input, as EvalData counts them. */
function samplesIn(batch: EvalBatch): number {
  return batch.inputs[0]?.dims[0] ?? 1;
}

/** Rows [from, to) along the first dimension. */
function rows(array: NamedArray, from: number, to: number): NamedArray {
  const per = array.dims.slice(1).reduce((n, d) => n * d, 1);
  const data = array.data.slice(from * per, to * per) as ArrayData;
  return { ...array, dims: [to - from, ...array.dims.slice(1)], data };
}

/** One batch's samples [from, to): inputs, stored outputs and labels alike. */
function sliceBatch(batch: EvalBatch, from: number, to: number): EvalBatch {
  const samples = samplesIn(batch);
  const odd = batch.inputs.find((a) => a.dims[0] !== samples);
  if (odd) {
    throw new UsageError(
      `${batch.source}: cannot split its samples in two: input '${odd.name}' has shape [${odd.dims.join(', ')}], ` +
        `not ${samples} samples along the first dimension like the others (give --data with two or more batches)`,
    );
  }
  let labels: ArrayLike<number> | undefined;
  if (batch.labels) {
    const per = batch.labels.length / samples;
    if (!Number.isInteger(per))
      throw new UsageError(`${batch.source}: ${batch.labels.length} labels for ${samples} samples cannot be split between them`);
    labels = Array.prototype.slice.call(batch.labels, from * per, to * per) as number[];
  }
  return {
    inputs: batch.inputs.map((a) => rows(a, from, to)),
    // Stored outputs whose first dimension is not the samples' cannot be shared out: left out.
    expected: batch.expected.filter((a) => a.dims[0] === samples).map((a) => rows(a, from, to)),
    ...(labels ? { labels } : {}),
    source: batch.source,
  };
}

/** Labels given with --labels, cut after the first `samples` samples. */
function cutLabels(data: EvalData, samples: number): [EvalData['labels'], EvalData['labels']] {
  const labels = data.labels;
  if (!labels) return [undefined, undefined];
  let at: number;
  if (labels.perLine) {
    // A line a sample: the labels of the first `samples` lines.
    at = labels.perLine.slice(0, samples).reduce((n, c) => n + c, 0);
  } else {
    const per = labels.values.length / data.samples;
    if (!Number.isInteger(per)) {
      throw new UsageError(
        `${labels.source}: ${labels.values.length} labels for ${data.samples} samples cannot be split between them (give one line a sample)`,
      );
    }
    at = per * samples;
  }
  const part = (values: Int32Array, perLine: number[] | undefined) => ({ source: labels.source, values, ...(perLine ? { perLine } : {}) });
  return [
    part(labels.values.subarray(0, at), labels.perLine?.slice(0, samples)),
    part(labels.values.subarray(at), labels.perLine?.slice(samples)),
  ];
}

function withBatches(data: EvalData, batches: EvalBatch[], labels: EvalData['labels'], description: PartDescription): EvalData {
  const part: EvalData = { ...data, batches, samples: batches.reduce((n, b) => n + samplesIn(b), 0), part: description };
  if (labels) part.labels = labels;
  else delete part.labels;
  return part;
}

/** "samples 1–180 of 360", "batch 3 of 4". */
function range(what: 'batch' | 'sample', from: number, to: number, of: number): string {
  return to - from > 1 ? `${what === 'batch' ? 'batches' : 'samples'} ${from + 1}–${to} of ${of}` : `${what} ${from + 1} of ${of}`;
}

/**
 * The data in two disjoint parts: with several batches, the first ⌈n/2⌉ batches and the rest; with
 * one, the first ⌈n/2⌉ of its samples and the rest. Each part says which it is and what the other was.
 */
export function splitData(data: EvalData): Record<DataPart, EvalData> {
  const n = data.batches.length;
  if (n >= 2) {
    const k = Math.ceil(n / 2);
    const cut = data.batches.slice(0, k).reduce((s, b) => s + samplesIn(b), 0);
    const [first, second] = cutLabels(data, cut);
    const a = range('batch', 0, k, n),
      b = range('batch', k, n, n);
    return {
      tuning: withBatches(data, data.batches.slice(0, k), first, { part: 'tuning', range: a, other: b }),
      'held-out': withBatches(data, data.batches.slice(k), second, { part: 'held-out', range: b, other: a }),
    };
  }
  const batch = data.batches[0]!;
  const samples = samplesIn(batch);
  if (samples < 2) {
    throw new UsageError(
      `${data.source}: one sample cannot be split into a part to choose on and a part to report on ` +
        '(give --data with two or more samples, or --batches 2 or more for synthesized inputs)',
    );
  }
  const k = Math.ceil(samples / 2);
  const [first, second] = cutLabels(data, k);
  const a = range('sample', 0, k, samples),
    b = range('sample', k, samples, samples);
  return {
    tuning: withBatches(data, [sliceBatch(batch, 0, k)], first, { part: 'tuning', range: a, other: b }),
    'held-out': withBatches(data, [sliceBatch(batch, k, samples)], second, { part: 'held-out', range: b, other: a }),
  };
}
