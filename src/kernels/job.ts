// One kind of kernel job as the pool sees it: where its input is (which decides the thread it may
// run on and its place in the largest-first order) and the code that runs it. Each kind lives
// beside its arithmetic (quantize.ts, kmeans.ts, ...); jobs.ts lists them.
import { readFloats, type ByteRange, type FloatSource } from '../ir/tensor.js';
import { PROGRESS_CHUNK, type JobProgress } from './progress.js';

/** A job's input: float values or bytes, in memory (sent to one worker as a copy) or still in the file. */
export type JobInput = Float32Array | FloatSource | Uint8Array | ByteRange;

export interface JobKind<J, R> {
  /** The field holding the job's input (a copy of it goes to a worker, which then owns it). */
  readonly input: { [K in keyof J]-?: J[K] extends JobInput ? K : never }[keyof J];
  /** Runs the job on this thread (a worker's, or the caller's), telling `progress` the fraction done as it goes. */
  execute(job: J, progress?: JobProgress): R;
}

/** Whether the input is in memory, not still in the file. */
export function inMemory(input: JobInput): input is Float32Array | Uint8Array {
  return ArrayBuffer.isView(input);
}

/** The input's size in bytes. */
export function inputBytes(input: JobInput): number {
  return 'byteLength' in input ? input.byteLength : input.length * 4;
}

/** The values in an array of their own, read from the file a chunk at a time for `progress`. */
export function readInChunks(values: Float32Array | FloatSource, progress?: JobProgress): Float32Array {
  if (values instanceof Float32Array) return values;
  const out = new Float32Array(values.length);
  for (let lo = 0; lo < values.length; lo += PROGRESS_CHUNK) {
    const hi = Math.min(values.length, lo + PROGRESS_CHUNK);
    readFloats({ file: values.file, offset: values.offset + lo * 4, length: hi - lo }, out.subarray(lo, hi));
    progress?.(hi / values.length);
  }
  return out;
}
