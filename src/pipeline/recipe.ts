// Recipe files: the pipeline as data (YAML or JSON), with evaluation settings and CI gates.
// Validated in full before anything runs; errors name the file, the line and the key.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { UsageError } from '../errors.js';
import { readInputText } from '../io/input-path.js';
import type { RecipeData, RecipeEval, RecipeGates } from '../report/recipe-data.js';
import { FAMILIES, makeStep, parseStep, type PipelineStep } from './registry.js';

/** The recipe's plain-data shapes live below, in report/, which records them; callers find them here too. */
export type { RecipeData, RecipeEval, RecipeGates };

export interface Recipe {
  passes: PipelineStep[];
  /** Seed of the passes' randomness (clustering initialisation). */
  seed?: number;
  eval?: RecipeEval;
  gates?: RecipeGates;
}

const EVAL_KEYS: Record<keyof RecipeEval, 'string' | 'number' | 'dims' | 'shapes'> = {
  data: 'string',
  labels: 'string',
  metric: 'string',
  dims: 'dims',
  shape: 'shapes',
  seed: 'number',
  batches: 'number',
  threads: 'number',
  runs: 'number',
  timeout: 'number',
};
const GATE_KEYS = ['max-accuracy-drop', 'min-size-reduction', 'min-cosine', 'max-latency-ratio'] as const;

export function recipeData(recipe: Recipe): RecipeData {
  const passes = recipe.passes.map((s) => {
    const options: Record<string, unknown> = { method: s.pass.method };
    for (const [k, v] of Object.entries(s.options)) if (v !== undefined) options[k] = v;
    return { [s.pass.family]: options };
  });
  return {
    passes,
    ...(recipe.seed !== undefined ? { seed: recipe.seed } : {}),
    ...(recipe.eval ? { eval: recipe.eval } : {}),
    ...(recipe.gates ? { gates: recipe.gates } : {}),
  };
}

