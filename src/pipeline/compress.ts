// The main job: read a model, run the pipeline, write the result, and say what changed.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { prestartCopyHelpers } from '../io/copy.js';
import { readRange } from '../ir/file-range.js';
import { isExternalData } from '../ir/data.js';
import { forEachTensor } from '../ir/walk.js';
import { tensorByteLength } from '../ir/tensor.js';
import { readModel, type ReadOptions } from '../io/read.js';
import { checkOutputs, createFolders } from '../io/output-path.js';
import { InputError, UsageError } from '../errors.js';
import { memoryLimit, type MemoryLimit } from '../fs/memory.js';
import { validateModel } from '../ir/validate.js';
import type { Model } from '../ir/model.js';
import {
  OutputData,
  PrecopiedOutput,
  writeModel,
  tensorDataBytes,
  writesExternalData,
  type WriteOptions,
  type WriteResult,
  type WrittenFile,
} from '../io/write.js';
import { countParameters } from '../report/inspect.js';
import { unchangedTensorRows, type TensorRow } from '../report/tensors.js';
import type { PassSummary } from '../pass/pass.js';
import type { PipelineStep } from './registry.js';
import type { CheckInputs } from '../pass/pass.js';
import type { Progress } from '../kernels/progress.js';
import { runPipeline } from './run.js';
import { prestartKernelWorkers } from '../kernels/pool.js';
import { fillDerived } from '../kernels/half-fill.js';
import { HalfRangeExceeded } from '../kernels/half-file.js';

export interface CompressOptions {
  /** Create the output's folder when it does not exist (after the input has been read). */
  createOutputFolder?: boolean;
  /** How the input is read (lazily from which size on). */
  read?: ReadOptions;
  /** Where the passes report progress (a terminal bar from the CLI). */
  progress?: Progress;
  /** Run the passes and measure the output's size, but write nothing. */
  dryRun?: boolean;
  /** The passes to run, in order. */
  steps?: PipelineStep[];
  /** Evaluation inputs (--data, --dim, --shape): what passes that check their choice run the model on. */
  inputs?: CheckInputs;
  seed?: number;
  /**
   * Threads of the kernels, this one included (threads − 1 workers). Default: one per core for
   * models of 64 MiB or more (a second thread shortened BERT-base int4 markedly on a 2-vCPU machine),
   * one below, where starting a worker costs more than it saves (bench/RESULTS.md, §"Figures moved
   * from source comments").
   */
  threads?: number;
  write?: WriteOptions;
  /**
   * Called with the input once it is read and found valid, before any output is opened: what else
   * the run will need (evaluation data) is checked here, so that a mistake in it leaves no output.
   */
  onInputRead?: (model: Model) => void | Promise<void>;
  /** Keep the exporters' debug info on the nodes (removed by default when passes run: ir/debug-info.ts). */
  keepDebugInfo?: boolean;
  /** The memory this process may use (default: fs/memory.ts's reading of the machine and its cgroups). */
  memoryLimit?: MemoryLimit;
  /**
   * Let passes leave tensors to be computed as they are written, on every thread (default true;
   * PassContext.deferConversions). compress() turns it off itself when it must run again.
   */
  deferConversions?: boolean;
}

export interface CompressResult {
  input: { path: string; bytes: number; files: WrittenFile[] };
  output: { path: string; bytes: number; files: WrittenFile[] };
  passes: PassSummary[];
  /** Floating-point parameters of the input model. */
  inputParameters: number;
  /** Per weight of the input: bytes before and after, and the error a pass measured. */
  tensors: TensorRow[];
  /** With no pass: whether the output files are byte-identical to the input files. */
  identical?: boolean;
  /** The model as written (after the passes). */
  model: Model;
}

/**
 * Kernel threads when not asked for, by the size of the model file: one per core from 64 MiB on,
 * else one (starting a worker costs more than it saves). A model with external data has a small
 * model file: externalDataThreads decides for it once it is read.
 */
export function defaultThreads(modelFile: string): number {
  let bytes = 0;
  try {
    bytes = statSync(modelFile).size;
  } catch {
    /* readModel reports the missing file */
  }
  return bytes >= 64 << 20 ? availableParallelism() : 1;
}

/**
 * Kernel threads for the passes over a model whose tensors are in external data, when not asked for:
 * one per core where every thread may hold twice the largest tensor (its values and what a kernel
 * makes of them) in a quarter of the memory this process may use, else one, which keeps the peak
 * lowest for models that do not fit in memory (the 6.4 GB model in a 1 GiB cgroup: 0.69 GB peak on
 * one). On the 2.6 GB llama-style model two threads took int8 `check=none` from 2.8-3.2 to 1.4-2.3 s,
 * peak 0.59 -> 0.79-0.91 GB (bench/RESULTS.md, "Checks on every core, and two kernel threads for
 * external-data models").
 */
