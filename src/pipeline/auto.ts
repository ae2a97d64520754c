// Automatic per-layer precision within an accuracy budget. Each layer's sensitivity is measured
// (the accuracy change when only that layer is quantized to 4 bits), then, starting from every
// layer at 4 bits, the most sensitive layers are raised to 8 bits, then to float16 storage (the
// weight stored in float16 and cast back: half the bytes of float32, the compute unchanged), then
// to float32, until the measured drop of the whole model is within the budget. Every decision
// rests on a measurement, made on the tuning part of the evaluation data (runtime/split.ts): the
// figures reported for the chosen model come from the other, held-out part.
import { makeScratchDir, removeScratchDir } from '../fs/scratch.js';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readModel } from '../io/read.js';
import { evaluate, type EvaluateOptions } from '../report/evaluate.js';
import { checkEvalData, loadEvalData } from '../runtime/data.js';
import type { PartDescription } from '../runtime/split.js';
import { findWeights } from '../ir/weights.js';
import { selection } from '../pass/select.js';
import { parseOpList } from '../pass/ops.js';
import { compress, type CompressResult } from './compress.js';
import { makeStep, type PipelineStep } from './registry.js';

export type Precision = 'int4' | 'int8' | 'fp16' | 'float';

/** The steps a layer is raised through, from the smallest. */
const LADDER: Precision[] = ['int4', 'int8', 'fp16', 'float'];

export interface AutoOptions {
  maxDrop: number;
  evaluate: EvaluateOptions;
  /** Options for the 4-bit and 8-bit passes (block size and so on). */
  int4?: Record<string, unknown>;
  int8?: Record<string, unknown>;
  progress?: (message: string) => void;
}

export interface AutoTrial {
  /** The precision each layer was written at (what the passes applied, not what was asked). */
  assignment: Record<string, Precision>;
  /** What the trial asked of each layer. */
  asked: Record<string, Precision>;
  bytes: number;
  drop: number;
}

/** A layer that could not take the precision asked: what it got instead, and the pass's reason. */
export interface FellBack {
  name: string;
  asked: Precision;
  written: Precision;
  reason: string;
}

export interface AutoResult {
  /** Layers by sensitivity, most sensitive first: the drop when only that layer is at 4 bits. */
  sensitivity: { name: string; drop: number }[];
  trials: AutoTrial[];
  chosen: AutoTrial;
  steps: PipelineStep[];
  /** Whether the chosen trial's drop, measured on the tuning part, is within the budget. */
  withinBudget: boolean;
  /** The part of the data the trials ran on (the report's figures come from the other part). */
  tuning: PartDescription;
  /** Layers whose 4-bit form could not be written (they start from 8 bits, or float). */
  fellBack: FellBack[];
}

/** The precision each layer was written at, from the passes' records, and the reasons of those left out. */
function written(result: CompressResult, layers: string[]): { precision: Record<string, Precision>; reasons: Map<string, string> } {
  const precision: Record<string, Precision> = Object.fromEntries(layers.map((l) => [l, 'float' as Precision]));
  const reasons = new Map<string, string>();
  for (const pass of result.passes) {
    if (pass.method !== 'int4' && pass.method !== 'int8' && pass.method !== 'fp16') continue;
    for (const t of pass.tensors) if (t.name in precision) precision[t.name] = pass.method;
    for (const s of pass.skipped) if (s.name in precision && !s.chosen) reasons.set(s.name, `${pass.method}: ${s.reason}`);
  }
  return { precision, reasons };
}

/** `a|b|c` matching exactly these names (characters that are wildcards in patterns are not expected in names). */
function exactly(names: string[]): string {
  return names.join('|');
}

export function stepsFor(assignment: Record<string, Precision>, options: Pick<AutoOptions, 'int4' | 'int8'>): PipelineStep[] {
  const by = (p: Precision) =>
    Object.keys(assignment)
      .filter((n) => assignment[n] === p)
      .sort();
  const steps: PipelineStep[] = [];
  const int4 = by('int4'),
    int8 = by('int8'),
    fp16 = by('fp16');
  if (int4.length) steps.push(makeStep('quantize', 'int4', { ...options.int4, include: exactly(int4), 'min-size': 0 }, 'auto'));
  if (int8.length) steps.push(makeStep('quantize', 'int8', { ...options.int8, include: exactly(int8), 'min-size': 0 }, 'auto'));
  // Matched by the weights' names, no node is: the nodes keep float32 and only these weights are
  // stored in float16 (weight-only). Nothing is computed in float16, so there is nothing to check.
  if (fp16.length)
    steps.push(makeStep('quantize', 'fp16', { include: exactly(fp16), 'min-size': 0, 'weight-only': true, check: 'none' }, 'auto'));
  return steps;
}

