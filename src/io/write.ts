// Writing a model: one .onnx file, or an .onnx file plus one external data file.
// Bytes are streamed: tensors already in memory are handed to the file as they are, tensors that
// live in the source's files are copied through in pieces. Nothing in the model changes: where a
// tensor is written differently, a substitute message is encoded in its place.
// With more than one thread, tensor bytes copied from file to file are left as gaps while the rest
// is written, and filled by ParallelCopy on helper threads and this one (io/copy.ts says why).
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { OutputError, UsageError } from '../errors.js';
import type { Model } from '../ir/model.js';
import { forEachTensor } from '../ir/walk.js';
import { TempFile } from './atomic.js';
import { checkOutputs, createFolders } from './output-path.js';
import { encodeTo, type ChunkOrigin, type StreamedBytes } from './codec.js';
import { ParallelCopy, type RangeCopy } from './copy.js';
import { dataOf, isDerived, isExternalData, setData, type DerivedBytes, type TensorData } from '../ir/data.js';
import { FileRange } from '../ir/file-range.js';
import type { TensorProto } from '../ir/onnx.js';
import { TENSOR_LOCATION_EXTERNAL } from '../ir/onnx.js';

export interface WriteOptions {
  /**
   * true: tensors of at least `sizeThreshold` bytes go to an external data file; false: one file;
   * 'auto' (default): external when the source model used external data or the model would pass 2 GiB
   * (compress also when the passes' tensors would not fit in memory: pipeline/compress.ts).
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
  /** The external data file, opened before the passes ran and holding the tensors they settled (implies externalData). */
  data?: SettledData;
  /**
   * Leave the files under their temporary names: the caller commits (or aborts) them through the
   * result's `pending`, and commits `data` itself (several models written as one output).
   */
  deferCommit?: boolean;
  /**
   * Replace existing regular files (and symbolic links) at the output paths (default true; the
   * command line passes --force). Folders, devices, FIFOs and the model's own files never are.
   */
  force?: boolean;
  /** The .onnx file, opened as the model was read with its large tensors already being copied in (see PrecopiedOutput). */
  precopied?: PrecopiedOutput;
  /**
   * Leave the place of every tensor's DerivedBytes empty, listed in the result's `derived`, for the
   * caller to fill (on several threads: kernels/half-fill.ts) before it commits; implies deferCommit.
   * Ignored by a dry run, which counts them.
   */
  leaveDerived?: boolean;
}

/** Where the writer left a tensor's derived bytes to be filled (WriteOptions.leaveDerived). */
export interface DerivedPlacement {
  bytes: DerivedBytes;
  /** The file (its temporary name) and the offset the bytes go to. */
  path: string;
  offset: number;
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
  write(chunk: Uint8Array): void {
    this.bytes += chunk.length;
  }
  pad(n: number): void {
    this.bytes += Math.max(0, n);
  }
  skip(n: number): void {
    this.bytes += n;
  }
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
  /** With deferCommit: the files still under temporary names (`data` excepted). */
  pending?: { commit(): void; abort(): void };
  /** With leaveDerived: the places left for derived bytes, to fill before committing. */
  derived?: DerivedPlacement[];
}

/** An external data file some tensors were already written to (OutputData, io/shared-data.ts's SharedData). */
export interface SettledData {
  readonly location: string;
  readonly path: string;
  readonly file: TempFile;
  offsetOf(bytes: Uint8Array | StreamedBytes): number | undefined;
  commit(): void;
}

/** Protobuf's limit is 2 GiB; stay clear of it so the graph's own bytes fit too. */
const AUTO_EXTERNAL_BYTES = 2 ** 31 - (64 << 20);
const LARGE_TENSOR = 1 << 20;

/** A tensor's data as the writer places it: its bytes, and whether it came from an external data file. */
interface Placeable {
  bytes: TensorData;
  external: boolean;
}

