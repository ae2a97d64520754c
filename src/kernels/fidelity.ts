// Output fidelity, accumulated in float64 so that large outputs do not lose precision: below report/
// (which re-exports it) because ONNX Runtime's child process (runtime/child.ts) compares values
// where they are, so that the activations of a per-node comparison never cross between processes.

export interface Fidelity {
  /** Largest absolute difference between reference and compressed values. */
  maxAbsError: number;
  meanAbsError: number;
  /** Cosine similarity of the two outputs taken as flat vectors (1 when identical). */
  cosine: number;
  /** Signal-to-noise ratio in dB: 10·log10(Σref² / Σ(ref−cmp)²); Infinity when identical. */
  snrDb: number;
  /** Values compared. */
  count: number;
}

/** Running sums for fidelity over several batches. */
export class FidelityAccumulator {
  private maxAbs = 0;
  private sumAbs = 0;
  private dot = 0;
  private refSq = 0;
  private cmpSq = 0;
  private errSq = 0;
  private n = 0;
  private nonFinite = 0;

  add(reference: ArrayLike<number | bigint>, compressed: ArrayLike<number | bigint>): void {
    if (reference.length !== compressed.length) throw new Error(`outputs differ in size: ${reference.length} vs ${compressed.length}`);
    for (let i = 0; i < reference.length; i++) {
      const r = Number(reference[i]),
        c = Number(compressed[i]);
      if (!Number.isFinite(r) || !Number.isFinite(c)) {
        // Identical non-finite values (both NaN, same infinity) carry no error; any other pairing is unbounded.
        if (!(Object.is(r, c) || (Number.isNaN(r) && Number.isNaN(c)))) this.nonFinite++;
        continue;
      }
      const d = Math.abs(r - c);
      if (d > this.maxAbs) this.maxAbs = d;
      this.sumAbs += d;
      this.dot += r * c;
      this.refSq += r * r;
      this.cmpSq += c * c;
      this.errSq += d * d;
      this.n++;
    }
  }

  result(): Fidelity {
    if (this.nonFinite > 0)
      return { maxAbsError: Infinity, meanAbsError: Infinity, cosine: NaN, snrDb: -Infinity, count: this.n + this.nonFinite };
    const norms = Math.sqrt(this.refSq) * Math.sqrt(this.cmpSq);
    // Identical outputs have cosine exactly 1; the division would leave a rounding residue.
    const cosine = this.errSq === 0 ? 1 : norms === 0 ? 0 : this.dot / norms;
    return {
      maxAbsError: this.maxAbs,
      meanAbsError: this.n === 0 ? 0 : this.sumAbs / this.n,
      cosine: Math.min(1, cosine),
      snrDb: this.errSq === 0 ? Infinity : this.refSq === 0 ? -Infinity : 10 * Math.log10(this.refSq / this.errSq),
      count: this.n,
    };
  }
}
