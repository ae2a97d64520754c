// The shapes of synthesized evaluation inputs (no --data): chosen from the model's declared inputs,
// --dim (named dimensions) and --shape (an input's whole shape, for dimensions a model leaves
// unnamed), checked against the model, described in the report, and limited in size before any is
// made: a model may declare an input of [1000000, 1000000], or --dim may give a dimension 10^9.
import { InputError, UsageError } from '../errors.js';
import type { TensorShapeDimension, ValueInfoProto } from '../ir/onnx.js';
import { GraphIndex } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { toNumber } from '../ir/tensor.js';
import { declaredShape, declaredType } from './feeds.js';

/**
 * Elements per synthesized input, and per batch of them, at most: 2^26, 256 MiB as float32. Making
 * them takes seconds for one input at the limit, times 4 batches by default (bench/RESULTS.md,
 * §"Figures moved from source comments"), all batches are held at once and copied to ONNX Runtime;
 * the largest real inputs (a batch of 32 images of 224x224, a minute of audio) have a few million.
 */
export const MAX_SYNTHESIZED_ELEMENTS = 2 ** 26;

/** Throws when inputs synthesized for `model` with these --dim and --shape values would exceed the limit. */
export function checkSynthesizedSize(model: Model, label: string, options: ShapeOptions = {}): void {
  let total = 0;
  const sizes: string[] = [];
  const advice = new Set<string>();
  for (const s of synthesizedShapes(model, options)) {
    let n = 1;
    for (const v of s.dims) n *= Math.max(v, 0);
    total += n;
    sizes.push(`${s.name} ${n}`);
    // What the user gave that made it this large, if anything: that is what to make smaller.
    const mine = s.fromShape
      ? 'give a smaller --shape'
      : s.named.some((d) => own(options.dims, d) !== undefined)
        ? 'give smaller --dim values'
        : undefined;
    if (mine) advice.add(mine);
    if (n > MAX_SYNTHESIZED_ELEMENTS) {
      throw refusal(
        mine !== undefined,
        `${label}: synthesized input '${s.name}' of shape [${s.dims.join(', ')}] would have ${n} elements, over the limit of ${MAX_SYNTHESIZED_ELEMENTS} (2^26)${mine ? `; ${mine}` : ''}; or give evaluation data with --data`,
      );
    }
  }
  if (total > MAX_SYNTHESIZED_ELEMENTS) {
    const mine = [...advice].join(' or ');
    throw refusal(
      advice.size > 0,
      `${label}: synthesized inputs would have ${total} elements per batch (${sizes.join(', ')}), over the limit of ${MAX_SYNTHESIZED_ELEMENTS} (2^26)${mine ? `; ${mine}` : ''}; or give evaluation data with --data`,
    );
  }
}

/** The user's --dim made it too large (usage, exit 2), or the model's own shape did (input, exit 1). */
function refusal(fromUser: boolean, message: string): Error {
  return fromUser ? new UsageError(message) : new InputError(message);
}
/** Values for the dimensions of synthesized inputs: --dim by name, --shape by input. */
export interface ShapeOptions {
  /** Values of named (symbolic) dimensions; a name not given is 1. */
  dims?: Record<string, number>;
  /** Whole shapes of inputs, for dimensions the model leaves unnamed (Silero VAD's exports). */
  shapes?: Record<string, number[]>;
}

/** The shape an input is synthesized with, and how it was chosen. */
export interface SynthesizedShape {
  input: ValueInfoProto;
  name: string;
  dims: number[];
  /** Given whole with --shape. */
  fromShape: boolean;
  /** Names of the symbolic dimensions used (from the model; not for --shape inputs). */
  named: string[];
  /** Positions of dimensions with neither value nor name (set to 1 unless --shape gave them). */
  unnamed: number[];
  /** The model declares no shape for it (synthesized as a scalar unless --shape gives one). */
  shapeless: boolean;
}

/** `record[key]` when the record has it itself: an input named 'constructor' is not Object's. */
function own<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** The value a named dimension is synthesized with: --dim's, else 1. */
export function dimValue(options: ShapeOptions, name: string): number {
  return own(options.dims, name) ?? 1;
}

/** A declared dimension's fixed value, or undefined when it is named or unknown (negative counts as unknown, as in feeds.ts). */
function fixedValue(d: TensorShapeDimension): number | undefined {
  if (d.dim_value === undefined) return undefined;
  const v = toNumber(d.dim_value);
  return v >= 0 ? v : undefined;
}

/** The shape of every real input as synthesized with these options. */
export function synthesizedShapes(model: Model, options: ShapeOptions = {}): SynthesizedShape[] {
  return new GraphIndex(model.graph).realInputs().map((input) => {
    const name = input.name ?? '';
    const declared = input.type?.tensor_type?.shape?.dim;
    const given = own(options.shapes, name);
    const unnamed: number[] = [],
      named: string[] = [];
    (declared ?? []).forEach((d, i) => {
      if (fixedValue(d) !== undefined) return;
      if (d.dim_param) named.push(d.dim_param);
      else unnamed.push(i);
    });
    if (given) return { input, name, dims: [...given], fromShape: true, named: [], unnamed, shapeless: declared === undefined };
    const dims = (declared ?? []).map((d) => fixedValue(d) ?? dimValue(options, d.dim_param ?? ''));
    return {
      input,
      name,
      dims,
      fromShape: false,
      named,
      unnamed,
      shapeless: declared === undefined && input.type?.tensor_type !== undefined,
    };
  });
}