function placeableOf(t: TensorProto): Placeable | undefined {
  if (t.data_location === TENSOR_LOCATION_EXTERNAL) {
    throw new OutputError(`tensor '${t.name ?? ''}' is marked external but its data file is unknown`);
  }
  const bytes = dataOf(t);
  return bytes && { bytes, external: isExternalData(t) };
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

function externalWanted(option: WriteOptions['externalData'], anyExternal: boolean, dataBytes: number): boolean {
  return option === 'auto' || option === undefined ? anyExternal || dataBytes > AUTO_EXTERNAL_BYTES : option;
}

/** The bytes of every tensor's data (inline, in the source file or in external data files). */
export function tensorDataBytes(model: Model): number {
  let bytes = 0;
  forEachTensor(model.proto, ({ tensor }) => {
    bytes += placeableOf(tensor)?.bytes.byteLength ?? 0;
  });
  return bytes;
}

/** Whether `model` written with `options` gets an external data file. */
export function writesExternalData(model: Model, options: WriteOptions = {}): boolean {
  if (options.data) return true;
  let dataBytes = 0;
  let anyExternal = false;
  forEachTensor(model.proto, ({ tensor }) => {
    const data = placeableOf(tensor);
    anyExternal ||= data?.external ?? false;
    dataBytes += data?.bytes.byteLength ?? 0;
  });
  return externalWanted(options.externalData, anyExternal, dataBytes);
}

/** The output's absolute path, checked against the output policy (io/output-path.ts). */
function outputPath(model: Model, outPath: string, options: WriteOptions): string {
  if (!options.dryRun) checkOutputs([{ path: outPath, role: 'output' }], { force: options.force ?? true, inputs: model.sourceFiles() });
  return resolve(outPath);
}

/**
 * The external data file's location and path for an output, checked against the output policy: it
 * stays inside the output's folder, replaces no input, and replaces an existing file only with
 * `force`. A folder in `location` that does not exist yet is created.
 */
function dataTarget(model: Model, out: string, options: WriteOptions): { location: string; path: string } {
  const location = options.location ?? `${basename(out)}.data`;
  checkLocation(location);
  const path = join(dirname(out), location);
  if (resolve(path) === resolve(out)) throw new UsageError(`external data location '${location}' is the model file itself`);
  if (!options.dryRun) {
    const target = { path, role: 'external data file', within: dirname(out) };
    createFolders(checkOutputs([target], { force: options.force ?? true, inputs: model.sourceFiles() }));
  }
  return { location, path };
}

/** Points tensors settled into a data file's temporary name at its final name, once it is renamed there. */
export function repointSettled(settled: TensorProto[], tmpPath: string, finalPath: string): void {
  for (const t of settled) {
    const data = dataOf(t);
    if (data instanceof FileRange && data.file === tmpPath) setData(t, data.movedTo(finalPath));
  }
}

/** Page-aligned large tensors can be memory-mapped by ONNX Runtime; others are 64-byte aligned. */
function alignedOffset(end: number, length: number): number {
  const align = length >= LARGE_TENSOR ? 4096 : 64;
  return end + ((align - (end % align)) % align);
}

/**
 * An output's external data file, opened before the passes run, so that tensors are written as
 * soon as they are final: the last pass hands each new tensor to `settle`, which writes it and
 * leaves the tensor pointing at the file, so its bytes need not stay in memory. writeModel then
 * adds the tensors nobody settled and renames the file into place.
 */
export class OutputData {
  readonly location: string;
  readonly path: string;
  readonly file: TempFile;
  private readonly threshold: number;
  private readonly settled: TensorProto[] = [];

  constructor(model: Model, outPath: string, options: WriteOptions = {}) {
    const out = outputPath(model, outPath, options);
    ({ location: this.location, path: this.path } = dataTarget(model, out, options));
    this.threshold = sizeThreshold(options);
    this.file = new TempFile(this.path);
  }

  /** Writes the tensors of at least the size threshold held in memory, and points them at the file. */
  settle(tensors: TensorProto[]): void {
    for (const t of tensors) {
      const raw = dataOf(t);
      if (!(raw instanceof Uint8Array) || raw.byteLength < this.threshold) continue;
      this.file.pad(alignedOffset(this.file.bytes, raw.byteLength) - this.file.bytes);
      const offset = this.file.bytes;
      this.file.write(raw);
      t.raw_data = new FileRange(this.file.tmpPath, offset, raw.byteLength);
      this.settled.push(t);
    }
  }

  /** Where a settled tensor's bytes are, or undefined for any other tensor. */
  offsetOf(bytes: TensorData): number | undefined {
    return bytes instanceof FileRange && bytes.file === this.file.tmpPath ? bytes.offset : undefined;
  }

  /** Renames the file into place; settled tensors then read from there. */
  commit(): void {
    this.file.commit();
    repointSettled(this.settled, this.file.tmpPath, this.path);
  }

  abort(): void {
    this.file.abort();
  }
}

function sizeThreshold(options: WriteOptions): number {
  const threshold = options.sizeThreshold ?? 1024;
  if (!Number.isInteger(threshold) || threshold < 0)
    throw new UsageError(`size threshold must be a whole number of bytes, got ${threshold}`);
  return threshold;
}

/** Writes `model` to `outPath` (and its external data file), each under a temporary name until complete. */
export function writeModel(model: Model, outPath: string, options: WriteOptions = {}): WriteResult {
  const out = outputPath(model, outPath, options);
  const threshold = sizeThreshold(options);

  const tensors: { tensor: TensorProto; data: Placeable }[] = [];
  let dataBytes = 0;
  let anyExternal = false;
  forEachTensor(model.proto, ({ tensor, place }) => {
    const data = placeableOf(tensor);
    if (!data) return;
    anyExternal ||= data.external;
    dataBytes += data.bytes.byteLength;
    // As the onnx library: initializers go out, attribute tensors stay inline unless they already were external.
    if (place === 'initializer' || data.external) tensors.push({ tensor, data });
  });
  const external = options.data !== undefined || externalWanted(options.externalData, anyExternal, dataBytes);

  const substitute = new Map<object, object>();
  const open = (path: string): Sink => (options.dryRun ? new CountingSink(path) : new TempFile(path));
  let dataFile: Sink | undefined;
  let modelFile: Sink | undefined;
  const settledData = options.data;
  // A precopied file is kept only where every tensor it is copying lands where it was (with no
  // external data, nothing is substituted, so the layout is known now).
  let pre = options.precopied;
  const prePlacements = pre && !external && !options.dryRun ? streamedPlacements(model, substitute) : undefined;
  if (pre && !(prePlacements && pre.matches(prePlacements))) {
    pre.abort();
    pre = undefined;
  }
  try {
    const file = (modelFile = pre?.file ?? open(out));
    let placed: Placement[] = [];
    if (external) {
      const target = settledData ?? dataTarget(model, out, options);
      dataFile = settledData?.file ?? open(target.path);
      placed = dataLayout(tensors, threshold, target.location, substitute, dataFile.bytes, settledData);
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
        ranges.push({
          from: b.origin.file,
          fromOffset: b.origin.offset,
          to: (to as TempFile).tmpPath,
          toOffset: offset,
          length: b.byteLength,
        });
      }
    };
    const dataDeferred = new Map<StreamedBytes, number>();
    if (pre) {
      // What the precopy covers is skipped here; the rest is written as it comes.
      for (const p of prePlacements!)
        if (!(p.bytes instanceof Uint8Array) && pre.covers(p.bytes, p.offset)) deferred.set(p.bytes, p.offset);
    } else if (helpers > 0) {
      if (dataFile) defer(dataFile, placed, dataDeferred);
      // Where the .onnx file's streamed bytes land is found by encoding it once: not worth it for a few.
      let inModelFile = 0;
      for (const { tensor } of tensors) {
        const raw = ((substitute.get(tensor) ?? tensor) as TensorProto).raw_data;
        if (raw instanceof FileRange) inModelFile += raw.byteLength;
      }
      if (inModelFile >= (options.parallelCopyFrom ?? PARALLEL_COPY_BYTES)) defer(file, streamedPlacements(model, substitute), deferred);
    }
    const copy = ranges.length > 0 ? new ParallelCopy(ranges, helpers) : undefined;

    const leave = options.leaveDerived === true && !options.dryRun;
    const derived: DerivedPlacement[] = [];
    if (dataFile) {
      const sink = dataFile;
      for (const { bytes, offset } of placed) {
        sink.pad(offset - sink.bytes);
        if (!(bytes instanceof Uint8Array) && dataDeferred.has(bytes)) sink.skip(bytes.byteLength);
        else if (leave && isDerived(bytes as TensorData)) {
          derived.push({ bytes: bytes as DerivedBytes, path: (sink as TempFile).tmpPath, offset });
          sink.skip(bytes.byteLength);
        } else if (bytes instanceof Uint8Array) sink.write(bytes);
        else if (options.dryRun)
          sink.pad(bytes.byteLength); // counted, not read
        else bytes.writeTo((chunk) => sink.write(chunk));
      }
    }
    const watch = options.onModelChunk;
    encodeTo(
      'onnx.ModelProto',
      model.proto,
      (chunk, origin) => {
        watch?.(file.bytes, chunk.length, chunk, origin);
        file.write(chunk);
      },
      {
        substitute,
        placed: (bytes, offset) => {
          if (leave && isDerived(bytes as TensorData)) {
            derived.push({ bytes: bytes as DerivedBytes, path: (file as TempFile).tmpPath, offset });
            file.skip(bytes.byteLength);
            return true;
          }
          const planned = deferred.get(bytes);
          if (planned === undefined) return false;
          if (planned !== offset) throw new Error(`writer: a tensor planned at byte ${planned} came at ${offset}`);
          watch?.(offset, bytes.byteLength, undefined, bytes.origin);
          file.skip(bytes.byteLength);
          return true;
        },
      },
    );
    copy?.finish();
    pre?.finish();
    let externalData: WrittenFile | undefined;
    if (options.deferCommit || leave) {
      const ownData = settledData ? undefined : dataFile;
      if (dataFile) externalData = { path: join(dirname(outPath), options.location ?? `${basename(out)}.data`), bytes: dataFile.bytes };
      const pending = {
        commit() {
          ownData?.commit();
          file.commit();
        },
        abort() {
          ownData?.abort();
          if (pre) pre.abort();
          else file.abort();
        },
      };
      return { model: { path: outPath, bytes: file.bytes }, externalData, pending, ...(leave ? { derived } : {}) };
    }
    if (dataFile) {
      if (settledData) settledData.commit();
      else dataFile.commit();
      externalData = { path: join(dirname(outPath), options.location ?? `${basename(out)}.data`), bytes: dataFile.bytes };
    }
    file.commit();
    return { model: { path: outPath, bytes: file.bytes }, externalData };
  } catch (e) {
    dataFile?.abort();
    if (pre) pre.abort();
    else modelFile?.abort();
    throw e;
  }
}

