// float16/bfloat16 values of a float32 weight still in its file, computed when first read or
// written (ir/data.ts's DerivedBytes). An fp16 conversion that computes every weight up front holds
// half the model's bytes in memory and converts on one thread before writing; left to the writer,
// the weights are converted on every thread straight into the output (half-fill.ts), the slowest
// part of the conversion (bench/RESULTS.md, §"fp16 at the disk's pace").
import { closeSync, openSync, writeSync } from 'node:fs';
import type { DerivedBytes } from '../ir/data.js';
import type { ChunkSink } from '../ir/file-range.js';
import { FLOAT16_MAX, type HalfConversion, type HalfFigures } from '../ir/half.js';
import type { FloatSource } from '../ir/tensor.js';
import { OutputError } from '../errors.js';
import type { JobKind } from './job.js';
import { simdKernels } from './simd.js';

/**
 * A weight turned out to have values float16 cannot hold, found only as it was converted: the pass
 * that left it to the writer assumed it fit. The caller runs the pipeline again converting every
 * weight first (pipeline/compress.ts), which then keeps this one float32.
 */
export class HalfRangeExceeded extends Error {
  constructor(readonly tensor: string) {
    super(`weight '${tensor}' has values beyond float16's range, found only as it was converted`);
    this.name = 'HalfRangeExceeded';
  }
}

/** Whether a conversion's values all fit the type (bfloat16 has float32's range; NaN never fits float16). */
export function fitsHalf(figures: HalfFigures, bfloat16: boolean): boolean {
  return bfloat16 || figures.largest <= FLOAT16_MAX;
}

/** The half-precision bytes of a float32 weight still in a file, computed when first read or written. */
export class HalfOfFile implements DerivedBytes {
  private bits: Uint8Array | undefined;
  /** What the conversion measured, once it ran (load, writeTo, or the writer's fill). */
  figures: HalfFigures | undefined;

  constructor(
    /** The weight's name, for the error should its values not fit. */
    readonly name: string,
    readonly source: FloatSource,
    readonly bfloat16: boolean,
  ) {}

  get byteLength(): number {
    return this.source.length * 2;
  }

  load(): Uint8Array {
    if (!this.bits) {
      const c: HalfConversion = simdKernels().toHalf(this.source, this.bfloat16);
      this.measured(c);
      this.bits = new Uint8Array(c.bits.buffer);
    }
    return this.bits;
  }

  writeTo(write: ChunkSink): void {
    if (this.bits) write(this.bits);
    else this.measured(simdKernels().toHalfPieces(this.source, this.bfloat16, (piece) => write(piece)));
  }

  /** Records what a conversion of all the values measured; throws HalfRangeExceeded where they do not fit. */
  measured(figures: HalfFigures): void {
    this.figures = figures;
    if (!fitsHalf(figures, this.bfloat16)) throw new HalfRangeExceeded(this.name);
  }
}

/** Converts float32 values in a file to half precision at an offset of another file (the writer's fill, half-fill.ts). */
export interface HalfFillJob {
  kind: 'half-fill';
  values: FloatSource;
  bfloat16: boolean;
  to: string;
  toOffset: number;
}

export const HALF_FILL_JOB: JobKind<HalfFillJob, HalfFigures> = {
  input: 'values',
  execute: (job) => {
    const fd = openSync(job.to, 'r+');
    try {
      let at = job.toOffset;
      return simdKernels().toHalfPieces(job.values, job.bfloat16, (piece) => {
        for (let done = 0; done < piece.length; ) done += writeSync(fd, piece, done, piece.length - done, at + done);
        at += piece.length;
      });
    } catch (e) {
      throw new OutputError(`${job.to}: write failed (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    } finally {
      closeSync(fd);
    }
  },
};
