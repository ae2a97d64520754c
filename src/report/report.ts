// The report: one data structure, rendered as a terminal table, JSON, Markdown or HTML.
// Its JSON form is versioned; fields are only ever added within a version.
import { terminalSafeJson } from './printable.js';
import type { AccuracyReport, LatencyReport } from './evaluate.js';
import type { FileSize } from './size.js';
import type { TensorRow } from './tensors.js';
import type { RecipeData } from './recipe-data.js';
import type { ActivationRanges } from '../pass/pass.js';

export const REPORT_VERSION = 1;

/** One value both models write, compared (report/node-errors.ts). */
export interface NodeError {
  /** The original model's node that writes the value, and its op. */
  name: string;
  opType: string;
  output: string;
  cosine: number;
  snrDb: number;
  /**
   * The error the node adds: its noise-to-signal power ratio, 10^(−SNR/10), less that of the worst
   * compared value it reads (0 for identical inputs); about 0 where it only carries their error.
   */
  noiseAdded: number;
  maxAbsError: number;
}

/** A pass as run: its options and its own summary (the per-tensor figures are in Report.tensors). */
export interface PassRecord {
  pass: string;
  method: string;
  options: Record<string, unknown>;
  /** Tensors it changed. */
  tensorsChanged: number;
  /** Bytes of those tensors before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** What it left alone, and why. */
  skipped: { name: string; reason: string; chosen?: boolean }[];
  notes: string[];
  /** Static quantization: the activation ranges used, by value name (`ranges=` of a later run reads them back). */
  ranges?: ActivationRanges;
}

export interface GateResult {
  gate: 'max-accuracy-drop' | 'min-size-reduction' | 'min-cosine' | 'max-latency-ratio' | 'strict';
  threshold: number;
  actual: number;
  passed: boolean;
  message: string;
}

export interface Report {
  version: number;
  tool: { name: 'onnxpress'; version: string };
  /** The command that wrote it: `auto` reports are compress reports with `auto` set. */
  command: 'compress' | 'eval' | 'auto';
  /**
   * `parameters`: elements of the weights as the model computes them. `storedParameters`, where
   * clustered weights store codes and codebooks: the elements stored (a code per element, plus
   * each codebook's values); absent where it equals `parameters`.
   */
  input: { path: string; bytes: number; files: FileSize[]; parameters: number; storedParameters?: number };
  output: {
    path: string;
    bytes: number;
    files: FileSize[];
    parameters: number;
    storedParameters?: number;
    gzipBytes?: number;
    identical?: boolean;
  };
  /** output.bytes / input.bytes. */
  sizeRatio: number;
  passes: PassRecord[];
  tensors: TensorRow[];
  accuracy?: AccuracyReport;
  latency?: LatencyReport;
  /**
   * `--eval`: every value a node of the compressed model's main graph writes under a name the
   * original's also has, compared on the first batch's first samples; ordered by the error each node adds (its
   * noise-to-signal power ratio beyond that of the values it reads), worst first.
   */
  nodes?: NodeError[];
  gates: GateResult[];
  /** The pipeline, evaluation settings and gates exactly as run: `--recipe` of this report reproduces the output. */
  recipe?: RecipeData;
  /**
   * `auto`: the budget, the sensitivity ranking, every trial and the precision chosen per layer.
   * `data`: the trials (and `withinBudget`) were measured on one part of the data, the report's
   * accuracy and latency on the other, held-out part.
   */
  auto?: {
    budget: number;
    recipe: string;
    /** `auto --calibration`: the form its 8-bit layers take (static int8, calibrated on that data). */
    int8?: string;
    withinBudget: boolean;
    sensitivity: { name: string; drop: number }[];
    data?: { chosenOn: string; reportedOn: string };
    /** `step`: what the trial tried ("fc2.weight alone at int4", "every layer at int4", "fc2.weight → int8"). */
    /** Layers at each precision (fp16: the weight stored in float16, computed in float32). */
    trials: { bytes: number; drop: number; int4: number; int8: number; fp16?: number; float: number; step?: string }[];
    chosen: Record<string, string>;
    /** Layers that could not take 4 bits: what they were written at instead, and why. */
    fellBack?: { name: string; asked: string; written: string; reason: string }[];
  };
  /** Set when nothing was written (compress --dry-run): sizes are those the files would have. */
  dryRun?: boolean;
}