/**
 * The .onnx output of a run with no pass, opened as soon as the model is read, its large tensors
 * already being copied by helper threads to the offsets they have in the input while the run
 * checks the model: re-encoding a model encoded canonically (as the onnx library and ONNX Runtime
 * write them) puts every byte back where it was. writeModel takes the file over and skips what the
 * copy covers; where the layout turns out to differ, it discards the file and starts afresh.
 * The gain is small (bench/RESULTS.md, §"What changed, each measured against the build before it",
 * c7edc52): the helper thread, started with the command, is ready about when the model has been
 * read, and until then nothing can be copied sooner.
 */
export class PrecopiedOutput {
  /** Input offset → length of the tensor bytes being copied to the same offset. */
  private readonly ranges = new Map<number, number>();

  private constructor(
    readonly file: TempFile,
    private readonly source: string,
    private readonly copy: ParallelCopy,
    ranges: RangeCopy[],
  ) {
    for (const r of ranges) this.ranges.set(r.fromOffset, r.length);
  }

  /**
   * Starts the copy when writing `model` unchanged to `outPath` with `options` can use it: one file
   * in and out, more than one thread, enough bytes. Otherwise undefined (writeModel then writes
   * as usual, and reports what is wrong with the output path).
   */
  static start(model: Model, outPath: string, options: WriteOptions): PrecopiedOutput | undefined {
    const helpers = Math.max(0, (options.threads ?? 1) - 1);
    const source = model.source?.path;
    if (helpers === 0 || !source || options.dryRun || options.data || model.source!.dataFiles.length > 0 || options.externalData === true)
      return undefined;
    let out: string;
    try {
      out = outputPath(model, outPath, options);
    } catch {
      return undefined;
    }
    const ranges: RangeCopy[] = [];
    let bytes = 0;
    for (const t of model.proto.graph?.initializer ?? []) {
      const raw = dataOf(t);
      if (raw instanceof FileRange && raw.file === source) {
        ranges.push({ from: source, fromOffset: raw.offset, to: '', toOffset: raw.offset, length: raw.length });
        bytes += raw.length;
      }
    }
    if (bytes < (options.parallelCopyFrom ?? PARALLEL_COPY_BYTES) || bytes > AUTO_EXTERNAL_BYTES) return undefined;
    let file: TempFile;
    try {
      file = new TempFile(out);
    } catch {
      return undefined;
    }
    for (const r of ranges) r.to = file.tmpPath;
    return new PrecopiedOutput(file, source, new ParallelCopy(ranges, helpers), ranges);
  }

