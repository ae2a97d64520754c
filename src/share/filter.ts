// include=, exclude= and min-size= for passes that look at every stored value, whatever its dtype
// or reader (exact dedup): the same patterns as the weight selection, matched against the value's
// name and the names of the nodes reading it.
import { namePattern } from '../ir/weights.js';
import type { SelectionValues } from '../pass/options.js';

/** Returns why a value is left alone, or undefined when it may be shared. */
export type ValueFilter = (name: string, readers: string[], elements: number) => string | undefined;

export function valueFilter(options: SelectionValues): ValueFilter {
  const include = typeof options.include === 'string' && options.include !== '' ? namePattern(options.include) : undefined;
  const exclude = typeof options.exclude === 'string' && options.exclude !== '' ? namePattern(options.exclude) : undefined;
  const minSize = typeof options['min-size'] === 'number' ? options['min-size'] : 0;
  return (name, readers, elements) => {
    if (elements < minSize) return `${elements} elements, below min-size ${minSize}`;
    const names = [name, ...readers];
    if (include && !names.some((n) => include.test(n))) return 'does not match include pattern';
    if (exclude && names.some((n) => exclude.test(n))) return 'matches exclude pattern';
    return undefined;
  };
}
