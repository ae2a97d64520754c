// Several models in one run (compress A.onnx B.onnx … -o DIR): every pass runs on each model in
// turn; with a share pass (dedup, near, cluster) in the pipeline, the models' large tensors go to one
// external data file, each distinct tensor once (io/shared-data.ts): the tensors a pass settles as it
// makes them (as compress() does for one model), the rest after each model's passes. Nothing is
// renamed into place until every model is written: a failure on any model leaves no output of any.
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { readModel, type ReadOptions } from '../io/read.js';
import { checkOutputs, createFolders } from '../io/output-path.js';
import { OutputData, writeModel, writesExternalData, type WriteOptions, type WrittenFile } from '../io/write.js';
import { SharedData, type SharedTotals, type StoreResult } from '../io/shared-data.js';
import type { TensorProto } from '../ir/onnx.js';
import type { Model } from '../ir/model.js';
import { validateModel } from '../ir/validate.js';
import { prestartKernelWorkers } from '../kernels/pool.js';
import { countParameters } from '../report/inspect.js';
import type { Progress } from '../kernels/progress.js';
import { unchangedTensorRows } from '../report/tensors.js';
import { mergeTensorRows, type CompressResult } from './compress.js';
import type { PipelineStep } from './registry.js';
import { runPipeline } from './run.js';

export interface CompressManyOptions {
  read?: ReadOptions;
  progress?: Progress;
  steps?: PipelineStep[];
  seed?: number;
  threads?: number;
  /** Keep the exporters' debug info on the nodes (removed by default when passes run: ir/debug-info.ts). */
  keepDebugInfo?: boolean;
  /** externalData, sizeThreshold, force; `location` names the shared data file (default shared.data). */
  write?: WriteOptions;
  /**
   * With a share pass: hand the shared data file each tensor as a pass makes it (default true), so
   * that memory holds only tensors in flight; false stores every tensor after each model's passes.
   */
  settle?: boolean;
  /** Called with each input once it is read and found valid, before its passes run. */
  onInputRead?: (model: Model, index: number) => void | Promise<void>;
}

export interface CompressManyResult {
  models: (CompressResult & { shared?: StoreResult })[];
  /** With a share pass: the one data file every model reads. */
  shared?: { path: string; location: string; bytes: number; totals: SharedTotals };
}

export const DEFAULT_SHARED_LOCATION = 'shared.data';

/** Where each input is written: DIR/its file name (two inputs of the same name are refused). */
export function outputsFor(inputs: readonly string[], outDir: string): string[] {
  const seen = new Map<string, string>();
  for (const input of inputs) {
    const name = basename(input);
    const earlier = seen.get(name);
    if (earlier !== undefined)
      throw new UsageError(
        `${earlier} and ${input} have the same file name '${name}': each model is written to the output folder under its own name`,
      );
    seen.set(name, input);
  }
  return inputs.map((input) => join(outDir, basename(input)));
}

/**
 * Whether the pipeline shares across the files: any share step (dedup, near, cluster), and whether
 * transposed copies are looked for (unless a dedup step says transpose=false).
 */
export function sharingOf(steps: readonly PipelineStep[]): { transpose: boolean } | undefined {
  if (!steps.some((s) => s.pass.family === 'share')) return undefined;
  const dedup = steps.filter((s) => s.pass.family === 'share' && s.pass.method === 'dedup');
  return { transpose: dedup.every((s) => s.options.transpose !== false) };
}

/**
 * The step whose new tensors are settled into the shared file: the last one, or the last before a
 * run of dedup steps. Dedup only drops exact copies (their bytes are stored once anyway) and turns
 * transposed copies into Transpose nodes (settle leaves those for store()), so nothing it keeps
 * changes. Settling before any other later pass could store bytes that pass replaces.
 */
export function settleStepOf(steps: readonly PipelineStep[]): number {
  let i = steps.length - 1;
  while (i > 0 && steps[i]!.pass.family === 'share' && steps[i]!.pass.method === 'dedup') i--;
  return i;
}

