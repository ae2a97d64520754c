import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { CheckInputs } from '../pass/pass.js';
import { compress } from '../pipeline/compress.js';
import { prepareOutputs } from '../io/output-path.js';
import { listPasses, parseStep, type PipelineStep } from '../pipeline/registry.js';
import { loadRecipe, recipeData } from '../pipeline/recipe.js';
import { mergeRecipeFlags, recipeEvalOf, recipeGatesOf } from './recipe-flags.js';
import { buildReport } from '../report/build.js';
import { checkEvalData } from '../runtime/data.js';
import { prestartOrtChild } from '../runtime/client.js';
import { terminalProgress } from './progress.js';
import { compressManyCli } from './compress-many.js';
import {
  addEvalOptions,
  addReportOptions,
  dataInputs,
  emitReport,
  reportTargets,
  evalOptionsFrom,
  gateOptionsFrom,
  latencyGateProblem,
  type ReportFlags,
} from './report-options.js';

interface CompressFlags extends ReportFlags {
  strict?: boolean;
  recipe?: string;
  dryRun?: boolean;
  output?: string;
  force?: boolean;
  eval?: boolean;
  externalData?: boolean;
  externalThreshold?: string;
  location?: string;
  listPasses?: boolean;
  seed?: string;
  keepDebugInfo?: boolean;
}

/** --threads for the kernels, checked whether or not the run evaluates. */
function kernelThreads(text: string | undefined): number {
  const n = Number(text);
  if (!/^\d+$/.test(text ?? '') || n < 1 || n > 256) throw new UsageError(`--threads must be a whole number from 1 to 256, got '${text}'`);
  return n;
}

