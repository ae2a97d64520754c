import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { compress } from '../pipeline/compress.js';
import { listPasses, parseStep, type PipelineStep } from '../pipeline/registry.js';
import { buildReport } from '../report/build.js';
import { addEvalOptions, addReportOptions, checkReportPaths, emitReport, evalOptionsFrom, gateOptionsFrom, type ReportFlags } from './report-options.js';

interface CompressFlags extends ReportFlags {
  output?: string;
  force?: boolean;
  eval?: boolean;
  externalData?: boolean;
  externalThreshold?: string;
  location?: string;
  listPasses?: boolean;
  seed?: string;
}

export function registerCompress(program: Command): void {
  // Pass flags of every family land in one list, in the order written: the order the passes run.
  const steps: { family: string; spec: string }[] = [];
  const step = (family: string) => (spec: string) => { steps.push({ family, spec }); return spec; };
  const cmd = program
    .command('compress')
    .description('apply compression passes to a model, in the order given, write the result, and report size (and, with --eval, accuracy and latency)')
    .argument('[model]', 'an .onnx file')
    .option('-o, --output <file>', 'where to write the compressed model')
    .option('--quantize <spec>', 'a quantization pass, e.g. int8 or int8:granularity=tensor,symmetric=false (see --list-passes)', step('quantize'))
    .option('--prune <spec>', 'a pruning pass (see --list-passes)', step('prune'))
    .option('--share <spec>', 'a parameter-sharing pass (see --list-passes)', step('share'))
    .option('--list-passes', 'print every pass with its options and defaults')
    .option('--force', 'overwrite the output if it exists')
    .option('--external-data', 'store tensors in an external data file next to the output')
    .option('--no-external-data', 'store every tensor inside the .onnx file')
    .option('--external-threshold <bytes>', 'smallest tensor moved to the external data file', '1024')
    .option('--location <name>', 'external data file name (default: <output>.data)')
    .option('--eval', 'run the input and the output in ONNX Runtime and report accuracy and latency');
  addEvalOptions(cmd);
  addReportOptions(cmd);
  cmd.action(async (path: string | undefined, flags: CompressFlags, command: Command) => {
    if (flags.listPasses) {
      process.stdout.write(listPasses() + '\n');
      return;
    }
    if (!path) throw new UsageError('compress: missing MODEL (see onnxpress compress --help)');
    if (!flags.output) throw new UsageError("compress: missing -o, --output <file>");
    // The whole pipeline is validated before anything is read or written.
    const pipeline: PipelineStep[] = steps.map((s) => parseStep(s.family, s.spec));
    if (existsSync(flags.output) && !flags.force) throw new UsageError(`${flags.output}: exists; pass --force to overwrite it`);
    const threshold = Number(flags.externalThreshold);
    if (!Number.isInteger(threshold) || threshold < 0) throw new UsageError(`--external-threshold must be a whole number of bytes, got '${flags.externalThreshold}'`);
    checkReportPaths(flags);
    const gates = gateOptionsFrom(flags);
    if (!flags.eval && (gates.maxAccuracyDrop !== undefined || gates.minCosine !== undefined)) {
      throw new UsageError('--max-accuracy-drop and --min-cosine need --eval');
    }
    const evaluate = flags.eval ? evalOptionsFrom(flags) : undefined;
    // commander sets externalData to true by default because of --no-external-data; only an explicit flag counts.
    const externalData = command.getOptionValueSource('externalData') === 'cli' ? flags.externalData! : 'auto';
    const result = await compress(path, flags.output, {
      createOutputFolder: true, steps: pipeline, seed: evaluate?.seed ?? 0, threads: evaluate?.threads ?? 1,
      write: { externalData, sizeThreshold: threshold, location: flags.location },
    });
    const report = await buildReport({
      command: 'compress', reference: result.model, referenceFiles: result.input.files, inputParameters: result.inputParameters,
      candidatePath: flags.output, candidateFiles: result.output.files, candidate: result.model, tensors: result.tensors,
      passes: result.passes, evaluate, gzip: flags.gzip, gates,
    });
    if (result.identical !== undefined) report.output.identical = result.identical;
    emitReport(report, flags);
  });
}
