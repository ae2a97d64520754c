import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { InputError } from '../errors.js';
import { runConformance } from '../conformance/round-trip.js';

export function registerConformance(program: Command): void {
  program
    .command('conformance')
    .description('round-trip every model.onnx under a folder (ONNX backend-test layout) and check the copies in ONNX Runtime')
    .argument('<dir>', 'folder to search for model.onnx files')
    .option('--json', 'print the results as JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      if (!existsSync(dir)) throw new InputError(`${dir}: no such folder`);
      if (!statSync(dir).isDirectory())
        throw new InputError(`${dir}: not a folder (conformance takes a folder to search for model.onnx files)`);
      const report = await runConformance(
        dir,
        opts.json
          ? undefined
          : (c) => {
              const note = c.reason
                ? `  (${c.reason})`
                : c.runtimeDiffers
                  ? '  (ONNX Runtime differs from the stored outputs, for the original too)'
                  : '';
              process.stdout.write(`${c.status.padEnd(4)}  ${c.model}${note}\n`);
            },
      );
      if (report.cases.length === 0)
        throw new InputError(`${dir}: no models under it (conformance looks for model.onnx files, as in ONNX's backend test data)`);
      if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else
        process.stdout.write(
          `${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped (ONNX Runtime cannot run the original)\n`,
        );
      if (report.failed > 0) process.exitCode = 1;
    });
}
