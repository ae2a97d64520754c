// Writing a model: one .onnx file, or an .onnx file plus one external data file.
// Bytes are streamed: tensors already in memory are handed to the file as they are, tensors that
// live in the source's files are copied through in pieces. Nothing in the model changes: where a
// tensor is written differently, a substitute message is encoded in its place.
// With more than one thread, tensor bytes copied from file to file are left as gaps while the rest
// is written, and filled by ParallelCopy on helper threads and this one (io/copy.ts says why).
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { OutputError, UsageError } from '../errors.js';
import type { Model } from '../ir/model.js';
import { forEachTensor } from '../ir/walk.js';
import { TempFile } from './atomic.js';
import { encodeTo, type ChunkOrigin, type StreamedBytes } from './codec.js';
import { ParallelCopy, type RangeCopy } from './copy.js';
import { FileBytes } from './lazy.js';
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
  /**
   * Sees every piece of the .onnx file as it is written, with its offset. `bytes` is absent for
   * bytes copied from `origin` by the parallel copy (this thread never holds them all).
   */
  onModelChunk?: (offset: number, length: number, bytes: Uint8Array | undefined, origin?: ChunkOrigin) => void;
  /** Encode everything and count the bytes, but create no file (compress --dry-run). */
  dryRun?: boolean;
  /** Threads that copy unchanged tensor bytes from the source files (default 1: this one alone). */
  threads?: number;
  /** Fewest bytes to copy from file to file for which helper threads start (default 32 MiB). */
  parallelCopyFrom?: number;
}

/** Where the bytes go: a temporary file renamed when complete, or (dry run) nowhere, counted. */
interface Sink {
  readonly finalPath: string;
  bytes: number;
  write(chunk: Uint8Array): void;
  pad(n: number): void;
  /** Leaves `n` bytes to the parallel copy. */
  skip(n: number): void;
  commit(): void;
  abort(): void;
}

class CountingSink implements Sink {
  bytes = 0;
  constructor(readonly finalPath: string) {}
  write(chunk: Uint8Array): void { this.bytes += chunk.length; }
  pad(n: number): void { this.bytes += Math.max(0, n); }
  skip(n: number): void { this.bytes += n; }
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
  if (ref) return { bytes: new FileBytes(ref.file, ref.offset, ref.length), external: true };
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
  let modelFile: Sink | undefined;
  try {
    const file = modelFile = open(out);
    let placed: Placement[] = [];
    if (external) {
      const location = options.location ?? `${basename(out)}.data`;
      checkLocation(location);
      const dataPath = join(dirname(out), location);
      for (const input of model.sourceFiles()) {
        if (sameFile(input, dataPath)) throw new UsageError(`${dataPath}: refusing to overwrite the input's data file`);
      }
      if (sameFile(dataPath, out)) throw new UsageError(`external data location '${location}' is the model file itself`);
      dataFile = open(dataPath);
      placed = dataLayout(tensors, threshold, location, substitute);
    } else {
      for (const { tensor, data } of tensors) if (data.external) substitute.set(tensor, inlined(tensor, data.bytes));
    }

    // Bytes left to the parallel copy, by what they are and where they go.
    const deferred = new Map<StreamedBytes, number>();
    const ranges: RangeCopy[] = [];
    const helpers = options.dryRun ? 0 : Math.max(0, (options.threads ?? 1) - 1);
    const defer = (to: Sink, list: Placement[], into: Map<StreamedBytes, number>) => {
      let bytes = 0;
      for (const p of list) if (!(p.bytes instanceof Uint8Array) && p.bytes.origin) bytes += p.bytes.byteLength;
      if (bytes < (options.parallelCopyFrom ?? PARALLEL_COPY_BYTES)) return;
      for (const { bytes: b, offset } of list) {
        if (b instanceof Uint8Array || !b.origin) continue;
        into.set(b, offset);
        ranges.push({ from: b.origin.file, fromOffset: b.origin.offset, to: (to as TempFile).tmpPath, toOffset: offset, length: b.byteLength });
      }
    };
    const dataDeferred = new Map<StreamedBytes, number>();
    if (helpers > 0) {
      if (dataFile) defer(dataFile, placed, dataDeferred);
      defer(file, streamedPlacements(model, substitute), deferred);
    }
    const copy = ranges.length > 0 ? new ParallelCopy(ranges, helpers) : undefined;

    if (dataFile) {
      const sink = dataFile;
      for (const { bytes, offset } of placed) {
        sink.pad(offset - sink.bytes);
        if (!(bytes instanceof Uint8Array) && dataDeferred.has(bytes)) sink.skip(bytes.byteLength);
        else if (bytes instanceof Uint8Array) sink.write(bytes);
        else if (options.dryRun) sink.pad(bytes.byteLength); // counted, not read
        else bytes.writeTo((chunk) => sink.write(chunk));
      }
    }
    const watch = options.onModelChunk;
    encodeTo('onnx.ModelProto', model.proto, (chunk, origin) => {
      watch?.(file.bytes, chunk.length, chunk, origin);
      file.write(chunk);
    }, {
      substitute,
      placed: (bytes, offset) => {
        const planned = deferred.get(bytes);
        if (planned === undefined) return false;
        if (planned !== offset) throw new Error(`writer: a tensor planned at byte ${planned} came at ${offset}`);
        watch?.(offset, bytes.byteLength, undefined, bytes.origin);
        file.skip(bytes.byteLength);
        return true;
      },
    });
    copy?.finish();
    let externalData: WrittenFile | undefined;
    if (dataFile) {
      dataFile.commit();
      externalData = { path: join(dirname(outPath), options.location ?? `${basename(out)}.data`), bytes: dataFile.bytes };
    }
    file.commit();
    return { model: { path: outPath, bytes: file.bytes }, externalData };
  } catch (e) {
    dataFile?.abort();
    modelFile?.abort();
    throw e;
  }
}

/** Below this, starting a helper thread (~20 ms) costs more than it saves. */
const PARALLEL_COPY_BYTES = 32 << 20;

/** Bytes bound for `offset` of an output file. */
interface Placement {
  bytes: Uint8Array | StreamedBytes;
  offset: number;
}

/**
 * Where the external data file's tensors go: page-aligned when large (ONNX Runtime can then map
 * them), 64-byte aligned otherwise. Records the substitute messages that point at them; tensors
 * below `threshold` that were external are put back inline.
 */
function dataLayout(tensors: { tensor: TensorProto; data: TensorData }[], threshold: number, location: string, substitute: Map<object, object>): Placement[] {
  const placed: Placement[] = [];
  let end = 0;
  for (const { tensor, data } of tensors) {
    const length = data.bytes.byteLength;
    if (length < threshold) {
      if (data.external) substitute.set(tensor, inlined(tensor, data.bytes));
      continue;
    }
    const align = length >= LARGE_TENSOR ? 4096 : 64;
    end += (align - (end % align)) % align;
    placed.push({ bytes: data.bytes, offset: end });
    substitute.set(tensor, externalized(tensor, location, end, length));
    end += length;
  }
  return placed;
}

/**
 * Where the .onnx file's streamed tensor bytes go. Known only by encoding, so the model is encoded
 * once without reading them (the structure alone: ~2 ms for BERT-base).
 */
function streamedPlacements(model: Model, substitute: Map<object, object>): Placement[] {
  const placements: Placement[] = [];
  encodeTo('onnx.ModelProto', model.proto, () => {}, {
    substitute,
    placed: (bytes, offset) => { placements.push({ bytes, offset }); return true; },
  });
  return placements;
}
