import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { compress } from '../pipeline/compress.js';
import { buildReport } from '../report/build.js';
import { unchangedTensorRows } from '../report/tensors.js';
import { addEvalOptions, addReportOptions, checkReportPaths, emitReport, evalOptionsFrom, gateOptionsFrom, type ReportFlags } from './report-options.js';

interface CompressFlags extends ReportFlags {
  output: string;
  force?: boolean;
  eval?: boolean;
  externalData?: boolean;
  externalThreshold?: string;
  location?: string;
}

export function registerCompress(program: Command): void {
  const cmd = program
    .command('compress')
    .description('apply compression passes to a model, write the result, and report size (and, with --eval, accuracy and latency)')
    .argument('<model>', 'an .onnx file')
    .requiredOption('-o, --output <file>', 'where to write the compressed model')
    .option('--force', 'overwrite the output if it exists')
    .option('--external-data', 'store tensors in an external data file next to the output')
    .option('--no-external-data', 'store every tensor inside the .onnx file')
    .option('--external-threshold <bytes>', 'smallest tensor moved to the external data file', '1024')
    .option('--location <name>', 'external data file name (default: <output>.data)')
    .option('--eval', 'run the input and the output in ONNX Runtime and report accuracy and latency');
  addEvalOptions(cmd);
  addReportOptions(cmd);
  cmd.action(async (path: string, flags: CompressFlags, command: Command) => {
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
    const result = compress(path, flags.output, { createOutputFolder: true, write: { externalData, sizeThreshold: threshold, location: flags.location } });
    const report = await buildReport({
      command: 'compress', reference: result.model, referenceFiles: result.input.files,
      candidatePath: flags.output, candidateFiles: result.output.files, candidate: result.model, tensors: unchangedTensorRows(result.model),
      passes: [], evaluate, gzip: flags.gzip, gates,
    });
    if (result.identical !== undefined) report.output.identical = result.identical;
    emitReport(report, flags);
  });
}
