// Reading a model file: size checks, decoding, and validation of external data references.
import { closeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { Model } from '../ir/model.js';
import { forEachTensor } from '../ir/walk.js';
import { DecodeError, decode } from './codec.js';
import { externalRef, isExternal } from './external.js';
import { openInput, readAll } from './input-path.js';
import { readWithHoles } from './lazy.js';
import { setData } from '../ir/data.js';
import { FileRange } from '../ir/file-range.js';
import { tensorSizeProblem } from '../ir/validate.js';
import { checkLimits } from '../ir/limits.js';
import type { ModelProto } from '../ir/onnx.js';

export interface ReadOptions {
  /** Files from this size on are read lazily: their large tensors stay in the file until needed (default 64 MiB). */
  lazyFileBytes?: number;
  /** The smallest tensor payload left in the file (default 1 MiB). */
  lazyTensorBytes?: number;
}

/** Protobuf cannot represent a message of 2 GiB or more; larger models keep weights in external files. */
export const MAX_MODEL_FILE_BYTES = 2 ** 31 - 1;

/** Decodes model bytes; `where` names the source in errors. */
export function decodeModel(bytes: Uint8Array, where: string): ModelProto {
  let proto: ModelProto;
  try {
    proto = decode<ModelProto>('onnx.ModelProto', bytes);
  } catch (e) {
    if (e instanceof DecodeError) throw new InputError(`${where}: not a valid ONNX model (${e.message})`);
    throw e;
  }
  if (!proto.graph) throw new InputError(`${where}: not an ONNX model (it has no graph)`);
  if (proto.ir_version === undefined) throw new InputError(`${where}: not an ONNX model (it has no ir_version)`);
  return proto;
}

/** Reads an .onnx file. Tensor bytes stay views into the file's buffer; external data is checked, not loaded. */
export function readModel(path: string, options: ReadOptions = {}): Model {
  const full = resolve(path);
  // Only a regular file, opened without blocking (input-path.ts); read from this descriptor.
  const { fd, stat } = openInput(path, full);
  let lazy: ReturnType<typeof readWithHoles>;
  let bytes: Buffer;
  try {
    if (stat.size === 0) throw new InputError(`${path}: empty file, not an ONNX model`);
    if (stat.size > MAX_MODEL_FILE_BYTES) {
      throw new InputError(
        `${path}: ${stat.size} bytes is over protobuf's 2 GiB limit; models this large keep their weights in external data files`,
      );
    }
    // Large files: big tensor payloads stay in the file until something reads them.
    lazy =
      stat.size >= (options.lazyFileBytes ?? 64 << 20) ? readWithHoles(full, stat.size, options.lazyTensorBytes ?? 1 << 20) : undefined;
    bytes = lazy?.buffer ?? readAll(fd, stat.size);
  } finally {
    closeSync(fd);
  }
  const proto = decodeModel(bytes, path);
  checkLimits(proto, path);
  // Large payloads left in the file, and external data, become FileRanges: the tensor's one data.
  if (lazy && lazy.holes.size > 0) {
    for (const t of proto.graph!.initializer) {
      const raw = t.raw_data;
      const length = raw instanceof Uint8Array ? lazy.holes.get(raw.byteOffset) : undefined;
      if (raw instanceof Uint8Array && raw.buffer === bytes.buffer && length === raw.byteLength)
        t.raw_data = new FileRange(full, raw.byteOffset, length);
    }
  }
  const dataFiles = new Set<string>();
  forEachTensor(proto, ({ tensor }) => {
    const ref = isExternal(tensor) ? externalRef(tensor, dirname(full), path) : undefined;
    // A shape that disagrees with the data would make every later step allocate or read what is not there.
    const problem = tensorSizeProblem(tensor, ref?.length);
    if (problem) throw new InputError(`${path}: ${problem}`);
    if (ref) {
      setData(tensor, new FileRange(ref.file, ref.offset, ref.length, ref.location));
      dataFiles.add(ref.file);
    }
  });
  const buffer = lazy && lazy.holes.size > 0 ? undefined : bytes;
  const model = new Model(proto, { path: full, given: path, dir: dirname(full), bytes: stat.size, buffer, dataFiles: [...dataFiles] });
  return model;
}
