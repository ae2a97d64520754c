// Recognising equal tensors quickly: values can only be equal when dtype and shape match, a digest
// of the bytes narrows that to likely copies, and a byte comparison confirms each one.
import { createHash } from 'node:crypto';
import type { TensorProto } from '../ir/onnx.js';
import { dtypeInfo } from '../ir/dtype.js';
import { bytesOf, toNumber, type ByteRange } from '../ir/tensor.js';
import type { JobKind } from './job.js';

/** What two tensors must share before their bytes are worth comparing. */
export function layoutKey(t: TensorProto): string {
  return `${t.data_type ?? 0}|${t.dims.map(toNumber).join('x')}`;
}

/** The layout key of the tensor's transpose (a 2-D tensor only). */
export function transposedLayoutKey(t: TensorProto): string {
  const [r, c] = t.dims.map(toNumber);
  return `${t.data_type ?? 0}|${c}x${r}`;
}

export function digest(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex');
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

/** Bytes per element when elements are whole bytes; undefined for packed sub-byte types and strings. */
export function elementBytes(t: TensorProto): number | undefined {
  const bits = dtypeInfo(t.data_type)?.bits ?? 0;
  return bits >= 8 && bits % 8 === 0 ? bits / 8 : undefined;
}

/** Fixed spread-out positions (as fractions of each axis) sampled by transposeSamples. */
const SAMPLE_ROWS = [0, 0.13, 0.27, 0.41, 0.55, 0.69, 0.83, 0.97];
const SAMPLE_COLS = [0.5, 0.91, 0.07, 0.33, 0.76, 0.21, 0.62, 0.45];

/**
 * Two small signatures of a [rows, cols] matrix X, read at fixed fractions (f, g) of its axes:
 * `direct` from X[f·rows][g·cols], `crossed` from X[g·rows][f·cols]. When K is the transpose of A,
 * K's direct signature equals A's crossed one, so only such pairs are worth transposing and
 * hashing in full (on BERT-base every square weight was otherwise transposed and hashed against
 * the others, most of dedup's time: bench/RESULTS.md, §"Figures moved from source comments").
 */
export function transposeSamples(bytes: Uint8Array, rows: number, cols: number, size: number): { direct: string; crossed: string } {
  const at = (r: number, c: number) => Buffer.from(bytes.buffer, bytes.byteOffset + (r * cols + c) * size, size).toString('hex');
  const direct: string[] = [],
    crossed: string[] = [];
  for (let s = 0; s < SAMPLE_ROWS.length; s++) {
    const f = SAMPLE_ROWS[s]!,
      g = SAMPLE_COLS[s]!;
    direct.push(at(Math.floor(f * rows), Math.floor(g * cols)));
    crossed.push(at(Math.floor(g * rows), Math.floor(f * cols)));
  }
  return { direct: direct.join(''), crossed: crossed.join('') };
}

/** What dedup needs to know of a tensor's bytes: their digest, and for a matrix its transpose samples. */
export interface Fingerprint {
  digest: string;
  samples?: { direct: string; crossed: string };
}

export function fingerprintOf(bytes: Uint8Array, dims: number[], size: number | undefined): Fingerprint {
  const print: Fingerprint = { digest: digest(bytes) };
  if (dims.length === 2 && size !== undefined && bytes.byteLength > 0) print.samples = transposeSamples(bytes, dims[0]!, dims[1]!, size);
  return print;
}

export interface FingerprintJob {
  kind: 'fingerprint';
  bytes: Uint8Array | ByteRange;
  dims: number[];
  /** Bytes per element (for the transpose samples), undefined for packed types. */
  size: number | undefined;
}

export const FINGERPRINT_JOB: JobKind<FingerprintJob, Fingerprint> = {
  input: 'bytes',
  execute: (job) => fingerprintOf(bytesOf(job.bytes), job.dims, job.size),
};
