// Grouping near-identical tensors. Every figure a decision needs — each member's error against any
// member, or against the group's mean — follows from the matrix of dot products between the
// tensors, so the values are read once (n² dot products) and grouping itself never touches them:
//   ‖a − b‖² = G_aa + G_bb − 2 G_ab
//   ‖a − mean(S)‖² = G_aa − (2/|S|) Σ_j G_aj + (1/|S|²) Σ_ij G_ij
// Groups grow by agglomeration: the two groups whose union has the smallest worst member error
// merge first, until that error passes the tolerance (or the target count is reached).

/** Dot products between every pair of vectors (float64), row-major n × n. */
export function gramMatrix(vectors: ArrayLike<number>[]): Float64Array {
  const n = vectors.length;
  const g = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    for (let b = a; b < n; b++) {
      const x = vectors[a]!,
        y = vectors[b]!;
      let s = 0;
      for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
      g[a * n + b] = s;
      g[b * n + a] = s;
    }
  }
  return g;
}

function relative(errSq: number, normSq: number): number {
  const e = Math.max(0, errSq);
  if (normSq === 0) return e === 0 ? 0 : Infinity;
  return Math.sqrt(e / normSq);
}

/** Which shared tensors a group may use. */
export interface Candidates {
  member: boolean;
  mean: boolean;
}

/**
 * The smallest possible worst relative error ‖m − r‖ / ‖m‖ over the members m of `members`, with r
 * one of the members or their mean (as `allowed`). A single tensor has error 0.
 */
export function groupCost(g: Float64Array, n: number, members: number[], allowed: Candidates = { member: true, mean: true }): number {
  const k = members.length;
  if (k < 2) return 0;
  let best = Infinity;
  if (allowed.mean) {
    const rowSums = members.map((a) => members.reduce((s, b) => s + g[a * n + b]!, 0));
    const total = rowSums.reduce((s, x) => s + x, 0);
    let worst = 0;
    members.forEach((a, i) => {
      worst = Math.max(worst, relative(g[a * n + a]! - (2 / k) * rowSums[i]! + total / (k * k), g[a * n + a]!));
    });
    best = worst;
  }
  if (allowed.member)
    for (const r of members) {
      let worst = 0;
      for (const a of members) worst = Math.max(worst, relative(g[a * n + a]! + g[r * n + r]! - 2 * g[a * n + r]!, g[a * n + a]!));
      best = Math.min(best, worst);
    }
  return best;
}

export type Bound = { tolerance: number } | { count: number };

export interface Grouping {
  /** Groups of two or more indices, each ascending, in order of their first member. */
  groups: number[][];
  /** The worst member error of the cheapest merge that was not made (Infinity when none was left). */
  nextCost: number;
}

/** Agglomerates the n vectors described by `g` into groups within the bound. */
export function planGroups(g: Float64Array, n: number, bound: Bound, allowed: Candidates = { member: true, mean: true }): Grouping {
  let clusters: number[][] = Array.from({ length: n }, (_, i) => [i]);
  const cost = new Map<string, number>();
  const key = (a: number[], b: number[]) => `${a[0]}|${b[0]}`;
  const costOf = (a: number[], b: number[]) => {
    const k = key(a, b);
    let c = cost.get(k);
    if (c === undefined)
      cost.set(
        k,
        (c = groupCost(
          g,
          n,
          [...a, ...b].sort((x, y) => x - y),
          allowed,
        )),
      );
    return c;
  };
  for (;;) {
    let best: [number, number] | undefined,
      bestCost = Infinity;
    for (let i = 0; i < clusters.length; i++) {
      for (let j = i + 1; j < clusters.length; j++) {
        const c = costOf(clusters[i]!, clusters[j]!);
        if (c < bestCost) {
          bestCost = c;
          best = [i, j];
        }
      }
    }
    const stop = !best || ('tolerance' in bound ? bestCost > bound.tolerance : clusters.length <= bound.count);
    if (stop) {
      return { groups: clusters.filter((c) => c.length > 1), nextCost: bestCost };
    }
    const [i, j] = best!;
    const merged = [...clusters[i]!, ...clusters[j]!].sort((x, y) => x - y);
    // Costs are cached by the clusters' first members, which a merge changes: forget the merged ones.
    for (const k of [...cost.keys()]) {
      const [a, b] = k.split('|').map(Number);
      if (a === clusters[i]![0] || b === clusters[i]![0] || a === clusters[j]![0] || b === clusters[j]![0]) cost.delete(k);
    }
    clusters = clusters.filter((_, x) => x !== i && x !== j);
    clusters.push(merged);
    clusters.sort((a, b) => a[0]! - b[0]!);
  }
}
