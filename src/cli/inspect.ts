import { terminalSafeJson } from '../report/printable.js';
import type { Command } from 'commander';
import { readModel } from '../io/read.js';
import { inspectModel, renderInspect } from '../report/inspect.js';
import { inspectAcross, renderAcross } from '../report/inspect-many.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('show what a model holds: versions, inputs and outputs, ops, weights by type, largest and duplicate tensors')
    .argument('<models...>', 'an .onnx file, or several (then also the tensors repeated across the files)')
    .option('--json', 'print the report as JSON')
    .action((paths: string[], opts: { json?: boolean }) => {
      if (paths.length > 1) {
        const models = paths.map((path) => ({ path, model: readModel(path) }));
        const reports = models.map(({ model }) => inspectModel(model));
        const across = inspectAcross(models);
        process.stdout.write(
          opts.json
            ? terminalSafeJson(JSON.stringify({ models: reports, across }, null, 2)) + '\n'
            : [...reports.map(renderInspect), renderAcross(across)].join('\n\n') + '\n',
        );
        return;
      }
      const path = paths[0]!;
      const report = inspectModel(readModel(path));
      process.stdout.write(opts.json ? terminalSafeJson(JSON.stringify(report, null, 2)) + '\n' : renderInspect(report) + '\n');
    });
}