export async function compressMany(
  inputs: readonly string[],
  outDir: string,
  options: CompressManyOptions = {},
): Promise<CompressManyResult> {
  const steps = options.steps ?? [];
  const outputs = outputsFor(inputs, outDir);
  const sharing = sharingOf(steps);
  const write = options.write ?? {};
  const threshold = write.sizeThreshold ?? 1024;
  if (!sharing && write.location !== undefined)
    throw new UsageError(
      '--location names the one data file of several models: it needs a share pass (--share dedup, near or cluster; without one each model gets its own <model>.data)',
    );
  const threads = options.threads ?? (inputs.some((p) => sizeOf(p) >= 64 << 20) ? availableParallelism() : 1);
  if (steps.some((s) => s.pass.family === 'quantize')) prestartKernelWorkers(threads);
  const location = write.location ?? DEFAULT_SHARED_LOCATION;
  // Every output checked, and the folder made, before anything is read (the command line has done so already).
  const targets = [
    ...outputs.map((path) => ({ path, role: 'output' })),
    ...(sharing ? [{ path: join(outDir, location), role: 'shared external data file', within: outDir }] : []),
  ];
  createFolders(checkOutputs(targets, { force: write.force ?? true, inputs: [...inputs] }));
  const shared = sharing ? new SharedData(join(outDir, location), location, threshold) : undefined;
  const pending: { commit(): void; abort(): void }[] = [];
  const results: CompressManyResult['models'] = [];
  try {
    for (const [i, input] of inputs.entries()) {
      const output = outputs[i]!;
      const model = readModel(input, options.read);
      const problems = validateModel(model.proto);
      if (problems.length > 0)
        throw new InputError(`${input}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ''}`);
      // The shared data file replaces none of this model's files (its external data included).
      if (shared) checkOutputs([{ path: shared.path, role: 'shared external data file' }], { force: true, inputs: model.sourceFiles() });
      await options.onInputRead?.(model, i);
      const inputParameters = countParameters(model);
      const baseRows = unchangedTensorRows(model);
      const inputFiles: WrittenFile[] = model
        .sourceFiles()
        .map((path) => ({ path: path === model.source!.path ? input : path, bytes: statSync(path).size }));
      // Without sharing, each model has its own data file, written as the last pass settles tensors (as compress()).
      const own = !shared && steps.length > 0 && writesExternalData(model, write) ? new OutputData(model, output, write) : undefined;
      if (own) pending.push({ commit: () => own.commit(), abort: () => own.abort() });
      // With sharing, each tensor the settling step makes goes to the shared file at once (written, or found stored).
      const streamed = shared && options.settle !== false;
      if (streamed) shared.begin(sharing!);
      const settle = own ? (t: TensorProto[]) => own.settle(t) : streamed ? (t: TensorProto[]) => shared.settle(t) : undefined;
      const passes = await runPipeline(model, steps, {
        seed: options.seed,
        threads,
        progress: options.progress,
        settle,
        settleStep: shared ? settleStepOf(steps) : undefined,
        keepDebugInfo: options.keepDebugInfo,
      });
      let stored: StoreResult | undefined;
      if (shared) stored = shared.store(model, sharing!);
      const after = validateModel(model.proto);
      if (after.length > 0) {
        throw new Error(
          `after the passes (and sharing across the files) ${input} is invalid (${after[0]}); nothing was written. This is a bug in onnxpress: please report it with the command that ran`,
        );
      }
      const written = writeModel(model, output, {
        threads,
        ...write,
        location: shared ? location : write.location,
        data: shared ?? own,
        deferCommit: true,
      });
      pending.push(written.pending!);
      const outputFiles = [written.model, ...(written.externalData ? [written.externalData] : [])];
      const total = (files: WrittenFile[]) => files.reduce((n, f) => n + f.bytes, 0);
      // A model's share of the shared file: the bytes it reads from it.
      if (shared && written.externalData) written.externalData.bytes = stored!.readsBytes;
      results.push({
        input: { path: input, bytes: total(inputFiles), files: inputFiles },
        output: { path: output, bytes: total(outputFiles), files: outputFiles },
        passes,
        inputParameters,
        tensors: mergeTensorRows(baseRows, passes),
        model,
        shared: stored,
      });
    }
    // Everything is written: now the data file, then each model, are renamed into place.
    shared?.commit();
    for (const p of pending) p.commit();
  } catch (e) {
    shared?.abort();
    for (const p of pending) p.abort();
    throw e;
  }
  return { models: results, shared: shared && { path: shared.path, location, bytes: shared.bytes, totals: shared.totals() } };
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
