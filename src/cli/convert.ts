import type { Command } from 'commander';
import { InputError, UsageError } from '../errors.js';
import { convertOpset, conversionLine, type ConversionSummary } from '../convert/convert.js';
import { MAX_OPSET } from '../convert/schemas.js';
import { prestartCopyHelpers } from '../io/copy.js';
import { readModel } from '../io/read.js';
import { checkOutputs, prepareOutputs } from '../io/output-path.js';
import { validateModel } from '../ir/validate.js';
import { writeModel } from '../io/write.js';
import { defaultThreads } from '../pipeline/compress.js';
import { printableText } from '../report/printable.js';

interface ConvertFlags {
  output?: string;
  opset?: string;
  force?: boolean;
  json?: boolean;
}

function summaryText(s: ConversionSummary, output: string): string {
  const lines = [
    `converted opset ${s.from} → ${s.to} (IR version ${s.irVersion.from}${s.irVersion.to !== s.irVersion.from ? ` → ${s.irVersion.to}` : ''}), wrote ${printableText(output)}`,
  ];
  for (const e of s.converted) lines.push(`  ${conversionLine(e)}`);
  if (s.unchanged.length > 0)
    lines.push(
      `  same meaning, new version: ${s.unchanged.map((e) => `${e.op} ${e.from}→${e.becomes ? `${e.becomes} ` : ''}${e.to} ×${e.count}`).join(', ')}`,
    );
  const notes = [`${s.nodes} nodes`, `${s.added} added`];
  if (s.otherDomain) notes.push(`${s.otherDomain} of other domains left alone`);
  if (s.functions) notes.push(`${s.functions} functions`);
  if (s.subgraphs) notes.push(`${s.subgraphs} subgraphs`);
  lines.push(`  ${notes.join(', ')}`);
  return lines.join('\n');
}

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description(
      `convert a model's default-domain (ai.onnx) opset to a newer one, up to ${MAX_OPSET}, adapting every op whose definition changed`,
    )
    .argument('[model]', 'an .onnx file')
    .option('-o, --output <file>', 'where to write the converted model')
    .option('--opset <n>', `the opset to convert to (the model's up to ${MAX_OPSET})`)
    .option('--force', 'overwrite the output if it exists')
    .option('--json', 'print what was converted as JSON')
    .action(async (path: string | undefined, flags: ConvertFlags) => {
      if (!path) throw new UsageError('convert: missing MODEL (see onnxpress convert --help)');
      if (!flags.output) throw new UsageError('convert: missing -o, --output <file>');
      if (flags.opset === undefined) throw new UsageError('convert: missing --opset <n>');
      if (!/^\d+$/.test(flags.opset) || Number(flags.opset) < 1 || Number(flags.opset) > MAX_OPSET) {
        throw new UsageError(`--opset must be a whole number from 1 to ${MAX_OPSET}, got '${flags.opset}'`);
      }
      const target = Number(flags.opset);
      prepareOutputs([{ path: flags.output, role: 'output' }], { force: flags.force ?? false, inputs: [path] });
      // Unchanged tensor bytes are copied file to file by helper threads, as compress's round trip does
      // (they start while the model is read); the converter itself never reads them.
      const threads = defaultThreads(path);
      if (threads > 1) prestartCopyHelpers(threads - 1);
      const model = readModel(path);
      const problems = validateModel(model.proto);
      if (problems.length > 0)
        throw new InputError(`${path}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ''}`);
      // The output must not be one of the model's files (its external data included).
      checkOutputs([{ path: flags.output, role: 'output' }], { force: flags.force ?? false, inputs: model.sourceFiles() });
      const summary = convertOpset(model, target);
      const written = writeModel(model, flags.output, { force: flags.force ?? false, threads });
      if (flags.json)
        process.stdout.write(
          JSON.stringify(
            {
              input: path,
              output: flags.output,
              files: [written.model.path, ...(written.externalData ? [written.externalData.path] : [])],
              ...summary,
            },
            null,
            2,
          ) + '\n',
        );
      else process.stdout.write(summaryText(summary, flags.output) + '\n');
    });
}
