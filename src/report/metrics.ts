// The arithmetic of the accuracy report: output fidelity, classification and language-model metrics.
// Pure functions over plain arrays, accumulated in float64 so large outputs do not lose precision.

export { FidelityAccumulator, type Fidelity } from '../kernels/fidelity.js';

/** Index of the largest value in each row of a [rows, classes] array. */
export function argmaxRows(values: ArrayLike<number | bigint>, classes: number): Int32Array {
  const rows = Math.floor(values.length / classes);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0,
      bestValue = -Infinity;
    for (let c = 0; c < classes; c++) {
      const v = Number(values[r * classes + c]);
      if (v > bestValue) {
        bestValue = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

export interface Classification {
  /** Fraction of samples whose top-1 prediction equals the label. */
  top1: number;
  /** Unweighted mean of per-class F1 over the classes present in labels or predictions. */
  macroF1: number;
  samples: number;
}

export function classification(predictions: ArrayLike<number>, labels: ArrayLike<number>): Classification {
  if (predictions.length !== labels.length) throw new Error(`${predictions.length} predictions for ${labels.length} labels`);
  const tp = new Map<number, number>(),
    fp = new Map<number, number>(),
    fn = new Map<number, number>();
  const bump = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = predictions[i]!,
      l = labels[i]!;
    if (p === l) {
      correct++;
      bump(tp, l);
    } else {
      bump(fp, p);
      bump(fn, l);
    }
  }
  const classes = new Set([...tp.keys(), ...fp.keys(), ...fn.keys()]);
  let f1Sum = 0;
  for (const c of classes) {
    const t = tp.get(c) ?? 0,
      f = fp.get(c) ?? 0,
      n = fn.get(c) ?? 0;
    f1Sum += t === 0 ? 0 : (2 * t) / (2 * t + f + n);
  }
  return { top1: labels.length ? correct / labels.length : 0, macroF1: classes.size ? f1Sum / classes.size : 0, samples: labels.length };
}

/** Cross-entropy sums of logits [positions, vocab] against target ids (negative targets are ignored). */
export class PerplexityAccumulator {
  private nll = 0;
  private tokens = 0;

  add(logits: ArrayLike<number>, vocab: number, targets: ArrayLike<number | bigint>): void {
    const positions = Math.floor(logits.length / vocab);
    if (positions !== targets.length) throw new Error(`${positions} logit rows for ${targets.length} target tokens`);
    for (let p = 0; p < positions; p++) {
      const target = Number(targets[p]);
      if (target < 0) continue;
      if (target >= vocab) throw new Error(`target token ${target} is outside the vocabulary of ${vocab}`);
      const base = p * vocab;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) if (logits[base + v]! > max) max = logits[base + v]!;
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(logits[base + v]! - max);
      this.nll += Math.log(sum) + max - logits[base + target]!;
      this.tokens++;
    }
  }

  result(): { perplexity: number; tokens: number; meanNll: number } {
    const meanNll = this.tokens ? this.nll / this.tokens : NaN;
    return { perplexity: Math.exp(meanNll), tokens: this.tokens, meanNll };
  }
}

/** Mean and 90th percentile (nearest rank) of timings in milliseconds. */
export function latencyStats(samplesMs: number[]): { meanMs: number; p90Ms: number; runs: number } {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  const p90 = sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)]! : NaN;
  return { meanMs: mean, p90Ms: p90, runs: sorted.length };
}

/** The q-th quantile (0 < q ≤ 1) of sorted values by nearest rank, as latencyStats takes its p90; NaN for none. */
export function nearestRank(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * The spread of the latency ratio over paired runs: r_i = compressed_i / reference_i for each round
 * of the alternating runs (both models timed in turn, so a round shares the machine's load), and
 * the 10th and 90th percentiles of r by nearest rank. A round whose reference time is 0 (below the
 * timer's resolution) has no ratio and is left out; with none left both are NaN.
 */
export function ratioSpread(referenceMs: number[], compressedMs: number[]): { p10: number; p90: number; ratios: number[] } {
  if (referenceMs.length !== compressedMs.length)
    throw new Error(`${referenceMs.length} reference runs for ${compressedMs.length} compressed runs`);
  const ratios = referenceMs.flatMap((r, i) => (r > 0 ? [compressedMs[i]! / r] : []));
  const sorted = [...ratios].sort((a, b) => a - b);
  return { p10: nearestRank(sorted, 0.1), p90: nearestRank(sorted, 0.9), ratios };
}
