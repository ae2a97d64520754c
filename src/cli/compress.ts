import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { compress, type CompressResult } from '../pipeline/compress.js';
import { formatBytes } from '../report/format.js';

interface CompressFlags {
  output: string;
  force?: boolean;
  json?: boolean;
  externalData?: boolean;
  externalThreshold?: string;
  location?: string;
}

function render(r: CompressResult): string {
  const ratio = r.input.bytes > 0 ? r.output.bytes / r.input.bytes : 1;
  const lines = [
    `${r.input.path} → ${r.output.path}`,
    `  passes     ${r.passes.length === 0 ? 'none (faithful copy)' : r.passes.map((p) => p.name).join(' → ')}`,
    `  size       ${formatBytes(r.input.bytes)} → ${formatBytes(r.output.bytes)} (${ratio.toFixed(3)}× of the input)`,
  ];
  for (const f of r.output.files) lines.push(`  wrote      ${f.path} (${formatBytes(f.bytes)})`);
  if (r.identical !== undefined) lines.push(`  identical  ${r.identical ? 'yes, byte for byte' : 'no'}`);
  return lines.join('\n');
}

export function registerCompress(program: Command): void {
  program
    .command('compress')
    .description('apply compression passes to a model and write the result (with no pass: a faithful copy)')
    .argument('<model>', 'an .onnx file')
    .requiredOption('-o, --output <file>', 'where to write the compressed model')
    .option('--force', 'overwrite the output if it exists')
    .option('--external-data', 'store tensors in an external data file next to the output')
    .option('--no-external-data', 'store every tensor inside the .onnx file')
    .option('--external-threshold <bytes>', 'smallest tensor moved to the external data file', '1024')
    .option('--location <name>', 'external data file name (default: <output>.data)')
    .option('--json', 'print the result as JSON')
    .action((path: string, flags: CompressFlags, command: Command) => {
      if (existsSync(flags.output) && !flags.force) throw new UsageError(`${flags.output}: exists; pass --force to overwrite it`);
      const threshold = Number(flags.externalThreshold);
      if (!Number.isInteger(threshold) || threshold < 0) throw new UsageError(`--external-threshold must be a whole number of bytes, got '${flags.externalThreshold}'`);
      // commander sets externalData to true by default because of --no-external-data; only an explicit flag counts.
      const source = command.getOptionValueSource('externalData');
      const externalData = source === 'cli' ? flags.externalData! : 'auto';
      const result = compress(path, flags.output, { createOutputFolder: true, write: { externalData, sizeThreshold: threshold, location: flags.location } });
      process.stdout.write(flags.json ? JSON.stringify(result, null, 2) + '\n' : render(result) + '\n');
    });
}
