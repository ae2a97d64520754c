// compress A.onnx B.onnx … -o DIR: the command line's side of several models in one run.
import { lstatSync, statSync, type Stats } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { GateError, UsageError } from '../errors.js';
import { writeFileAtomically } from '../io/atomic.js';
import { fileKind } from '../io/input-path.js';
import { prepareOutputs, type OutputTarget } from '../io/output-path.js';
import type { Model } from '../ir/model.js';
import { compressMany, DEFAULT_SHARED_LOCATION, outputsFor, sharingOf } from '../pipeline/compress-many.js';
import type { PipelineStep } from '../pipeline/registry.js';
import { buildReport } from '../report/build.js';
import { checkEvalData } from '../runtime/data.js';
import type { EvaluateOptions } from '../report/evaluate.js';
import { multiReport, multiReportJson, renderMultiMarkdown, renderMultiTerminal } from '../report/multi.js';
import { terminalProgress } from './progress.js';
import type { GateOptions, Report } from '../report/report.js';
import type { WriteOptions } from '../io/write.js';
import { typeName } from '../report/inspect.js';

export interface ManyFlags {
  output: string;
  force?: boolean;
  dryRun?: boolean;
  report?: string[];
  json?: boolean;
  gzip?: boolean;
  labels?: string;
  recipe?: string;
  keepDebugInfo?: boolean;
}

/**
 * --data for several models: NAME=DIR by a model's file name (with or without .onnx), or one DIR for
 * every model (refused when the models' inputs differ). Returns each model's data, by index.
 */
export function dataFor(
  inputs: readonly string[],
  data: string | string[] | undefined,
): { perModel: (string | undefined)[]; common?: string } {
  const specs = data === undefined ? [] : Array.isArray(data) ? data : [data];
  const perModel: (string | undefined)[] = inputs.map(() => undefined);
  let common: string | undefined;
  const names = inputs.map((p) => basename(p));
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const name = eq > 0 ? spec.slice(0, eq) : undefined;
    const index = name === undefined ? -1 : names.findIndex((n) => n === name || n.replace(/\.onnx$/i, '') === name);
    if (index < 0) {
      if (name !== undefined && !/[/\\]/.test(name)) {
        throw new UsageError(
          `--data ${spec}: no model is named '${name}' (give --data NAME=DIR with a model's file name: ${names.join(', ')})`,
        );
      }
      if (common !== undefined) throw new UsageError('--data DIR given twice: with several models, give --data NAME=DIR for each model');
      common = spec;
      continue;
    }
    if (perModel[index] !== undefined) throw new UsageError(`--data given twice for ${names[index]}`);
    perModel[index] = spec.slice(eq + 1);
  }
  if (common !== undefined && perModel.some((d) => d !== undefined))
    throw new UsageError('give --data DIR (the same data for every model) or --data NAME=DIR for each model, not both');
  if (common !== undefined) perModel.fill(common);
  return { perModel, common };
}

/** The inputs a model takes, as a comparable text (names, types and shapes). */
function signature(model: Model): string {
  const init = new Set(model.graph.initializer.map((t) => t.name));
  return JSON.stringify(model.graph.input.filter((i) => !init.has(i.name)).map((i) => [i.name, typeName(i.type)]));
}