export function externalDataThreads(model: Model, memoryBytes = memoryLimit().bytes): number {
  let external = 0,
    largest = 0;
  forEachTensor(model.proto, ({ tensor }) => {
    if (!isExternalData(tensor)) return;
    const bytes = tensorByteLength(tensor);
    external += bytes;
    largest = Math.max(largest, bytes);
  });
  if (external < 64 << 20) return 1;
  const fit = Math.floor(memoryBytes / 4 / (2 * largest));
  return Math.max(1, Math.min(availableParallelism(), fit));
}

export async function compress(inputPath: string, outputPath: string, options: CompressOptions = {}): Promise<CompressResult> {
  let threads = options.threads ?? defaultThreads(inputPath);
  const quantizing = (options.steps ?? []).some((s) => s.pass.family === 'quantize');
  // Kernel workers start while the model is read.
  if (quantizing) prestartKernelWorkers(threads);
  // With no pass, the output is the input's bytes copied: the copy's helpers start while the model is read.
  else if ((options.steps ?? []).length === 0 && threads > 1 && !options.dryRun) prestartCopyHelpers(threads - 1);
  const model = readModel(inputPath, options.read);
  const steps = options.steps ?? [];
  if (options.threads === undefined && threads === 1 && steps.length > 0) {
    threads = externalDataThreads(model, (options.memoryLimit ?? memoryLimit()).bytes);
    if (quantizing) prestartKernelWorkers(threads);
  }
  // With no pass, the output's large tensors start copying now, while the model is checked.
  const precopied =
    steps.length === 0 ? PrecopiedOutput.start(model, outputPath, { threads, ...options.write, dryRun: options.dryRun }) : undefined;
  let data: OutputData | undefined;
  try {
    const inputProblems = validateModel(model.proto);
    if (inputProblems.length > 0) {
      throw new InputError(
        `${inputPath}: ${inputProblems[0]}${inputProblems.length > 1 ? ` (and ${inputProblems.length - 1} more problems)` : ''}`,
      );
    }
    await options.onInputRead?.(model);
    const inputParameters = countParameters(model);
    const baseRows = unchangedTensorRows(model);
    // An output with external data is opened now, so that the last pass's tensors are written as
    // soon as they are final and memory holds only those in flight (models larger than memory).
    if (!options.dryRun) {
      const folders = checkOutputs([{ path: outputPath, role: 'output' }], {
        force: options.write?.force ?? true,
        inputs: model.sourceFiles(),
      });
      if (options.createOutputFolder) createFolders(folders);
    }
    const external = steps.length > 0 && !options.dryRun && (writesExternalData(model, options.write) || !singleFileFits(model, options));
    data = external ? new OutputData(model, outputPath, { ...options.write, externalData: true }) : undefined;
    return await runAndWrite(model, inputPath, outputPath, options, { threads, data, precopied, inputParameters, baseRows });
  } catch (e) {
    precopied?.abort();
    data?.abort();
    // A conversion left to the writer found values its pass had assumed would fit: everything again,
    // each conversion made (and checked) in its pass. Rare: float32 weights beyond 65504.
    if (rangeExceeded(e) && options.deferConversions !== false)
      return compress(inputPath, outputPath, { ...options, deferConversions: false });
    throw e;
  }
}

function rangeExceeded(e: unknown): boolean {
  for (let x = e; x instanceof Error; x = x.cause) if (x instanceof HalfRangeExceeded) return true;
  return false;
}

/**
 * Whether a single-file output fits in memory. The passes' tensors for one .onnx file are held until
 * it is written (an external data file takes them as they are finished), so a model whose tensors
 * exceed this process's memory gets an external data file when the choice is left to onnxpress, and
 * is refused up front when --no-external-data asked for one file.
 */
function singleFileFits(model: Model, options: CompressOptions): boolean {
  const limit = options.memoryLimit ?? memoryLimit();
  const bytes = tensorDataBytes(model);
  if (bytes <= limit.bytes) return true;
  if (options.write?.externalData === false) {
    const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
    throw new UsageError(
      `a single-file output would hold up to ${gib(bytes)} of tensors in memory, more than the ${gib(limit.bytes)} this process may use (${limit.source}): write them to a data file as they are finished with --external-data`,
    );
  }
  return false;
}