export async function autoPrecision(input: string, output: string, options: AutoOptions): Promise<AutoResult & { result: CompressResult }> {
  const model = readModel(input);
  // Data that cannot be split in two is refused before any trial.
  checkEvalData(model, options.evaluate);
  const tuning = loadEvalData(model, { ...options.evaluate, part: 'tuning' }).part!;
  const chosen = selection({ 'min-size': 256 }, parseOpList('MatMul,Gemm,Conv,Gather'));
  const layers = findWeights(model)
    .filter((w) => w.uses.length > 0 && !chosen.reason(w) && w.tensor.data_type === 1)
    .map((w) => w.name);
  const scratch = makeScratchDir('auto');
  const trials: AutoTrial[] = [];
  let n = 0;
  let reasons = new Map<string, string>();
  const trial = async (assignment: Record<string, Precision>): Promise<AutoTrial> => {
    const path = join(scratch, `trial-${n++}.onnx`);
    const result = await compress(input, path, { steps: stepsFor(assignment, options) });
    const { accuracy } = await evaluate(input, path, { ...options.evaluate, runs: 0, part: 'tuning', nodeErrors: false }, model);
    const got = written(result, layers);
    reasons = got.reasons;
    const t = { assignment: got.precision, asked: { ...assignment }, bytes: statSync(path).size, drop: accuracy.drop };
    rmSync(path, { force: true });
    trials.push(t);
    return t;
  };
  try {
    const floatAll = Object.fromEntries(layers.map((l) => [l, 'float' as Precision]));
    const sensitivity: { name: string; drop: number }[] = [];
    for (const layer of layers) {
      const t = await trial({ ...floatAll, [layer]: 'int4' });
      sensitivity.push({ name: layer, drop: t.drop });
      options.progress?.(`sensitivity ${layer}: ${t.drop.toFixed(4)}`);
    }
    sensitivity.sort((a, b) => b.drop - a.drop || a.name.localeCompare(b.name));
    // Start from the smallest model and raise the most sensitive layers one step at a time.
    const assignment: Record<string, Precision> = Object.fromEntries(layers.map((l) => [l, 'int4' as Precision]));
    let current = await trial(assignment);
    options.progress?.(`all 4-bit: drop ${current.drop.toFixed(4)}`);
    // A layer the 4-bit pass could not take starts from 8 bits (and is float where int8 cannot take it either).
    const fellBack: FellBack[] = layers
      .filter((l) => current.assignment[l] !== 'int4')
      .map((name) => ({ name, asked: 'int4', written: 'float', reason: reasons.get(name) ?? 'int4: not written' }));
    if (fellBack.length > 0) {
      for (const f of fellBack) assignment[f.name] = 'int8';
      current = await trial(assignment);
      for (const f of fellBack) f.written = current.assignment[f.name]!;
      options.progress?.(
        `${fellBack.length} layer${fellBack.length === 1 ? '' : 's'} without a 4-bit form at 8 bits: drop ${current.drop.toFixed(4)}`,
      );
    }
    // Each level in turn raises the most sensitive layers that sit on the level below it.
    for (const level of LADDER.slice(1)) {
      const below = LADDER[LADDER.indexOf(level) - 1]!;
      for (const { name } of sensitivity) {
        if (current.drop <= options.maxDrop) break;
        if (assignment[name] !== below) continue;
        assignment[name] = level;
        current = await trial(assignment);
        options.progress?.(`${name} → ${level}: drop ${current.drop.toFixed(4)}`);
      }
    }
    const steps = stepsFor(current.assignment, options);
    const result = await compress(input, output, { steps, createOutputFolder: true });
    return { sensitivity, trials, chosen: current, steps, withinBudget: current.drop <= options.maxDrop, tuning, fellBack, result };
  } finally {
    removeScratchDir(scratch);
  }
}
