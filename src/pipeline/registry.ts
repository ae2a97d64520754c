// Every pass, by family and method, and parsing of pass specs ('int8:granularity=channel').
import { UsageError } from '../errors.js';
import { QUANTIZE_PASSES } from '../quantize/index.js';
import { PRUNE_PASSES } from '../prune/index.js';
import { SHARE_PASSES } from '../share/index.js';
import { describeOption, parseKeyValues, resolveOptions, type OptionValues } from '../pass/options.js';
import type { Pass } from '../pass/pass.js';

/** Every pass, by family: each family's folder lists its own. */
export const PASSES: Pass[] = [...PRUNE_PASSES, ...SHARE_PASSES, ...QUANTIZE_PASSES];

export const FAMILIES = ['quantize', 'prune', 'share'] as const;
export type Family = (typeof FAMILIES)[number];

export interface PipelineStep {
  pass: Pass;
  options: OptionValues;
  /** The step as written, for messages and the report. */
  spec: string;
}

export function findPass(family: string, method: string): Pass | undefined {
  return PASSES.find((p) => p.family === family && p.method === method);
}

/** Resolves a step from its family, method and raw options (from a command line or a recipe). */
export function makeStep(family: string, method: string, raw: Record<string, unknown>, where: string): PipelineStep {
  const pass = findPass(family, method);
  if (!pass) {
    const methods = PASSES.filter((p) => p.family === family).map((p) => p.method);
    throw new UsageError(
      `${where}: unknown ${family} method '${method}'${methods.length ? ` (known: ${methods.join(', ')})` : ` (no ${family} passes exist yet)`}`,
    );
  }
  const options = resolveOptions(where, pass.options, raw);
  const problem = pass.validate?.(options);
  if (problem) throw new UsageError(`${where}: ${problem}`);
  const text = Object.entries(raw)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
  return { pass, options, spec: `${family} ${method}${text ? `:${text}` : ''}` };
}

/** Parses `--quantize int8:granularity=channel,symmetric=false` (family from the flag). */
export function parseStep(family: string, spec: string): PipelineStep {
  const where = `--${family} ${spec}`;
  const colon = spec.indexOf(':');
  const method = (colon < 0 ? spec : spec.slice(0, colon)).trim();
  const raw = colon < 0 ? {} : parseKeyValues(where, spec.slice(colon + 1));
  return makeStep(family, method, raw, where);
}

export function listPasses(): string {
  const lines: string[] = [];
  for (const p of PASSES) {
    lines.push(`--${p.family} ${p.method}: ${p.description}`);
    for (const [key, spec] of Object.entries(p.options)) lines.push(`    ${describeOption(key, spec)}`);
  }
  return lines.join('\n');
}