export interface GateOptions {
  maxAccuracyDrop?: number;
  minSizeReduction?: number;
  minCosine?: number;
  /** --max-latency-ratio: the compressed model's mean latency at most this many times the original's. */
  maxLatencyRatio?: number;
  /** --strict: every pass changed something, and left nothing out but what the selection options asked. */
  strict?: boolean;
}

export function checkGates(report: Report, gates: GateOptions): GateResult[] {
  const results: GateResult[] = [];
  if (gates.minSizeReduction !== undefined) {
    const actual = report.input.bytes / report.output.bytes;
    const passed = actual >= gates.minSizeReduction;
    results.push({
      gate: 'min-size-reduction',
      threshold: gates.minSizeReduction,
      actual,
      passed,
      message: `size reduction ${actual.toFixed(3)}× ${passed ? 'meets' : 'is below'} the required ${gates.minSizeReduction}×`,
    });
  }
  if (gates.maxAccuracyDrop !== undefined) {
    const a = report.accuracy;
    if (!a) throw new Error('--max-accuracy-drop needs an evaluation');
    const passed = a.drop <= gates.maxAccuracyDrop;
    const what = a.metric === 'perplexity' ? 'relative perplexity increase' : a.metric === 'fidelity' ? '1 − cosine' : `${a.metric} drop`;
    results.push({
      gate: 'max-accuracy-drop',
      threshold: gates.maxAccuracyDrop,
      actual: a.drop,
      passed,
      message: `${what} ${a.drop.toFixed(4)} ${passed ? 'is within' : 'exceeds'} the allowed ${gates.maxAccuracyDrop} by ${Math.abs(gates.maxAccuracyDrop - a.drop).toFixed(4)}`,
    });
  }
  if (gates.minCosine !== undefined) {
    const a = report.accuracy;
    if (!a) throw new Error('--min-cosine needs an evaluation');
    const cosines = Object.entries(a.fidelity);
    const [name, worst] = cosines.reduce((w, e) => (e[1].cosine < w[1].cosine ? e : w), cosines[0] ?? ['', { cosine: 1 } as never]);
    const passed = worst.cosine >= gates.minCosine;
    results.push({
      gate: 'min-cosine',
      threshold: gates.minCosine,
      actual: worst.cosine,
      passed,
      message: `lowest output cosine ${worst.cosine.toFixed(6)}${name ? ` (${name})` : ''} ${passed ? 'meets' : 'is below'} the required ${gates.minCosine}`,
    });
  }
  if (gates.maxLatencyRatio !== undefined) {
    const l = report.latency;
    if (!l) throw new Error('--max-latency-ratio needs a latency measurement');
    const passed = l.ratio <= gates.maxLatencyRatio;
    const ms = (x: number) => x.toFixed(3);
    results.push({
      gate: 'max-latency-ratio',
      threshold: gates.maxLatencyRatio,
      actual: l.ratio,
      passed,
      message: `mean latency ${ms(l.reference.meanMs)} → ${ms(l.compressed.meanMs)} ms, ${l.ratio.toFixed(3)}× (p10–p90 ${l.ratioP10.toFixed(2)}–${l.ratioP90.toFixed(2)}×, ${l.runs} runs) ${passed ? 'is within' : 'exceeds'} the allowed ${gates.maxLatencyRatio}×`,
    });
  }
  if (gates.strict) {
    const short = report.passes.flatMap((p) => {
      const limits = p.skipped.filter((s) => !s.chosen).length;
      const name = `${p.pass} ${p.method}`;
      if (p.tensorsChanged === 0) return [`${name} changed nothing`];
      return limits > 0 ? [`${name} left ${limits} tensor${limits === 1 ? '' : 's'} alone (see skipped)`] : [];
    });
    results.push({
      gate: 'strict',
      threshold: 0,
      actual: short.length,
      passed: short.length === 0,
      message: short.length === 0 ? 'every pass did all it was asked' : short.join('; '),
    });
  }
  return results;
}

/** JSON text of the report. Infinite values (an identical output's SNR) are written as the strings "Infinity"/"-Infinity". */
export function reportJson(report: Report): string {
  return terminalSafeJson(
    JSON.stringify(
      report,
      (_k, v) => {
        if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? null : v > 0 ? 'Infinity' : '-Infinity';
        return v;
      },
      2,
    ),
  );
}
