// The pass contract (../shared/DESIGN.md): a pass is a module with a name, declared options with
// defaults, and run(model, options, context) → summary. It changes the model in place, never
// prints, and reports progress through the context.
import type { Model } from '../ir/model.js';
import type { Progress } from '../kernels/progress.js';
import type { OptionSpecs, OptionsOf, OptionValues } from './options.js';

/** Evaluation inputs as the user gave them: a data path, or values for synthesized inputs' dimensions. */
export interface CheckInputs {
  data?: string;
  dims?: Record<string, number>;
  shapes?: Record<string, number[]>;
}

export interface PassContext {
  progress: Progress;
  /** Seed for anything random (clustering initialisation, sampling). */
  seed: number;
  /** Threads of the kernels, this one included. */
  threads: number;
  /**
   * ONNX Runtime's threads for the runs of a pass's checks (int8's guards, fp16's fallback): --threads
   * when given, else one per core even where the kernels keep one thread (external-data models:
   * ONNX Runtime's threads hold no tensor of their own). Default: `threads`.
   */
  checkThreads?: number;
  /**
   * The inputs the user gave for evaluation (`--data`, or `--dim`/`--shape` for synthesized ones):
   * what a pass that runs the model to check its choice (int8's guard, fp16's fallback) runs it on
   * when its own `calibration=` is not given.
   */
  inputs?: CheckInputs;
  /**
   * This run's state of an end-of-run step (`Finish`), made on first use. The pipeline runs each
   * finish asked for once, after the last step, in the order first asked. Absent when a pass runs
   * outside runPipeline: nothing is then left for the end.
   */
  finishing?<S>(finish: Finish<S>): S;
  /**
   * A pass may leave tensors as DerivedBytes (ir/data.ts) computed when written, assuming what only
   * computing them can confirm (fp16: that a weight's values fit float16). Set by compress(), which
   * fills them on its threads and, should the assumption fail (kernels/half-file.ts
   * HalfRangeExceeded), runs the pipeline again without it. Off elsewhere: everything is computed in
   * the pass.
   */
  deferConversions?: boolean;
}

/**
 * Work a pass leaves for the end of the run, once no later step can change what it made (pruned
 * tensors stored sparsely). Every step that asks for the same finish adds to one state, so two
 * pruning steps give one summary; the state lives in the run, not in the module.
 */
export interface Finish<S> {
  /** The state for one run, before any step adds to it. */
  start(): S;
  /** Runs once after the last step: the summary of what it did, or undefined when it did nothing. */
  run(model: Model, state: S): PassSummary | undefined;
}

/** What a pass did to one tensor, measured from the values it changed. */
export interface TensorChange {
  name: string;
  shape: number[];
  dtypeBefore: string;
  dtypeAfter: string;
  bytesBefore: number;
  bytesAfter: number;
  /** Fraction of zeros in the values as the model now computes them. */
  sparsity?: number;
  maxAbsError?: number;
  relRmsError?: number;
  /** How it is stored now, e.g. 'DequantizeLinear int8 per-channel axis 1'. */
  form?: string;
  /** Pass-specific figures (the error before a scale search, ...). */
  details?: Record<string, number | string>;
}

/** A tensor or node the pass left alone, and why (read as a sentence: "<name>: <reason>"). */
export interface Skip {
  name: string;
  reason: string;
  /** Left out by the selection options (min-size, include, exclude): what the user asked, not a limit of the pass. */
  chosen?: boolean;
}

export interface PassSummary {
  pass: string;
  method: string;
  options: OptionValues;
  tensors: TensorChange[];
  skipped: Skip[];
  bytesBefore: number;
  bytesAfter: number;
  /** Anything else worth saying (opset raised, nodes added). */
  notes: string[];
  /** Static quantization: the activation ranges it used (reusable with ranges=FILE). */
  ranges?: ActivationRanges;
}

/** Calibrated activation ranges by value name, with the scale and zero point made from each. */
export interface ActivationRanges {
  method: string;
  source: string;
  samples: number;
  values: Record<string, { min: number; max: number; scale?: number; zeroPoint?: number }>;
}

/**
 * A pass as declared: `O` is the options it receives. The registry holds every pass as `Pass`
 * (options as `OptionValues`); a pass made by definePass receives them typed from its declaration.
 */
export interface Pass<S extends OptionSpecs = OptionSpecs, O = OptionValues> {
  /** The family as written on the command line: quantize, prune, share. */
  family: string;
  /** The method within the family: int8, int4, magnitude, dedup, ... */
  method: string;
  description: string;
  options: S;
  /**
   * Checks the options against each other (and any file they name) before the model is read:
   * returns what is wrong, which the caller reports as a usage error (exit 2).
   */
  validate?(options: O): string | undefined;
  /** May be async: a pass that calibrates runs the model in ONNX Runtime. */
  run(model: Model, options: O, context: PassContext): PassSummary | Promise<PassSummary>;
}

/**
 * Declares a pass whose validate and run receive their options typed from its option declaration
 * (defaults present, enum options as the union of their choices). The result goes into the
 * registry as it is: makeStep resolves the options against the same declaration before any call.
 */
export function definePass<const S extends OptionSpecs>(pass: Pass<S, OptionsOf<S>>): Pass<S, OptionsOf<S>> {
  return pass;
}

export function emptySummary(pass: Pick<Pass, 'family' | 'method'>, options: OptionValues): PassSummary {
  return { pass: pass.family, method: pass.method, options, tensors: [], skipped: [], bytesBefore: 0, bytesAfter: 0, notes: [] };
}