  /** Whether every range being copied is where the writer will put that tensor's bytes. */
  matches(placements: Placement[]): boolean {
    let found = 0;
    for (const { bytes, offset } of placements) if (!(bytes instanceof Uint8Array) && this.covers(bytes, offset)) found++;
    return found === this.ranges.size;
  }

  /** Whether these bytes, bound for `offset`, are among those being copied there. */
  covers(bytes: StreamedBytes, offset: number): boolean {
    const origin = bytes.origin;
    return origin !== undefined && origin.file === this.source && origin.offset === offset && this.ranges.get(offset) === bytes.byteLength;
  }

  /** Copies what the helpers have not yet taken, and waits for them. */
  finish(): void {
    this.copy.finish();
  }

  /** Stops the copy and deletes the file. */
  abort(): void {
    this.copy.cancel();
    this.file.abort();
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
 * Where the external data file's tensors go: where they were settled, else after `start`, aligned.
 * Records the substitute messages that point at them; tensors below `threshold` that were
 * external are put back inline.
 */
function dataLayout(
  tensors: { tensor: TensorProto; data: Placeable }[],
  threshold: number,
  location: string,
  substitute: Map<object, object>,
  start: number,
  settled: SettledData | undefined,
): Placement[] {
  const placed: Placement[] = [];
  let end = start;
  for (const { tensor, data } of tensors) {
    const length = data.bytes.byteLength;
    const settledAt = settled?.offsetOf(data.bytes);
    if (settledAt !== undefined) {
      substitute.set(tensor, externalized(tensor, location, settledAt, length));
      continue;
    }
    if (length < threshold) continue;
    end = alignedOffset(end, length);
    placed.push({ bytes: data.bytes, offset: end });
    substitute.set(tensor, externalized(tensor, location, end, length));
    end += length;
  }
  return placed;
}

/**
 * Where the .onnx file's streamed tensor bytes go. Known only by encoding, so the model is encoded
 * once without reading them (the structure alone, which is cheap: bench/RESULTS.md, §"Figures
 * moved from source comments").
 */
function streamedPlacements(model: Model, substitute: Map<object, object>): Placement[] {
  const placements: Placement[] = [];
  encodeTo('onnx.ModelProto', model.proto, () => {}, {
    substitute,
    placed: (bytes, offset) => {
      placements.push({ bytes, offset });
      return true;
    },
  });
  return placements;
}
