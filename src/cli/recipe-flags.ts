// Combining a recipe's evaluation settings and gates with command-line flags (flags win), and
// writing the settings that ran back as recipe data for the report.
import type { GateOptions } from '../report/report.js';
import type { Recipe, RecipeEval, RecipeGates } from '../pipeline/recipe.js';
import { shapesFrom, type ReportFlags } from './report-options.js';

const EVAL_FLAGS: [keyof RecipeEval, keyof ReportFlags][] = [
  ['data', 'data'],
  ['labels', 'labels'],
  ['metric', 'metric'],
  ['seed', 'seed'],
  ['batches', 'batches'],
  ['threads', 'threads'],
  ['runs', 'runs'],
  ['timeout', 'evalTimeout'],
];
const GATE_FLAGS: [keyof RecipeGates, keyof ReportFlags][] = [
  ['max-accuracy-drop', 'maxAccuracyDrop'],
  ['min-size-reduction', 'minSizeReduction'],
  ['min-cosine', 'minCosine'],
  ['max-latency-ratio', 'maxLatencyRatio'],
];

export function mergeRecipeFlags(flags: ReportFlags, recipe: Recipe | undefined, fromCli: (key: string) => boolean): ReportFlags {
  const out: ReportFlags = { ...flags };
  const set = (key: keyof ReportFlags, value: unknown) => {
    (out as Record<string, unknown>)[key] = value;
  };
  for (const [r, f] of EVAL_FLAGS) {
    const v = recipe?.eval?.[r];
    if (v !== undefined && !fromCli(f)) set(f, String(v));
  }
  if (recipe?.eval?.dims && !fromCli('dim'))
    set(
      'dim',
      Object.entries(recipe.eval.dims).map(([k, v]) => `${k}=${v}`),
    );
  if (recipe?.eval?.shape && !fromCli('shape'))
    set(
      'shape',
      Object.entries(recipe.eval.shape).map(([k, v]) => `${k}=${v.join(',')}`),
    );
  for (const [r, f] of GATE_FLAGS) {
    const v = recipe?.gates?.[r];
    if (v !== undefined && !fromCli(f)) set(f, String(v));
  }
  return out;
}

export function recipeEvalOf(flags: ReportFlags): RecipeEval {
  const out: RecipeEval = {};
  if (flags.data) out.data = flags.data;
  if (flags.labels) out.labels = flags.labels;
  if (flags.metric) out.metric = flags.metric;
  if (flags.dim?.length) out.dims = Object.fromEntries(flags.dim.map((d) => d.split('=')).map(([k, v]) => [k!, Number(v)]));
  if (flags.shape?.length) out.shape = { ...shapesFrom(flags.shape) };
  for (const key of ['seed', 'batches', 'threads', 'runs'] as const) if (flags[key] !== undefined) out[key] = Number(flags[key]);
  if (flags.evalTimeout !== undefined) out.timeout = Number(flags.evalTimeout);
  return out;
}

export function recipeGatesOf(gates: GateOptions): RecipeGates | undefined {
  const out: RecipeGates = {};
  if (gates.maxAccuracyDrop !== undefined) out['max-accuracy-drop'] = gates.maxAccuracyDrop;
  if (gates.minSizeReduction !== undefined) out['min-size-reduction'] = gates.minSizeReduction;
  if (gates.minCosine !== undefined) out['min-cosine'] = gates.minCosine;
  if (gates.maxLatencyRatio !== undefined) out['max-latency-ratio'] = gates.maxLatencyRatio;
  return Object.keys(out).length ? out : undefined;
}
