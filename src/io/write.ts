// Writing a model: one .onnx file, or an .onnx file plus one external data file.
// Bytes are streamed: tensors already in memory are handed to the file as they are, tensors that
// live in the source's external files are copied through in pieces. Nothing in the model changes:
// where a tensor is written differently, a substitute message is encoded in its place.
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { OutputError, UsageError } from '../errors.js';
import type { Model } from '../ir/model.js';
import { forEachTensor } from '../ir/walk.js';
import { TempFile } from './atomic.js';
import { encodeTo, type ChunkOrigin, type StreamedBytes } from './codec.js';
import { ExternalBytes } from './external.js';
import type { TensorProto } from './types.js';
import { TENSOR_LOCATION_EXTERNAL } from './types.js';

export interface WriteOptions {
  /**
   * true: tensors of at least `sizeThreshold` bytes go to an external data file; false: one file;
   * 'auto' (default): external when the source model used external data or the model would pass 2 GiB.
   */
  externalData?: boolean | 'auto';
  /** Name of the external data file, relative to the output's folder (default: `<output name>.data`). */
  location?: string;
  /** Smallest tensor, in bytes, moved to the external file (default 1024, as the onnx library). */
  sizeThreshold?: number;
  /** Sees every chunk of the .onnx file as it is written, with its offset. */
  onModelChunk?: (chunk: Uint8Array, offset: number, origin?: ChunkOrigin) => void;
  /** Encode everything and count the bytes, but create no file (compress --dry-run). */
  dryRun?: boolean;
}

/** Where the bytes go: a temporary file renamed when complete, or (dry run) nowhere, counted. */
interface Sink {
  readonly finalPath: string;
  bytes: number;
  write(chunk: Uint8Array): void;
  pad(n: number): void;
  commit(): void;
  abort(): void;
}

class CountingSink implements Sink {
  bytes = 0;
  constructor(readonly finalPath: string) {}
  write(chunk: Uint8Array): void { this.bytes += chunk.length; }
  pad(n: number): void { this.bytes += Math.max(0, n); }
  commit(): void {}
  abort(): void {}
}

export interface WrittenFile {
  path: string;
  bytes: number;
}

export interface WriteResult {
  model: WrittenFile;
  externalData?: WrittenFile;
}

/** Protobuf's limit is 2 GiB; stay clear of it so the graph's own bytes fit too. */
const AUTO_EXTERNAL_BYTES = 2 ** 31 - (64 << 20);
const LARGE_TENSOR = 1 << 20;

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return resolve(a) === resolve(b);
  }
}

interface TensorData {
  bytes: Uint8Array | StreamedBytes;
  external: boolean;
}

function dataOf(model: Model, t: TensorProto): TensorData | undefined {
  const ref = model.external.get(t);
  if (ref) return { bytes: new ExternalBytes(ref), external: true };
  if (t.data_location === TENSOR_LOCATION_EXTERNAL) {
    throw new OutputError(`tensor '${t.name ?? ''}' is marked external but its data file is unknown`);
  }
  if (t.raw_data) return { bytes: t.raw_data, external: false };
  return undefined;
}

function inlined(t: TensorProto, bytes: Uint8Array | StreamedBytes): TensorProto {
  const copy: TensorProto = { ...t, external_data: [], raw_data: bytes as Uint8Array };
  delete copy.data_location;
  return copy;
}

function externalized(t: TensorProto, location: string, offset: number, length: number): TensorProto {
  const copy: TensorProto = {
    ...t,
    external_data: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
    data_location: TENSOR_LOCATION_EXTERNAL,
  };
  delete copy.raw_data;
  return copy;
}

function checkLocation(location: string): void {
  if (location === '' || isAbsolute(location) || location.split(/[\\/]+/).includes('..')) {
    throw new UsageError(`external data location '${location}' must be a file name inside the output's folder`);
  }
}

/** Writes `model` to `outPath` (and its external data file), each under a temporary name until complete. */
export function writeModel(model: Model, outPath: string, options: WriteOptions = {}): WriteResult {
  const out = resolve(outPath);
  for (const input of model.sourceFiles()) {
    if (sameFile(input, out)) throw new UsageError(`${outPath}: refusing to overwrite the input ${input}`);
  }
  const threshold = options.sizeThreshold ?? 1024;
  if (!Number.isInteger(threshold) || threshold < 0) throw new UsageError(`size threshold must be a whole number of bytes, got ${threshold}`);

  const tensors: { tensor: TensorProto; data: TensorData }[] = [];
  let dataBytes = 0;
  let anyExternal = false;
  forEachTensor(model.proto, ({ tensor, place }) => {
    const data = dataOf(model, tensor);
    if (!data) return;
    anyExternal ||= data.external;
    dataBytes += data.bytes.byteLength;
    // As the onnx library: initializers go out, attribute tensors stay inline unless they already were external.
    if (place === 'initializer' || data.external) tensors.push({ tensor, data });
  });
  const external = options.externalData === 'auto' || options.externalData === undefined
    ? anyExternal || dataBytes > AUTO_EXTERNAL_BYTES
    : options.externalData;

  const substitute = new Map<object, object>();
  const open = (path: string): Sink => (options.dryRun ? new CountingSink(path) : new TempFile(path));
  let dataFile: Sink | undefined;
  const modelFile = open(out);
  try {
    if (external) {
      const location = options.location ?? `${basename(out)}.data`;
      checkLocation(location);
      const dataPath = join(dirname(out), location);
      for (const input of model.sourceFiles()) {
        if (sameFile(input, dataPath)) throw new UsageError(`${dataPath}: refusing to overwrite the input's data file`);
      }
      if (sameFile(dataPath, out)) throw new UsageError(`external data location '${location}' is the model file itself`);
      dataFile = open(dataPath);
      for (const { tensor, data } of tensors) {
        const length = data.bytes.byteLength;
        if (length < threshold) {
          if (data.external) substitute.set(tensor, inlined(tensor, data.bytes));
          continue;
        }
        // Page-aligned large tensors can be memory-mapped by ONNX Runtime.
        const align = length >= LARGE_TENSOR ? 4096 : 64;
        dataFile.pad((align - (dataFile.bytes % align)) % align);
        const offset = dataFile.bytes;
        if (data.bytes instanceof Uint8Array) dataFile.write(data.bytes);
        else if (options.dryRun) dataFile.pad(length); // counted, not read
        else data.bytes.writeTo((chunk) => dataFile!.write(chunk));
        substitute.set(tensor, externalized(tensor, location, offset, length));
      }
    } else {
      for (const { tensor, data } of tensors) if (data.external) substitute.set(tensor, inlined(tensor, data.bytes));
    }
    const watch = options.onModelChunk;
    encodeTo('onnx.ModelProto', model.proto, (chunk, origin) => {
      watch?.(chunk, modelFile.bytes, origin);
      modelFile.write(chunk);
    }, { substitute });
    let externalData: WrittenFile | undefined;
    if (dataFile) {
      dataFile.commit();
      externalData = { path: join(dirname(outPath), options.location ?? `${basename(out)}.data`), bytes: dataFile.bytes };
    }
    modelFile.commit();
    return { model: { path: outPath, bytes: modelFile.bytes }, externalData };
  } catch (e) {
    dataFile?.abort();
    modelFile.abort();
    throw e;
  }
}
