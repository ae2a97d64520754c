// A tensor's data has one place: its raw_data field holds either the bytes in memory or a FileRange
// (bytes still in the model's file, an external data file, or an output's data file). The reader
// creates it, passes read and replace it only through these functions, and the writer consumes it.
// The typed repeated fields (float_data, ...) are the other form ONNX allows; setData clears them.
import { FileRange } from './file-range.js';
import type { TensorProto } from './onnx.js';

export type TensorData = Uint8Array | FileRange;

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
