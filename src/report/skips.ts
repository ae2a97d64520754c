// What each pass left alone, for the text reports: its skips grouped by reason and counted, with a
// few example names, so that 47 weights under min-size read as one line, not 47. Reasons that
// differ only in a standalone number ("144 elements, below min-size 256", "200 elements, …") are one
// group, shown with the range of that number ("144–200 elements, below min-size 256").
import { plural } from './format.js';
import type { PassRecord } from './report.js';

export interface SkipGroup {
  /** The reason, with each number that differs within the group written as its range. */
  reason: string;
  count: number;
  /** The first few names, in the pass's order. */
  examples: string[];
}

/** Example names shown per reason. */
const EXAMPLES = 3;

/**
 * A number standing alone (not part of a name such as layer.3.weight): between spaces, brackets,
 * commas or the ends. Captured, so that split() keeps it: text, number, text, number, …, text.
 */
const NUMBER = /((?<=^|[\s(])-?\d+(?:\.\d+)?(?=$|[\s,;:)]))/;

export function skipGroups(p: PassRecord): SkipGroup[] {
  const groups = new Map<string, { texts: string[]; numbers: string[][]; names: string[] }>();
  for (const s of p.skipped) {
    const parts = s.reason.split(NUMBER);
    const texts = parts.filter((_, i) => i % 2 === 0),
      numbers = parts.filter((_, i) => i % 2 === 1);
    const key = JSON.stringify(texts);
    const g = groups.get(key) ?? { texts, numbers: [], names: [] };
    g.numbers.push(numbers);
    g.names.push(s.name);
    groups.set(key, g);
  }
  return [...groups.values()]
    .map((g) => {
      const reason = g.texts
        .map((text, slot) => {
          if (slot === g.texts.length - 1) return text;
          const shown = new Set(g.numbers.map((n) => n[slot]!));
          if (shown.size === 1) return text + [...shown][0];
          const values = [...shown].map(Number);
          return text + `${Math.min(...values)}–${Math.max(...values)}`;
        })
        .join('');
      return { reason, count: g.names.length, examples: g.names.slice(0, EXAMPLES) };
    })
    .sort((a, b) => b.count - a.count);
}

/** One line per reason: "quantize int8: 47 tensors skipped: <reason> (a, b, c and 44 more)". */
export function skipLines(p: PassRecord): string[] {
  const noun = p.method === 'heads' ? ['attention block', 'attention blocks'] : ['tensor', 'tensors'];
  return skipGroups(p).map((g) => {
    const more = g.count > g.examples.length ? ` and ${g.count - g.examples.length} more` : '';
    return `${p.pass} ${p.method}: ${plural(g.count, noun[0]!, noun[1])} skipped: ${g.reason} (${g.examples.join(', ')}${more})`;
  });
}

/** The passes' notes, each prefixed with its pass. */
export function noteLines(passes: PassRecord[]): string[] {
  return passes.flatMap((p) => p.notes.map((n) => `${p.pass} ${p.method}: ${n}`));
}
