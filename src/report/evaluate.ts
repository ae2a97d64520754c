// Accuracy and latency of a compressed model against its reference, both run in ONNX Runtime on
// the same inputs. Every figure here comes from those runs, made in a child process (runtime/client.ts)
// that a crash or a model running past the time budget ends without ending onnxpress.
import { knownError, UsageError } from '../errors.js';
import { readModel } from '../io/read.js';
import type { NamedArray } from '../io/testdata.js';
import type { Model } from '../ir/model.js';
import { loadEvalData, type DataOptions, type EvalData } from '../runtime/data.js';
import type { PartDescription } from '../runtime/split.js';
import {
  FidelityAccumulator,
  PerplexityAccumulator,
  argmaxRows,
  classification,
  latencyStats,
  ratioSpread,
  type Classification,
  type Fidelity,
} from './metrics.js';
import { OrtProcess, type RemoteSession } from '../runtime/client.js';
import { checkFeeds } from '../runtime/feeds.js';
import { checkShapeOptions, checkSynthesizedSize, synthesizedHint } from '../runtime/synthesized.js';
import type { Progress } from '../kernels/progress.js';
import { plural } from './format.js';
import { nodeErrors } from './node-errors.js';
import type { NodeError } from './report.js';

export type Metric = 'top1' | 'f1' | 'perplexity' | 'fidelity';
export const METRICS: Metric[] = ['top1', 'f1', 'perplexity', 'fidelity'];

export interface AccuracyReport {
  metric: Metric;
  /** What the figures were measured on. */
  /** `part`: set when the figures come from one part of the data (`auto` reports on the held-out part). */
  data: {
    kind: EvalData['kind'];
    source: string;
    batches: number;
    samples: number;
    description: string;
    labels?: string;
    part?: PartDescription;
  };
  /** The metric for the reference and the compressed model (top-1 or macro F1 as a fraction, perplexity, or cosine). */
  reference: number;
  compressed: number;
  /**
   * What the accuracy gate compares: reference − compressed for top1/f1 (fraction), the relative
   * increase compressed/reference − 1 for perplexity, 1 − the lowest output cosine for fidelity.
   */
  drop: number;
  /** Classification details (top1 and f1 metrics). */
  classification?: { reference: Classification; compressed: Classification };
  /** Language-model details (perplexity metric). */
  perplexity?: { reference: number; compressed: number; tokens: number; relativeIncrease: number };
  /** Output fidelity of the compressed model against the reference, per output. */
  fidelity: Record<string, Fidelity>;
}

export interface LatencyReport {
  threads: number;
  runs: number;
  warmup: number;
  /** The batch timed. */
  batch: string;
  reference: { meanMs: number; p90Ms: number };
  compressed: { meanMs: number; p90Ms: number };
  /** compressed mean / reference mean. */
  ratio: number;
  /**
   * The spread of the per-run ratio compressed_i / reference_i over the alternating runs (10th and
   * 90th percentiles, nearest rank): where it crosses 1, the two are not told apart by these runs.
   */
  ratioP10: number;
  ratioP90: number;
  /** What makes the latency figures unreliable (few runs, a spread that crosses 1). */
  warnings: string[];
}

export interface EvaluateOptions extends DataOptions {
  metric?: Metric;
  threads?: number;
  /** Timed runs per model (default 20; 0 skips latency). */
  runs?: number;
  warmup?: number;
  /** Seconds the evaluation may spend in ONNX Runtime, loading and running both models (default 600). */
  timeout?: number;
  progress?: Progress;
  /**
   * The candidate's path when the caller wrote it before evaluating (compress --eval): an
   * evaluation that fails then says that the file is there, so that a user knows what was left.
   */
  candidateWritten?: string;
  /** Compare every value of the main graph both models write (node-errors.ts): the per-node error report. */
  nodeErrors?: boolean;
}

export interface Evaluation {
  accuracy: AccuracyReport;
  latency?: LatencyReport;
  /** With nodeErrors: the values both models write, the node adding the most error first. */
  nodes?: NodeError[];
}

function classesOf(output: NamedArray): number {
  return output.dims[output.dims.length - 1] ?? 1;
}