export function registerCompress(program: Command): void {
  // Pass flags of every family land in one list, in the order written: the order the passes run.
  const steps: { family: string; spec: string }[] = [];
  const step = (family: string) => (spec: string) => {
    steps.push({ family, spec });
    return spec;
  };
  const cmd = program
    .command('compress')
    .description(
      'apply compression passes to a model, in the order given, write the result, and report size (and, with --eval, accuracy and latency)',
    )
    .argument(
      '[models...]',
      'an .onnx file, or several (then -o names a folder, and a share pass stores their large tensors once, across them)',
    )
    .option('-o, --output <file>', 'where to write the compressed model (with several models: the folder they are written to)')
    .option(
      '--quantize <spec>',
      'a quantization pass, e.g. int8 or int8:granularity=tensor,symmetric=false (see --list-passes)',
      step('quantize'),
    )
    .option('--prune <spec>', 'a pruning pass (see --list-passes)', step('prune'))
    .option('--share <spec>', 'a parameter-sharing pass (see --list-passes)', step('share'))
    .option('--recipe <file>', 'the pipeline (and evaluation settings and gates) from a YAML or JSON recipe, or from a report JSON')
    .option('--dry-run', 'validate, run the passes in memory and report what they would change and the output size, writing nothing')
    .option('--list-passes', 'print every pass with its options and defaults')
    .option('--force', 'replace the output, its external data file and --report files where they exist (never an input)')
    .option(
      '--external-data',
      'store tensors in an external data file next to the output (default: when the input has one, or the output would pass 2 GiB or not fit in memory)',
    )
    .option('--no-external-data', 'store every tensor inside the .onnx file (refused when its tensors would not fit in memory)')
    .option('--external-threshold <bytes>', 'smallest tensor moved to the external data file', '1024')
    .option('--location <name>', 'external data file name (default: <output>.data)')
    .option(
      '--keep-debug-info',
      "keep what exporters leave on the nodes for debugging (metadata_props such as torch.onnx's stack traces, doc strings), which a run with passes removes",
    )
    .option('--eval', 'run the input and the output in ONNX Runtime and report accuracy and latency')
    .option(
      '--strict',
      'exit 3 (the output and report still written) when a pass changed nothing or left tensors alone for a reason other than min-size/include/exclude',
    );
  addEvalOptions(cmd);
  addReportOptions(cmd);
  // --data may be given once per model when there are several (--data NAME=DIR).
  cmd.options
    .find((o) => o.long === '--data')
    ?.argParser((value: string, previous: string | string[] | undefined) => (previous === undefined ? value : [previous, value].flat()));
  cmd.action(async (paths: string[], flags: CompressFlags, command: Command) => {
    const path: string | undefined = paths[0];
    const several = paths.length > 1;
    const dataGiven = flags.data as string | string[] | undefined;
    if (Array.isArray(dataGiven) && !several)
      throw new UsageError('--data given more than once (several --data NAME=DIR are for several models)');
    if (several) flags.data = undefined;
    if (flags.listPasses) {
      process.stdout.write(listPasses() + '\n');
      return;
    }
    if (!path) throw new UsageError('compress: missing MODEL (see onnxpress compress --help)');
    if (!flags.output) throw new UsageError('compress: missing -o, --output <file>');
    // The whole pipeline (flags or recipe) is validated before anything is read or written.
    const recipe = flags.recipe ? loadRecipe(flags.recipe) : undefined;
    if (recipe && steps.length > 0 && recipe.passes.length > 0)
      throw new UsageError('give the passes on the command line or in the recipe, not both');
    const pipeline: PipelineStep[] = recipe && recipe.passes.length > 0 ? recipe.passes : steps.map((s) => parseStep(s.family, s.spec));
    const threshold = Number(flags.externalThreshold);
    if (!Number.isInteger(threshold) || threshold < 0)
      throw new UsageError(`--external-threshold must be a whole number of bytes, got '${flags.externalThreshold}'`);
    const threads = command.getOptionValueSource('threads') === 'cli' ? kernelThreads(flags.threads) : undefined;
    // Flags given on the command line win over the recipe's settings.
    const fromCli = (key: string) => command.getOptionValueSource(key) === 'cli';
    const merged = mergeRecipeFlags(flags, recipe, fromCli);
    const gates = { ...gateOptionsFrom(merged), strict: flags.strict };
    const evaluating = (flags.eval || recipe?.eval !== undefined) && !flags.dryRun;
    if (!evaluating && (gates.maxAccuracyDrop !== undefined || gates.minCosine !== undefined || gates.maxLatencyRatio !== undefined)) {
      throw new UsageError('--max-accuracy-drop, --min-cosine and --max-latency-ratio need --eval');
    }
    const evaluate = evaluating ? evalOptionsFrom(merged) : undefined;
    latencyGateProblem(gates, evaluate);
    // ONNX Runtime's process starts while the model is read and compressed.
    if (evaluate) prestartOrtChild();
    // The passes' seed: --seed, else the recipe's, else its evaluation seed, else 0.
    const seed = fromCli('seed') ? Number(flags.seed) : (recipe?.seed ?? Number(merged.seed ?? 0));
    if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be a whole number ≥ 0, got '${flags.seed}'`);
    // commander sets externalData to true by default because of --no-external-data; only an explicit flag counts.
    const externalData = fromCli('externalData') ? flags.externalData! : 'auto';
    if (several) {
      return compressManyCli(
        paths,
        { ...flags, output: flags.output },
        {
          pipeline,
          seed,
          threads,
          evaluate,
          data: dataGiven,
          gates,
          recipe: recipeData({ passes: pipeline, seed, eval: evaluate ? recipeEvalOf(merged) : undefined, gates: recipeGatesOf(gates) }),
          write: { externalData, sizeThreshold: threshold, location: flags.location },
          inputsRead: [...(flags.recipe ? [flags.recipe] : []), ...(flags.labels ? [flags.labels] : [])],
        },
      );
    }
    // Every file this run writes is checked (and its folder created) before the model is read,
    // once every flag has been checked.
    const outputs = [...(flags.dryRun ? [] : [{ path: flags.output, role: 'output' }]), ...reportTargets(flags)];
    prepareOutputs(outputs, { force: flags.force ?? false, inputs: [path, ...(flags.recipe ? [flags.recipe] : []), ...dataInputs(flags)] });
    const result = await compress(path, flags.output, {
      // Kernel threads: --threads, else compress() picks by the model's size.
      createOutputFolder: true,
      dryRun: flags.dryRun,
      steps: pipeline,
      seed,
      progress: terminalProgress(),
      threads,
      keepDebugInfo: flags.keepDebugInfo,
      write: { externalData, sizeThreshold: threshold, location: flags.location, force: flags.force ?? false },
      // The evaluation settings are checked (the data and labels given read) before anything is written: a mistake in them leaves no output.
      onInputRead: evaluate ? (model) => checkEvalData(model, evaluate) : undefined,
      // --data (and --dim/--shape) are also what int8's and fp16's checks run the model on.
      inputs: checkInputsOf(merged),
    });
    const report = await buildReport({
      command: 'compress',
      reference: result.model,
      referenceFiles: result.input.files,
      inputParameters: result.inputParameters,
      candidatePath: flags.output,
      candidateFiles: result.output.files,
      candidate: result.model,
      tensors: result.tensors,
      // An evaluation that fails after the output is written says that it was written.
      passes: result.passes,
      evaluate: evaluate && { ...evaluate, candidateWritten: flags.output },
      gzip: flags.dryRun ? false : flags.gzip,
      gates,
      dryRun: flags.dryRun,
    });
    if (result.identical !== undefined && !flags.dryRun) report.output.identical = result.identical;
    report.recipe = recipeData({ passes: pipeline, seed, eval: evaluate ? recipeEvalOf(merged) : undefined, gates: recipeGatesOf(gates) });
    emitReport(report, flags);
  });
}

/** --data, --dim and --shape as the passes' checks take them (with or without --eval). */
function checkInputsOf(flags: Parameters<typeof evalOptionsFrom>[0]): CheckInputs {
  const { data, dims, shapes } = evalOptionsFrom(flags);
  return { data: typeof data === 'string' ? data : undefined, dims, shapes };
}
