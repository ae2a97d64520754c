// Declared options: each pass states every option once (type, default, range, description), and
// the command line, recipe validation, --list-passes and the docs all come from that declaration.
import { UsageError } from '../errors.js';

export type OptionSpec =
  | { type: 'number'; default?: number; min?: number; max?: number; description: string }
  | { type: 'integer'; default?: number; min?: number; max?: number; description: string }
  | { type: 'boolean'; default?: boolean; description: string }
  | { type: 'string'; default?: string; description: string }
  | { type: 'enum'; default?: string; choices: readonly string[]; description: string };

export type OptionSpecs = Record<string, OptionSpec>;

export type OptionValue = number | boolean | string;
export type OptionValues = Record<string, OptionValue | undefined>;

/** The value one declared option resolves to: enum options are the union of their choices. */
export type OptionType<S extends OptionSpec> = S extends { type: 'enum'; choices: readonly (infer C)[] }
  ? C
  : S extends { type: 'number' | 'integer' }
    ? number
    : S extends { type: 'boolean' }
      ? boolean
      : string;

type Defaulted<S> = S extends { default: infer D } ? (undefined extends D ? false : true) : false;
type Flatten<T> = { [K in keyof T]: T[K] };

/**
 * The options a pass receives, from its declaration: resolveOptions fills in every default, so an
 * option with one is always there; one without may be absent.
 */
export type OptionsOf<S extends OptionSpecs> = Flatten<
  { readonly [K in keyof S as Defaulted<S[K]> extends true ? K : never]: OptionType<S[K]> } & {
    readonly [K in keyof S as Defaulted<S[K]> extends true ? never : K]?: OptionType<S[K]>;
  }
>;

/**
 * Options every pass takes: which tensors it touches. Small tensors (biases, norms) stay as they are
 * unless asked, so most passes default `min-size` to 256 elements.
 */
export function selectionOptions<const M extends number | undefined = undefined>(minSize?: M) {
  return {
    include: {
      type: 'string',
      description: 'only tensors (or the nodes using them) whose name matches this pattern (* and ? wildcards; several separated by |)',
    },
    exclude: { type: 'string', description: "leave tensors whose name (or whose consumer's name) matches this pattern alone" },
    'min-size': { type: 'integer', min: 0, default: minSize as M, description: 'leave tensors with fewer elements than this alone' },
  } as const satisfies OptionSpecs;
}

/** The selection options as a pass receives them (min-size is there when the pass gives it a default). */
export type SelectionValues = OptionsOf<ReturnType<typeof selectionOptions>>;

function convert(where: string, key: string, spec: OptionSpec, raw: unknown): OptionValue {
  const text = typeof raw === 'string' ? raw.trim() : raw;
  switch (spec.type) {
    case 'number':
    case 'integer': {
      const n = typeof text === 'number' ? text : typeof text === 'string' && text !== '' ? Number(text) : NaN;
      if (!Number.isFinite(n)) throw new UsageError(`${where}: ${key} must be a number, got '${String(raw)}'`);
      if (spec.type === 'integer' && !Number.isInteger(n))
        throw new UsageError(`${where}: ${key} must be a whole number, got '${String(raw)}'`);
      if (spec.min !== undefined && n < spec.min) throw new UsageError(`${where}: ${key} must be at least ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max) throw new UsageError(`${where}: ${key} must be at most ${spec.max}, got ${n}`);
      return n;
    }
    case 'boolean':
      if (text === true || text === 'true' || text === '1' || text === 'yes') return true;
      if (text === false || text === 'false' || text === '0' || text === 'no') return false;
      throw new UsageError(`${where}: ${key} must be true or false, got '${String(raw)}'`);
    case 'enum':
      if (typeof text !== 'string' || !spec.choices.includes(text)) {
        throw new UsageError(`${where}: ${key} must be one of ${spec.choices.join(', ')}, got '${String(raw)}'`);
      }
      return text;
    case 'string':
      if (typeof text !== 'string' && typeof text !== 'number') throw new UsageError(`${where}: ${key} must be text, got '${String(raw)}'`);
      return String(text);
  }
}

/** Checks and converts raw option values (strings from a command line, or values from a recipe); fills in defaults. */
export function resolveOptions(where: string, specs: OptionSpecs, raw: Record<string, unknown>): OptionValues {
  const out: OptionValues = {};
  for (const [key, value] of Object.entries(raw)) {
    const spec = specs[key];
    if (!spec) {
      const known = Object.keys(specs);
      throw new UsageError(`${where}: unknown option '${key}' (known: ${known.join(', ')})`);
    }
    out[key] = convert(where, key, spec, value);
  }
  for (const [key, spec] of Object.entries(specs)) {
    if (out[key] === undefined && spec.default !== undefined) out[key] = spec.default;
  }
  return out;
}

/** `a=1,b=two` → { a: '1', b: 'two' } */
export function parseKeyValues(where: string, text: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (text.trim() === '') return out;
  for (const part of text.split(',')) {
    const m = /^\s*([A-Za-z][\w-]*)\s*=\s*(.*?)\s*$/.exec(part);
    if (!m) throw new UsageError(`${where}: '${part}' is not key=value`);
    if (m[1]! in out) throw new UsageError(`${where}: '${m[1]}' given twice`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

export function describeOption(key: string, spec: OptionSpec): string {
  const range =
    spec.type === 'enum'
      ? spec.choices.join('|')
      : spec.type === 'number' || spec.type === 'integer'
        ? `${spec.type}${spec.min !== undefined ? ` ≥ ${spec.min}` : ''}${spec.max !== undefined ? ` ≤ ${spec.max}` : ''}`
        : spec.type;
  const def = spec.default !== undefined ? ` (default ${String(spec.default)})` : '';
  return `${key}=${range}${def}: ${spec.description}`;
}