function chooseMetric(requested: Metric | undefined, hasLabels: boolean, firstOutput: NamedArray): Metric {
  if (requested) return requested;
  if (!hasLabels) return 'fidelity';
  return firstOutput.dims.length >= 3 ? 'perplexity' : 'top1';
}

/** Evaluates `candidatePath` against `referencePath`. Both are run in ONNX Runtime from their files. */
export async function evaluate(
  referencePath: string,
  candidatePath: string,
  options: EvaluateOptions = {},
  reference?: Model,
): Promise<Evaluation> {
  try {
    return await evaluateIn(new OrtProcess(options.timeout), referencePath, candidatePath, options, reference);
  } catch (e) {
    if (options.candidateWritten !== undefined && e instanceof Error && knownError(e)) {
      // First, so that a long message cut to one line still says it. The error keeps its kind (and exit code).
      e.message = `wrote ${options.candidateWritten}, then the evaluation failed: ${e.message}`;
    }
    throw e;
  }
}

async function evaluateIn(
  ort: OrtProcess,
  referencePath: string,
  candidatePath: string,
  options: EvaluateOptions,
  reference?: Model,
): Promise<Evaluation> {
  // Started first: the child boots and loads ONNX Runtime while the data is read here (its cost:
  // bench/RESULTS.md, §"ONNX Runtime in a child process: what it costs").
  ort.prestart();
  try {
    const refModel = reference ?? readModel(referencePath);
    // Read for its declared inputs, and so that the structural limits apply before ONNX Runtime sees it.
    const cmpModel = readModel(candidatePath);
    const refLabel = refModel.source?.given ?? referencePath;
    checkShapeOptions(refModel, refLabel, options);
    if (options.data === undefined) checkSynthesizedSize(refModel, refLabel, options);
    const data = loadEvalData(refModel, options);
    for (const batch of data.batches) {
      checkFeeds(refModel, refLabel, batch.inputs);
      checkFeeds(cmpModel, candidatePath, batch.inputs);
    }
    const refSession = await ort.load(referencePath, refLabel, options.threads ?? 1);
    const cmpSession = await ort.load(candidatePath, candidatePath, options.threads ?? 1);
    // A model that fails on synthesized inputs most likely wants other shapes: say which options give them.
    const hint =
      data.kind === 'synthesized'
        ? synthesizedHint(refModel, options)
        : 'the inputs came from --data: give inputs of the shapes the model needs';
    const evaluation = await measure(ort, refSession, cmpSession, data, options, hint);
    // The reference as it is on disk: a `reference` given here may be the model the passes just changed
    // (compress hands over its in-memory model for the inputs' metadata), not the original's values.
    if (options.nodeErrors)
      evaluation.nodes = await nodeErrors(ort, reference ? readModel(referencePath) : refModel, cmpModel, data.batches[0]!, hint);
    return evaluation;
  } finally {
    ort.close();
  }
}

/** Runs below this give a latency ratio too rough to act on. */
const MIN_RELIABLE_RUNS = 10;

/** What a reader of the latency figures should know before trusting the ratio. */
export function latencyWarnings(runs: number, spread: { p10: number; p90: number }): string[] {
  const warnings: string[] = [];
  const x = (v: number) => `${v.toFixed(2)}×`;
  if (spread.p10 < 1 && spread.p90 > 1) {
    warnings.push(`the spread of the ratio crosses 1.0 (p10 ${x(spread.p10)}, p90 ${x(spread.p90)}): the difference is within the noise`);
  }
  if (runs < MIN_RELIABLE_RUNS)
    warnings.push(
      `fewer than ${MIN_RELIABLE_RUNS} runs (${runs}): the ratio and its spread are rough; give --runs ${MIN_RELIABLE_RUNS} or more`,
    );
  return warnings;
}

/** Samples in a batch's output: its first dimension ([batch, classes], [batch, seq, vocab]), or 1. */
function samplesOf(output: NamedArray): number {
  return output.dims.length >= 2 ? output.dims[0]! : 1;
}

/**
 * Checks the lines of a labels file with several labels a line, from `first`, against the samples
 * of a batch's output: a line each, with one label for each of its positions.
 */