async function runAndWrite(
  model: Model,
  inputPath: string,
  outputPath: string,
  options: CompressOptions,
  {
    threads,
    data,
    precopied,
    inputParameters,
    baseRows,
  }: {
    threads: number;
    data: OutputData | undefined;
    precopied: PrecopiedOutput | undefined;
    inputParameters: number;
    baseRows: TensorRow[];
  },
): Promise<CompressResult> {
  const leaveDerived = options.deferConversions !== false && !options.dryRun && (options.steps ?? []).length > 0;
  const passes = await runPipeline(model, options.steps ?? [], {
    seed: options.seed,
    threads,
    checkThreads: options.threads ?? availableParallelism(),
    progress: options.progress,
    inputs: options.inputs,
    settle: data && ((tensors) => data.settle(tensors)),
    keepDebugInfo: options.keepDebugInfo,
    deferConversions: leaveDerived,
  });
  // Every model written is checked first: a pass that broke the graph is a bug, and nothing is written.
  // (With no pass, the model is the input, checked above.)
  const outputProblems = passes.length > 0 ? validateModel(model.proto) : [];
  if (outputProblems.length > 0) {
    const names = passes.map((p) => `${p.pass} ${p.method}`).join(' → ');
    throw new Error(
      `after ${names} the model is invalid (${outputProblems[0]}); nothing was written. This is a bug in onnxpress: please report it with the command that ran`,
    );
  }
  const inputFiles = model
    .sourceFiles()
    .map((path) => ({ path: path === model.source!.path ? inputPath : path, bytes: statSync(path).size }));
  // Whether the output is byte-identical is checked as it is written: against the source in memory,
  // or, for a file read lazily, against the file itself, except for tensor bytes copied from the
  // source to the same offset they were read from (the bulk of the file, which needs no second read).
  const checkIdentity = model.source !== undefined && model.source.dataFiles.length === 0 && passes.length === 0;
  const sourceBytes = model.source?.bytes ?? 0;
  const compare = checkIdentity ? sourceComparer(model.source!.path, model.source!.buffer) : undefined;
  let identical = checkIdentity;
  let written: WriteResult;
  try {
    written = writeModel(model, outputPath, {
      threads,
      ...options.write,
      data,
      precopied,
      dryRun: options.dryRun,
      leaveDerived,
      onModelChunk: (offset, length, bytes, origin) => {
        if (!identical) return;
        const inPlace = origin !== undefined && origin.offset === offset && origin.file === model.source!.path;
        // Bytes the parallel copy moved elsewhere than where they came from are read back to compare.
        identical =
          offset + length <= sourceBytes && (inPlace || compare!.same(bytes ?? readRange(origin!.file, origin!.offset, length), offset));
      },
    });
  } finally {
    compare?.close();
  }
  if (written.derived) {
    // The writer left the derived tensors' places (fp16 weights still in the input), and the files
    // under their temporary names: filled on every thread, then committed (unless the caller defers).
    try {
      await fillDerived(written.derived, threads, options.progress);
      if (!options.write?.deferCommit) {
        data?.commit();
        written.pending!.commit();
      }
    } catch (e) {
      written.pending!.abort();
      throw e;
    }
  }
  const outputFiles = [written.model, ...(written.externalData ? [written.externalData] : [])];
  const total = (files: WrittenFile[]) => files.reduce((n, f) => n + f.bytes, 0);
  identical &&= outputFiles.length === 1 && written.model.bytes === sourceBytes;
  return {
    input: { path: inputPath, bytes: total(inputFiles), files: inputFiles },
    output: { path: written.model.path, bytes: total(outputFiles), files: outputFiles },
    passes,
    inputParameters,
    tensors: mergeTensorRows(baseRows, passes),
    identical: checkIdentity ? identical : undefined,
    model,
  };
}

/** The base rows with what each pass measured laid over them, by tensor name (later passes win). */
export function mergeTensorRows(base: TensorRow[], passes: PassSummary[]): TensorRow[] {
  const rows = new Map(base.map((r) => [r.name, { ...r }]));
  for (const summary of passes) {
    for (const change of summary.tensors) {
      const row = rows.get(change.name);
      // A later step that only re-stores a tensor (sparse storage) keeps the figures measured before it.
      const merged: TensorRow = {
        name: change.name,
        shape: change.shape.length ? change.shape : (row?.shape ?? []),
        dtypeBefore: row?.dtypeBefore ?? change.dtypeBefore,
        dtypeAfter: change.dtypeAfter,
        bytesBefore: row?.bytesBefore ?? change.bytesBefore,
        bytesAfter: change.bytesAfter,
        sparsity: change.sparsity ?? row?.sparsity,
        maxAbsError: change.maxAbsError ?? row?.maxAbsError,
        relRmsError: change.relRmsError ?? row?.relRmsError,
        note: row?.note && change.form === 'sparse_initializer' ? `${row.note}, sparse_initializer` : change.form,
      };
      rows.set(change.name, merged);
    }
  }
  return [...rows.values()];
}

/** Compares written chunks with the source: from memory when it is there, else read from the file. */
function sourceComparer(path: string, buffer: Uint8Array | undefined) {
  if (buffer)
    return {
      same: (chunk: Uint8Array, offset: number) => Buffer.compare(chunk, buffer.subarray(offset, offset + chunk.length)) === 0,
      close() {},
    };
  const fd = openSync(path, 'r');
  const scratch = Buffer.allocUnsafe(1 << 20);
  return {
    same(chunk: Uint8Array, offset: number): boolean {
      for (let at = 0; at < chunk.length; at += scratch.length) {
        const piece = chunk.subarray(at, at + scratch.length);
        const n = readSync(fd, scratch, 0, piece.length, offset + at);
        if (n !== piece.length || Buffer.compare(piece, scratch.subarray(0, n)) !== 0) return false;
      }
      return true;
    },
    close() {
      closeSync(fd);
    },
  };
}
