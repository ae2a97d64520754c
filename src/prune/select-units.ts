// Which units of a channel group go. Units are ranked within their class — the units written by the
// same set of layers (one layer's channels, or a residual stream every writer shares) — so that each
// class loses `ratio` of its units, the lowest scores first (ties: the earlier position). A grouped
// Conv's partition must lose as many positions in every group: its units that lie in one group are
// taken the same number from every group.
import { find, type ChannelGroup } from './channel-groups.js';

export interface Selection {
  removed: Set<number>;
  /** Why some units that could otherwise go were kept. */
  notes: string[];
}

type Status = { kind: 'none' } | { kind: 'even' } | { kind: 'local'; block: number; count: number } | { kind: 'other' };

function keptCount(n: number, ratio: number, multiple: number): number {
  return Math.min(n, Math.max(1, Math.ceil((n - Math.floor(n * ratio)) / multiple) * multiple));
}

export function selectUnits(group: ChannelGroup, scores: Map<number, number>, ratio: number, multiple: number): Selection {
  const { parent, values, sources, partitions, frozen } = group;
  const members = new Map<number, number[]>();
  for (let p = 0; p < parent.length; p++) {
    const r = find(parent, p);
    let list = members.get(r);
    if (!list) members.set(r, (list = []));
    list.push(p);
  }
  const classes = new Map<string, number[]>();
  const writers = new Map<number, Set<number>>();
  sources.forEach((s, i) => {
    const v = values.get(s.value)!;
    for (let p = 0; p < v.width; p++) {
      const r = find(parent, v.base + p);
      let set = writers.get(r);
      if (!set) writers.set(r, (set = new Set()));
      set.add(i);
    }
  });
  for (const r of members.keys()) {
    if (frozen.has(r) || !writers.has(r)) continue;
    const key = [...writers.get(r)!].sort((a, b) => a - b).join(',');
    let list = classes.get(key);
    if (!list) classes.set(key, (list = []));
    list.push(r);
  }
  const status = (r: number, pi: number): Status => {
    const part = partitions[pi]!;
    const v = values.get(part.value)!;
    const size = v.width / part.blocks;
    const counts = new Array<number>(part.blocks).fill(0);
    for (const p of members.get(r)!) if (p >= v.base && p < v.base + v.width) counts[Math.floor((p - v.base) / size)]!++;
    const touched = counts.filter((c) => c > 0);
    if (touched.length === 0) return { kind: 'none' };
    if (touched.length === part.blocks && touched.every((c) => c === touched[0])) return { kind: 'even' };
    if (touched.length === 1) return { kind: 'local', block: counts.findIndex((c) => c > 0), count: touched[0]! };
    return { kind: 'other' };
  };
  const byScore = (a: number, b: number) => scores.get(a)! - scores.get(b)! || a - b;
  const removed = new Set<number>();
  const notes: string[] = [];
  for (const units of classes.values()) {
    const free: number[] = [];
    const locals: { r: number; key: string; statuses: Status[] }[] = [];
    for (const r of units) {
      const statuses = partitions.map((_, pi) => status(r, pi));
      if (statuses.some((s) => s.kind === 'other')) continue;
      if (statuses.some((s) => s.kind === 'local')) {
        const key = statuses.map((s) => (s.kind === 'local' ? s.block : '-')).join(',');
        locals.push({ r, key, statuses });
      } else free.push(r);
    }
    const keep = keptCount(free.length, ratio, multiple);
    for (const r of [...free].sort(byScore).slice(0, free.length - keep)) removed.add(r);
    if (locals.length === 0) continue;
    // Bins of units in the same group of every partition: each partition's groups must map one to one to bins.
    const bins = new Map<string, number[]>();
    for (const u of locals) {
      let list = bins.get(u.key);
      if (!list) bins.set(u.key, (list = []));
      list.push(u.r);
    }
    let balanced = true;
    partitions.forEach((part, pi) => {
      const blocks = new Map<number, string>();
      const counts = new Set<number>();
      for (const u of locals) {
        const s = u.statuses[pi]!;
        if (s.kind !== 'local') continue;
        counts.add(s.count);
        const known = blocks.get(s.block);
        if (known !== undefined && known !== u.key) balanced = false;
        blocks.set(s.block, u.key);
      }
      if (blocks.size > 0 && (blocks.size !== part.blocks || counts.size !== 1 || new Set(blocks.values()).size !== blocks.size))
        balanced = false;
    });
    if (!balanced) {
      notes.push(`${locals.length} channels kept: a grouped Conv could not lose as many of them in every group`);
      continue;
    }
    const smallest = Math.min(...[...bins.values()].map((b) => b.length));
    const take = smallest - keptCount(smallest, ratio, 1);
    for (const bin of bins.values()) for (const r of [...bin].sort(byScore).slice(0, take)) removed.add(r);
  }
  return { removed, notes };
}
