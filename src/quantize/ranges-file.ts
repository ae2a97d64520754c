// Activation ranges saved and reused (ranges=FILE): the ranges a mode=static run used are in its
// report (`passes[].ranges`), and a later run reads them back from that JSON report, or from a file
// holding that object alone, instead of calibrating again. Values are the model's value names.
import { InputError } from '../errors.js';
import { readInputText } from '../io/input-path.js';
import type { ActivationRanges } from '../pass/pass.js';

export type RangesRecord = ActivationRanges;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The ranges in a JSON report of a mode=static run, or in a file of its `ranges` object: { method, source, samples, values }. */
export function readRangesFile(path: string): RangesRecord {
  let json: unknown;
  try {
    json = JSON.parse(readInputText(path, { what: 'ranges file' }));
  } catch (e) {
    if (e instanceof SyntaxError) throw new InputError(`ranges ${path}: not JSON (${e.message})`);
    throw e;
  }
  const fromReport =
    isObject(json) && Array.isArray(json.passes) ? json.passes.find((p) => isObject(p) && isObject(p.ranges))?.ranges : undefined;
  const record = fromReport ?? (isObject(json) && isObject(json.ranges) ? json.ranges : json);
  if (!isObject(record) || !isObject(record.values)) {
    throw new InputError(
      `ranges ${path}: no activation ranges (a report of a mode=static run, or an object with 'values': { name: { min, max } })`,
    );
  }
  const values: RangesRecord['values'] = Object.create(null);
  for (const [name, v] of Object.entries(record.values)) {
    if (
      !isObject(v) ||
      typeof v.min !== 'number' ||
      typeof v.max !== 'number' ||
      !Number.isFinite(v.min) ||
      !Number.isFinite(v.max) ||
      v.min > v.max
    ) {
      throw new InputError(`ranges ${path}: '${name}' needs finite numbers min ≤ max`);
    }
    values[name] = { min: v.min, max: v.max };
  }
  const text = (v: unknown, fallback: string) => (typeof v === 'string' ? v : fallback);
  return {
    method: text(record.method, 'given'),
    source: text(record.source, path),
    samples: typeof record.samples === 'number' ? record.samples : 0,
    values,
  };
}
