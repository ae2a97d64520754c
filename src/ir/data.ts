// A tensor's data has one place: its raw_data field holds the bytes in memory, a FileRange (bytes
// still in the model's file, an external data file, or an output's data file), or DerivedBytes
// (bytes a pass left to be computed from others when first read or written). The reader creates
// it, passes read and replace it only through these functions, and the writer consumes it.
// The typed repeated fields (float_data, ...) are the other form ONNX allows; setData clears them.
import { FileRange, type ChunkSink } from './file-range.js';
import type { TensorProto } from './onnx.js';

/**
 * Bytes computed from other bytes when first read or written: the float16 values of a float32
 * weight still in its file (kernels/half-file.ts). A pass that leaves its result so spares memory
 * and time: the writer can leave the bytes' place in the output for its caller to fill on several
 * threads (pipeline/compress.ts).
 */
export interface DerivedBytes {
  readonly byteLength: number;
  /** The bytes, computed now (and kept). */
  load(): Uint8Array;
  /** The bytes handed over in pieces, each consumed before the next. */
  writeTo(write: ChunkSink): void;
}

export type TensorData = Uint8Array | FileRange | DerivedBytes;

/** Whether the data is DerivedBytes: neither in memory nor a file range. */
export function isDerived(data: TensorData): data is DerivedBytes {
  return !(data instanceof Uint8Array) && !(data instanceof FileRange);
}

/** The tensor's raw data (in memory or in a file); undefined when its values are in a typed field. */
export function dataOf(t: TensorProto): TensorData | undefined {
  return t.raw_data;
}

/** The file range holding the tensor's bytes, or undefined when they are in memory. */
export function fileRangeOf(t: TensorProto): FileRange | undefined {
  return t.raw_data instanceof FileRange ? t.raw_data : undefined;
}

/**
 * Replaces the tensor's data with `data` (its dims and type are the caller's): the one way a pass
 * gives a tensor new values, so that no stale copy (a typed field, an external reference) remains.
 */
export function setData(t: TensorProto, data: TensorData): void {
  t.raw_data = data;
  t.float_data = [];
  t.int32_data = [];
  t.string_data = [];
  t.int64_data = [];
  t.double_data = [];
  t.uint64_data = [];
  t.external_data = [];
  delete t.data_location;
}

/** Whether any tensor the walk visits keeps its data in an external data file of the model read. */
export function isExternalData(t: TensorProto): boolean {
  return fileRangeOf(t)?.external ?? false;
}