function checkLines(source: string, perLine: number[], first: number, output: NamedArray, positions: number): void {
  const samples = samplesOf(output),
    each = positions / samples;
  for (let i = 0; i < samples; i++) {
    const line = first + i;
    if (line >= perLine.length)
      throw new UsageError(
        `${source}: ${perLine.length} lines of labels, but the data has more samples (at least ${line + 1}; one line a sample)`,
      );
    if (perLine[line] !== each) {
      throw new UsageError(
        `${source}: line ${line + 1} has ${perLine[line]} labels, but sample ${line + 1} of the data has ${each} position${each === 1 ? '' : 's'} (predictions of shape [${output.dims.join(', ')}]; one label a position, one sample a line)`,
      );
    }
  }
}

/** Runs both models on every batch, then times them. */
async function measure(
  ort: OrtProcess,
  refSession: RemoteSession,
  cmpSession: RemoteSession,
  data: EvalData,
  options: EvaluateOptions,
  hint: string,
): Promise<Evaluation> {
  const threads = options.threads ?? 1;
  const fidelity = new Map<string, FidelityAccumulator>();
  const refPred: number[] = [],
    cmpPred: number[] = [],
    labels: number[] = [];
  const refPpl = new PerplexityAccumulator(),
    cmpPpl = new PerplexityAccumulator();
  let metric: Metric | undefined;
  let labelCursor = 0,
    lineCursor = 0;
  const explicit = data.labels?.values;
  const batchLabels = (
    batch: (typeof data.batches)[number],
    positions: number,
    output: NamedArray,
    expected: NamedArray | undefined,
  ): ArrayLike<number> | undefined => {
    if (explicit) {
      const perLine = data.labels!.perLine;
      // A text file with a token sequence a line: each line is one sample's labels, all its positions.
      if (perLine) checkLines(data.labels!.source, perLine, lineCursor, output, positions);
      lineCursor += samplesOf(output);
      if (labelCursor + positions > explicit.length)
        throw new UsageError(
          `${data.labels!.source}: ${explicit.length} labels, but the data has more samples (at least ${labelCursor + positions})`,
        );
      const slice = explicit.subarray(labelCursor, labelCursor + positions);
      labelCursor += positions;
      return slice;
    }
    if (batch.labels) return batch.labels;
    // Without labels, stored expected outputs of a classifier give labels: their top-1 class.
    if (expected && expected.dims.length === 2 && (metric === 'top1' || metric === 'f1'))
      return argmaxRows(expected.data as ArrayLike<number>, classesOf(expected));
    return undefined;
  };
  const hasLabels = explicit !== undefined || data.batches.some((b) => b.labels !== undefined);
  options.progress?.start(data.batches.length, 'evaluating');
  for (const batch of data.batches) {
    const [a, b] = [await ort.run(refSession, batch.inputs, hint), await ort.run(cmpSession, batch.inputs, hint)];
    metric ??= chooseMetric(options.metric, hasLabels, a[0]!);
    for (let i = 0; i < a.length; i++) {
      let acc = fidelity.get(a[i]!.name);
      if (!acc) fidelity.set(a[i]!.name, (acc = new FidelityAccumulator()));
      if (Array.isArray(a[i]!.data)) continue;
      acc.add(a[i]!.data as ArrayLike<number>, b[i]!.data as ArrayLike<number>);
    }
    if (metric !== 'fidelity') {
      const out = a[0]!,
        classes = classesOf(out);
      const positions = out.data.length / classes;
      const target = batchLabels(batch, positions, out, batch.expected[0]);
      if (!target) throw new UsageError(`metric ${metric} needs labels: give --labels FILE (or labels beside each test_data_set)`);
      if (target.length !== positions) throw new UsageError(`batch ${batch.source}: ${target.length} labels for ${positions} predictions`);
      if (metric === 'perplexity') {
        refPpl.add(out.data as ArrayLike<number>, classes, target);
        cmpPpl.add(b[0]!.data as ArrayLike<number>, classes, target);
      } else {
        refPred.push(...argmaxRows(out.data as ArrayLike<number>, classes));
        cmpPred.push(...argmaxRows(b[0]!.data as ArrayLike<number>, classes));
        labels.push(...Array.from(target));
      }
    }
    options.progress?.tick(1);
  }
  options.progress?.stop();
  if (explicit && labelCursor !== explicit.length)
    throw new UsageError(`${data.labels!.source}: ${explicit.length} labels for ${labelCursor} predictions`);
  if (data.labels?.perLine && lineCursor !== data.labels.perLine.length)
    throw new UsageError(
      `${data.labels.source}: ${data.labels.perLine.length} lines of labels for ${lineCursor} samples (one line a sample)`,
    );
  const fid = Object.fromEntries([...fidelity].map(([k, v]) => [k, v.result()]));
  const accuracy: AccuracyReport = {
    metric: metric!,
    data: {
      kind: data.kind,
      source: data.source,
      batches: data.batches.length,
      samples: data.samples,
      description: describeData(data),
      labels: data.labels?.source,
      ...(data.part ? { part: data.part } : {}),
    },
    reference: 1,
    compressed: 1,
    drop: 0,
    fidelity: fid,
  };
  if (metric === 'top1' || metric === 'f1') {
    const r = classification(refPred, labels),
      c = classification(cmpPred, labels);
    const key = metric === 'top1' ? 'top1' : 'macroF1';
    Object.assign(accuracy, {
      reference: r[key],
      compressed: c[key],
      drop: r[key] - c[key],
      classification: { reference: r, compressed: c },
    });
  } else if (metric === 'perplexity') {
    const r = refPpl.result(),
      c = cmpPpl.result();
    const relativeIncrease = c.perplexity / r.perplexity - 1;
    Object.assign(accuracy, {
      reference: r.perplexity,
      compressed: c.perplexity,
      drop: relativeIncrease,
      perplexity: { reference: r.perplexity, compressed: c.perplexity, tokens: r.tokens, relativeIncrease },
    });
  } else {
    const cosines = Object.values(fid).map((f) => f.cosine);
    const worst = cosines.length ? Math.min(...cosines) : 1;
    Object.assign(accuracy, { reference: 1, compressed: worst, drop: 1 - worst });
  }
  let latency: LatencyReport | undefined;
  const runs = options.runs ?? 20;
  if (runs > 0) {
    const warmup = options.warmup ?? 5;
    const batch = data.batches[0]!;
    options.progress?.start(runs, 'timing');
    // Timed in the child around session.run alone, the two models in turn (not the messages to it).
    const [refTimes, cmpTimes] = (await ort.time(
      [refSession, cmpSession],
      batch.inputs,
      runs,
      warmup,
      () => options.progress?.tick(1),
      hint,
    )) as [number[], number[]];
    options.progress?.stop();
    const r = latencyStats(refTimes),
      c = latencyStats(cmpTimes);
    const spread = ratioSpread(refTimes, cmpTimes);
    latency = {
      threads,
      runs,
      warmup,
      batch: batch.source,
      reference: { meanMs: r.meanMs, p90Ms: r.p90Ms },
      compressed: { meanMs: c.meanMs, p90Ms: c.p90Ms },
      ratio: c.meanMs / r.meanMs,
      ratioP10: spread.p10,
      ratioP90: spread.p90,
      warnings: latencyWarnings(runs, spread),
    };
  }
  return { accuracy, latency };
}

export function describeData(data: EvalData): string {
  const part =
    data.part === undefined
      ? []
      : data.part.part === 'held-out'
        ? [`${data.part.range}, held out (the choice was made on ${data.part.other})`]
        : [`${data.part.range}, to choose on (${data.part.other} held out)`];
  if (data.kind === 'synthesized') {
    // What was assumed, and how to change it: synthesized figures are only as good as these shapes.
    const batches = `${plural(data.batches.length, 'batch', 'batches')} (${plural(data.samples, 'sample')})`;
    return [`synthesized: ${batches}, seed ${data.synthesized?.seed ?? 0}`, ...part, ...(data.synthesized?.assumed ?? [])].join('; ');
  }
  const where = data.kind === 'test-data-sets' && data.batches.length === 1 ? data.batches[0]!.source : data.source;
  return [`${plural(data.samples, 'sample')} in ${plural(data.batches.length, 'batch', 'batches')} from ${where}`, ...part].join('; ');
}
