// Sweep grids: 'quantize=int8,int4:block=32; prune=none,magnitude:sparsity=0.3' — one axis per
// pass family, alternatives separated by commas ('none' for no pass). A comma-separated piece that
// is only key=value continues the previous alternative's options (int4:block=32,symmetric=false).
// Each combination runs its passes in the usual order: prune, then share, then quantize.
import { UsageError } from '../errors.js';
import { FAMILIES } from '../pipeline/registry.js';
import type { RecipeData, RecipeEval, RecipeGates } from '../pipeline/recipe.js';
import { parseStep } from '../pipeline/registry.js';
import { recipeData } from '../pipeline/recipe.js';

export interface GridAxis {
  family: string;
  /** Pass specs ('int8', 'int4:block=32'), or undefined for 'none'. */
  choices: (string | undefined)[];
}

export interface Job {
  id: string;
  /** The combination as written, e.g. 'prune magnitude:sparsity=0.3 + quantize int8'. */
  label: string;
  recipe: RecipeData;
}

export function parseGrid(text: string): GridAxis[] {
  const axes: GridAxis[] = [];
  for (const part of text
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new UsageError(`--grid: '${part}' is not family=choice,choice,...`);
    const family = part.slice(0, eq).trim();
    if (!(FAMILIES as readonly string[]).includes(family))
      throw new UsageError(`--grid: unknown pass family '${family}' (expected ${FAMILIES.join(', ')})`);
    if (axes.some((a) => a.family === family)) throw new UsageError(`--grid: '${family}' given twice`);
    const choices: (string | undefined)[] = [];
    for (const token of part
      .slice(eq + 1)
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '')) {
      const continuation = token.includes('=') && !token.includes(':');
      if (continuation) {
        const last = choices[choices.length - 1];
        if (last === undefined) throw new UsageError(`--grid: '${token}' follows no pass`);
        choices[choices.length - 1] = `${last}${last.includes(':') ? ',' : ':'}${token}`;
      } else choices.push(token === 'none' ? undefined : token);
    }
    if (choices.length === 0) throw new UsageError(`--grid: no choices for '${family}'`);
    axes.push({ family, choices });
  }
  if (axes.length === 0) throw new UsageError('--grid: empty');
  return axes;
}

/** Every combination of the grid as a job: validated recipe data, ids in a stable order. */
export function expandGrid(axes: GridAxis[], evalSettings?: RecipeEval, gates?: RecipeGates): Job[] {
  const order = ['prune', 'share', 'quantize'];
  const ordered = [...axes].sort((a, b) => order.indexOf(a.family) - order.indexOf(b.family));
  let combos: { family: string; spec: string | undefined }[][] = [[]];
  for (const axis of ordered) combos = combos.flatMap((c) => axis.choices.map((spec) => [...c, { family: axis.family, spec }]));
  return combos.map((combo, i) => {
    const steps = combo.filter((c) => c.spec !== undefined).map((c) => parseStep(c.family, c.spec!));
    const label =
      combo
        .filter((c) => c.spec !== undefined)
        .map((c) => `${c.family} ${c.spec}`)
        .join(' + ') || 'none';
    return { id: `job-${String(i + 1).padStart(3, '0')}`, label, recipe: recipeData({ passes: steps, eval: evalSettings, gates }) };
  });
}

/** Parses 'i/n' (1-based shard i of n). */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m || Number(m[2]) < 1 || Number(m[1]) < 1 || Number(m[1]) > Number(m[2]))
    throw new UsageError(`--shard takes i/n with 1 ≤ i ≤ n, got '${text}'`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

export function shardJobs(jobs: Job[], shard: { index: number; count: number }): Job[] {
  return jobs.filter((_, i) => i % shard.count === shard.index - 1);
}

/**
 * What is wrong with a set of shard reports' `shard` fields ("i/n"): shards missing, given twice,
 * or of different counts. Reports of whole sweeps (no shard) count as complete on their own.
 */
export function shardProblems(shards: (string | undefined)[]): string[] {
  const parsed = shards.filter((s): s is string => s !== undefined).map((s) => ({ text: s, ...parseShard(s) }));
  if (parsed.length === 0) return [];
  const problems: string[] = [];
  if (parsed.length < shards.length) problems.push('whole sweeps and shards are mixed');
  const counts = [...new Set(parsed.map((p) => p.count))];
  if (counts.length > 1) problems.push(`shards of different counts (${counts.map((c) => `/${c}`).join(', ')})`);
  const seen = new Map<string, number>();
  for (const p of parsed) seen.set(`${p.index}/${p.count}`, (seen.get(`${p.index}/${p.count}`) ?? 0) + 1);
  const twice = [...seen].filter(([, n]) => n > 1).map(([s]) => s);
  if (twice.length) problems.push(`shard${twice.length > 1 ? 's' : ''} ${twice.join(', ')} given more than once`);
  for (const count of counts) {
    const missing = Array.from({ length: count }, (_, i) => `${i + 1}/${count}`).filter((s) => !seen.has(s));
    if (missing.length) problems.push(`shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing`);
  }
  return problems;
}