export async function compressManyCli(
  paths: string[],
  flags: ManyFlags,
  settings: {
    pipeline: PipelineStep[];
    seed: number;
    threads: number | undefined;
    write: WriteOptions;
    evaluate: EvaluateOptions | undefined;
    data: string | string[] | undefined;
    gates: GateOptions;
    inputsRead: string[];
    /** What each model's report records as the run's recipe. */
    recipe?: Report['recipe'];
  },
): Promise<void> {
  if (flags.dryRun) throw new UsageError('--dry-run takes one model (several models are compressed together only when written)');
  for (const path of flags.report ?? []) {
    if (!['.json', '.md'].includes(extname(path).toLowerCase()))
      throw new UsageError(
        `--report ${path}: a run over several models writes its report as .json or .md (no HTML rendering of several models yet)`,
      );
  }
  if (settings.evaluate && flags.labels)
    throw new UsageError('--labels with several models is not supported yet: evaluate each model with eval');
  const outDir = flags.output;
  // -o names a folder here: an existing file is refused before anything else.
  let stat: Stats | undefined;
  try {
    stat = lstatSync(outDir);
  } catch {
    stat = undefined;
  }
  const target = stat?.isSymbolicLink()
    ? (() => {
        try {
          return statSync(outDir);
        } catch {
          return undefined;
        }
      })()
    : stat;
  if (stat && !target?.isDirectory())
    throw new UsageError(
      `${outDir}: is ${target ? fileKind(target) : 'a dangling symbolic link'}; with several models, -o names the folder they are written to`,
    );
  const outputs = outputsFor(paths, outDir);
  const { perModel, common } = dataFor(paths, settings.data);
  if (settings.evaluate && perModel.some((d) => d === undefined) && perModel.some((d) => d !== undefined)) {
    throw new UsageError(
      `--data NAME=DIR is missing for ${paths
        .filter((_, i) => perModel[i] === undefined)
        .map((p) => basename(p))
        .join(', ')}`,
    );
  }
  const sharing = sharingOf(settings.pipeline);
  const location = settings.write.location ?? DEFAULT_SHARED_LOCATION;
  if (sharing && (location === '' || location === '.' || location === '..' || /[\\/]/.test(location))) {
    throw new UsageError(`--location ${location}: the shared data file is named by a plain file name, written in the output folder`);
  }
  if (sharing && settings.write.externalData === false)
    throw new UsageError('--no-external-data: sharing tensors across several models needs their one external data file');
  const targets: OutputTarget[] = [
    ...outputs.map((path) => ({ path, role: 'output' })),
    ...(sharing ? [{ path: join(outDir, location), role: 'shared external data file', within: outDir }] : []),
    ...(flags.report ?? []).map((path) => ({ path, role: 'report' })),
  ];
  prepareOutputs(targets, {
    force: flags.force ?? false,
    inputs: [...paths, ...settings.inputsRead, ...perModel.filter((d): d is string => d !== undefined)],
  });
  const evaluateOf = (i: number): EvaluateOptions | undefined => settings.evaluate && { ...settings.evaluate, data: perModel[i] };
  let first: string | undefined;
  const result = await compressMany(paths, outDir, {
    steps: settings.pipeline,
    seed: settings.seed,
    threads: settings.threads,
    keepDebugInfo: flags.keepDebugInfo,
    progress: terminalProgress(),
    write: { ...settings.write, force: flags.force ?? false },
    onInputRead: (model, i) => {
      const sig = signature(model);
      first ??= sig;
      if (common !== undefined && sig !== first)
        throw new UsageError(
          `--data ${common} is ambiguous: ${paths[0]} and ${paths[i]} take different inputs; give --data NAME=DIR for each model`,
        );
      const evaluate = evaluateOf(i);
      if (evaluate) checkEvalData(model, evaluate);
    },
  });
  const reports = [];
  for (const [i, r] of result.models.entries()) {
    const evaluate = evaluateOf(i);
    const report = await buildReport({
      command: 'compress',
      reference: r.model,
      referenceFiles: r.input.files,
      inputParameters: r.inputParameters,
      candidatePath: r.output.path,
      candidateFiles: r.output.files,
      candidate: r.model,
      tensors: r.tensors,
      passes: r.passes,
      evaluate: evaluate && { ...evaluate, candidateWritten: r.output.path },
      gzip: flags.gzip,
      gates: settings.gates,
    });
    if (settings.recipe) report.recipe = settings.recipe;
    reports.push(report);
  }
  // Each input file once (two models may read one data file), each output once (the shared file).
  const inputBytes = new Map<string, number>();
  for (const r of result.models) for (const f of r.input.files) inputBytes.set(f.path, f.bytes);
  const outputBytes = new Map<string, number>();
  for (const r of result.models) for (const f of r.output.files) outputBytes.set(f.path, f.bytes);
  if (result.shared) outputBytes.set(join(outDir, result.shared.location), result.shared.bytes);
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const totals = result.shared?.totals;
  const report = multiReport(
    reports,
    {
      inputBytes: sum(inputBytes),
      outputBytes: sum(outputBytes),
      sharedTensors: totals?.sharedTensors ?? 0,
      sharedBytes: totals?.sharedBytes ?? 0,
      savedBytes: totals?.savedBytes ?? 0,
    },
    result.shared && {
      path: join(outDir, result.shared.location),
      bytes: result.shared.bytes,
      tensors: result.shared.totals.storedTensors,
      models: result.models.map((m) => ({
        path: m.output.path,
        reused: m.shared?.reused ?? 0,
        transposed: m.shared?.transposed ?? 0,
        savedBytes: m.shared?.savedBytes ?? 0,
        readsBytes: m.shared?.readsBytes ?? 0,
      })),
    },
  );
  const json = multiReportJson(report);
  for (const path of flags.report ?? []) {
    const text = extname(path).toLowerCase() === '.md' ? renderMultiMarkdown(report) : json + '\n';
    writeFileAtomically(path, Buffer.from(text, 'utf8'));
  }
  process.stdout.write(flags.json ? json + '\n' : renderMultiTerminal(report) + '\n');
  const failed = reports.flatMap((r, i) =>
    r.gates.filter((g) => !g.passed).map((g) => `${basename(paths[i]!)}: gate ${g.gate} failed: ${g.message}`),
  );
  if (failed.length > 0) throw new GateError(failed.join('; '));
}