/** "x float32 [1, ?], h float32 [2, batch, 64]": the inputs as declared, for messages. */
function declaredInputs(model: Model): string {
  const inputs = new GraphIndex(model.graph).realInputs();
  const shown = inputs.slice(0, 8).map((i) => `'${i.name}' ${declaredType(i.type)}`);
  return (shown.join(', ') || 'none') + (inputs.length > 8 ? `, and ${inputs.length - 8} more` : '');
}

/** The symbolic dimension names of the model's real inputs, in order of first use. */
export function dimensionNames(model: Model): string[] {
  const names = new Set<string>();
  for (const input of new GraphIndex(model.graph).realInputs()) {
    for (const d of input.type?.tensor_type?.shape?.dim ?? []) if (fixedValue(d) === undefined && d.dim_param) names.add(d.dim_param);
  }
  return [...names];
}

/**
 * Checks --dim and --shape against the model's inputs (usage errors, exit 2): a --dim name no input
 * has, a --shape for an input the model does not have, of another rank, or against a fixed dimension.
 */
export function checkShapeOptions(model: Model, label: string, options: ShapeOptions & { data?: string }): void {
  const shapes = Object.entries(options.shapes ?? {});
  if (shapes.length > 0 && options.data !== undefined)
    throw new UsageError('--shape sets the shapes of synthesized inputs: with --data, the data gives its own shapes');
  const known = dimensionNames(model);
  for (const name of Object.keys(options.dims ?? {})) {
    if (known.includes(name)) continue;
    const has = known.length
      ? `its named dimensions: ${known.join(', ')}`
      : "it has none; give an input's whole shape with --shape INPUT=D0,D1,...";
    throw new UsageError(`--dim ${name}: no input of ${label} has a dimension named '${name}' (${has})`);
  }
  const inputs = new Map(new GraphIndex(model.graph).realInputs().map((i) => [i.name ?? '', i]));
  for (const [name, dims] of shapes) {
    const spec = `--shape ${name}=${dims.join(',')}`;
    const input = inputs.get(name);
    if (!input) throw new UsageError(`${spec}: ${label} has no input '${name}' (its inputs: ${declaredInputs(model)})`);
    const tensor = input.type?.tensor_type;
    if (!tensor) throw new UsageError(`${spec}: input '${name}' of ${label} is ${declaredType(input.type)}, which cannot be synthesized`);
    const declared = tensor.shape?.dim;
    if (!declared) continue;
    if (declared.length !== dims.length) {
      throw new UsageError(
        `${spec}: input '${name}' of ${label} is ${declaredType(input.type)}, of rank ${declared.length}; the shape given has ${dims.length} dimension${dims.length === 1 ? '' : 's'}`,
      );
    }
    declared.forEach((d, i) => {
      const fixed = fixedValue(d);
      if (fixed !== undefined && fixed !== dims[i])
        throw new UsageError(`${spec}: input '${name}' of ${label} is ${declaredType(input.type)}: dimension ${i} is fixed at ${fixed}`);
    });
  }
}

/**
 * What synthesizing assumed, in pieces for the data's description: the value of each symbolic
 * dimension, the inputs whose shapes --shape gave, and those with unnamed dimensions or no shape
 * (set to 1, or a scalar), each with the option that changes it.
 */
export function describeShapes(shapes: SynthesizedShape[], options: ShapeOptions = {}): string[] {
  const pieces: string[] = [];
  const values = new Map<string, number>();
  for (const s of shapes) for (const name of s.named) values.set(name, dimValue(options, name));
  if (values.size) pieces.push(`dims ${[...values].map(([k, v]) => `${k}=${v}`).join(', ')} (set with --dim NAME=N)`);
  for (const s of shapes) {
    const shape = `[${s.dims.join(', ')}]`;
    if (s.fromShape) pieces.push(`input '${s.name}' ${shape} from --shape`);
    else if (s.shapeless)
      pieces.push(`input '${s.name}' has no declared shape: synthesized as a scalar (set with --shape ${s.name}=D0,D1,...)`);
    else if (s.unnamed.length) {
      const example = s.dims.map((d, i) => (s.unnamed.includes(i) ? 'N' : String(d))).join(',');
      pieces.push(
        `input '${s.name}' ${declaredShape(s.input.type)} synthesized as ${shape}, unnamed dimensions set to 1 (set with --shape ${s.name}=${example})`,
      );
    }
  }
  if (pieces.length === 0) pieces.push('every input shape fixed by the model');
  return pieces;
}

/**
 * What to try when ONNX Runtime fails running a model on synthesized inputs: usually a shape the
 * model needs (a Reshape or Pad wanting a longer input than 1) that the synthesized one is not.
 */
export function synthesizedHint(model: Model, options: ShapeOptions = {}): string {
  // Inputs with unnamed dimensions or no shape first (only --shape reaches them), with the
  // dimensions the model fixes as they are and the others as N.
  const shapes = synthesizedShapes(model, options);
  const unreached = (s: SynthesizedShape) => s.unnamed.length > 0 || s.input.type?.tensor_type?.shape === undefined;
  const examples = [...shapes.filter(unreached), ...shapes.filter((s) => !unreached(s))].slice(0, 2).map((s) => {
    const declared = s.input.type?.tensor_type?.shape?.dim;
    const dims = declared ? declared.map((d) => String(fixedValue(d) ?? 'N')).join(',') : 'D0,D1,...';
    return `--shape ${s.name}=${dims}`;
  });
  const names = dimensionNames(model);
  const dim = names.length
    ? `, the symbolic dimensions with --dim (${names
        .slice(0, 4)
        .map((n) => `${n}=N`)
        .join(', ')})`
    : '';
  return `the inputs were synthesized: give the shapes the model needs with ${examples.join(' or ') || '--shape INPUT=D0,D1,...'}${dim}, or real inputs with --data`;
}