/** Parses recipe text (YAML, or JSON, which YAML reads too). `where` names the file in errors. */
export function parseRecipe(text: string, where: string): Recipe {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const at = (node: unknown, path: string) => {
    const range = (node as YamlNode | undefined)?.range;
    const line = range ? lines.linePos(range[0]).line : undefined;
    return `${where}${line !== undefined ? `:${line}` : ''}: ${path}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new UsageError(`${where}:${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`);
  }
  let root: unknown = doc.contents;
  // A report's JSON carries the recipe that made it: accept the report itself.
  if (isMap(root) && root.has('recipe') && root.has('version')) root = root.get('recipe', true);
  if (!isMap(root)) throw new UsageError(`${where}: a recipe is a mapping with 'passes' (and optionally 'eval' and 'gates')`);
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!['passes', 'seed', 'eval', 'gates'].includes(key))
      throw new UsageError(`${at(pair.key, key)}: unknown key (expected passes, seed, eval, gates)`);
  }
  const passesNode = root.get('passes', true);
  const passes: PipelineStep[] = [];
  if (passesNode !== undefined && passesNode !== null) {
    if (!isSeq(passesNode)) throw new UsageError(`${at(passesNode, 'passes')}: must be a list of passes`);
    passesNode.items.forEach((item, i) => {
      const path = `passes[${i}]`;
      if (!isMap(item) || item.items.length !== 1)
        throw new UsageError(`${at(item, path)}: each pass is one of ${FAMILIES.join(', ')}, e.g. '- quantize: {method: int8}'`);
      const pair = item.items[0]!;
      const family = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!(FAMILIES as readonly string[]).includes(family))
        throw new UsageError(`${at(pair.key, path)}: unknown pass family '${family}' (expected ${FAMILIES.join(', ')})`);
      const value = pair.value;
      if (isScalar(value) && typeof value.value === 'string') {
        passes.push(parseStep(family, value.value));
        return;
      }
      if (!isMap(value))
        throw new UsageError(
          `${at(value ?? item, `${path}.${family}`)}: give {method: ..., option: value, ...} or a spec string like 'int8:granularity=tensor'`,
        );
      const raw = value.toJS(doc) as Record<string, unknown>;
      const method = raw.method;
      if (typeof method !== 'string') throw new UsageError(`${at(value, `${path}.${family}.method`)}: missing (which ${family} method?)`);
      delete raw.method;
      // Name the offending key's line when an option is refused.
      try {
        passes.push(makeStep(family, method, raw, `${path}.${family}`));
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        const bad = value.items.find(
          (p) =>
            (isScalar(p.key) && e.message.includes(`'${String(p.key.value)}'`)) ||
            (isScalar(p.key) && e.message.includes(`: ${String(p.key.value)} `)),
        );
        throw new UsageError(`${at(bad?.key ?? value, '')}${e.message}`.replace(/: $/, ''));
      }
    });
  }
  const recipe: Recipe = { passes };
  const seedNode = root.get('seed', true);
  if (seedNode !== undefined && seedNode !== null) {
    const v = isScalar(seedNode) ? seedNode.value : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new UsageError(`${at(seedNode, 'seed')}: must be a whole number ≥ 0`);
    recipe.seed = v;
  }
  const evalNode = root.get('eval', true);
  if (evalNode !== undefined && evalNode !== null) {
    if (!isMap(evalNode)) throw new UsageError(`${at(evalNode, 'eval')}: must be a mapping`);
    const out: RecipeEval = {};
    for (const pair of evalNode.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const kind = EVAL_KEYS[key as keyof RecipeEval];
      if (!kind) throw new UsageError(`${at(pair.key, `eval.${key}`)}: unknown key (expected ${Object.keys(EVAL_KEYS).join(', ')})`);
      const v = isScalar(pair.value) ? pair.value.value : isMap(pair.value) ? pair.value.toJS(doc) : undefined;
      if (kind === 'string' && typeof v !== 'string') throw new UsageError(`${at(pair.value, `eval.${key}`)}: must be text`);
      if (kind === 'number' && (typeof v !== 'number' || !Number.isInteger(v) || v < 0))
        throw new UsageError(`${at(pair.value, `eval.${key}`)}: must be a whole number`);
      if (
        kind === 'dims' &&
        (typeof v !== 'object' || v === null || Object.values(v).some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 1))
      ) {
        throw new UsageError(`${at(pair.value, `eval.${key}`)}: must map dimension names to positive whole numbers`);
      }
      if (
        kind === 'shapes' &&
        (typeof v !== 'object' ||
          v === null ||
          Object.values(v).some(
            (s) => !Array.isArray(s) || s.length === 0 || s.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1),
          ))
      ) {
        throw new UsageError(
          `${at(pair.value, `eval.${key}`)}: must map input names to shapes, lists of positive whole numbers (e.g. {x: [1, 512]})`,
        );
      }
      (out as Record<string, unknown>)[key] = v;
    }
    recipe.eval = out;
  }
  const gatesNode = root.get('gates', true);
  if (gatesNode !== undefined && gatesNode !== null) {
    if (!isMap(gatesNode)) throw new UsageError(`${at(gatesNode, 'gates')}: must be a mapping`);
    const out: RecipeGates = {};
    for (const pair of gatesNode.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!(GATE_KEYS as readonly string[]).includes(key))
        throw new UsageError(`${at(pair.key, `gates.${key}`)}: unknown gate (expected ${GATE_KEYS.join(', ')})`);
      const v = isScalar(pair.value) ? pair.value.value : undefined;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < (key === 'min-cosine' ? -1 : 0))
        throw new UsageError(`${at(pair.value, `gates.${key}`)}: must be a number${key === 'min-cosine' ? ' from -1 to 1' : ' ≥ 0'}`);
      (out as Record<string, number>)[key] = v;
    }
    recipe.gates = out;
  }
  return recipe;
}

export function loadRecipe(path: string): Recipe {
  return parseRecipe(readInputText(path, { what: 'recipe' }), path);
}
