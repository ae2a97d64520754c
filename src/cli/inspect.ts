import { printable, terminalSafeJson } from '../report/printable.js';
import type { Command } from 'commander';
import { readModel } from '../io/read.js';
import { inspectModel, type InspectReport, type ValueSummary } from '../report/inspect.js';
import { formatBytes, formatCount, table } from '../report/format.js';
import { inspectAcross, renderAcross } from '../report/inspect-many.js';

function shapeText(v: ValueSummary): string {
  return v.shape === null ? '(unknown rank)' : `[${v.shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

export function renderInspect(unsafe: InspectReport): string {
  const r = printable(unsafe);
  const lines: string[] = [];
  lines.push(`${r.file ?? 'model'}  ${r.fileBytes !== undefined ? formatBytes(r.fileBytes) : ''}`.trimEnd());
  lines.push(`  IR ${r.irVersion}, opsets ${Object.entries(r.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}${r.producer.name ? `, made by ${r.producer.name} ${r.producer.version ?? ''}`.trimEnd() : ''}`);
  lines.push('', 'inputs');
  lines.push(table(r.inputs.map((v) => ['  ' + v.name, v.dtype, shapeText(v)])));
  lines.push('outputs');
  lines.push(table(r.outputs.map((v) => ['  ' + v.name, v.dtype, shapeText(v)])));
  lines.push('', `${r.nodes} nodes${r.subgraphs ? ` (${r.subgraphs} subgraphs)` : ''}${r.functions ? `, ${r.functions} functions` : ''}: ` +
    Object.entries(r.ops).slice(0, 12).map(([op, n]) => `${op} ${n}`).join(', ') + (Object.keys(r.ops).length > 12 ? ', …' : ''));
  lines.push('', `weights: ${formatCount(r.parameters)} floating-point parameters, ${formatBytes(r.weightBytes)} in ${r.tensors.length} tensors`);
  lines.push(table(Object.entries(r.byDtype).map(([d, e]) => ['  ' + d, `${e.tensors} tensors`, formatCount(e.elements), formatBytes(e.bytes)]), [false, true, true, true]));
  if (r.external.tensors > 0) lines.push(`external data: ${r.external.tensors} tensors, ${formatBytes(r.external.bytes)} in ${r.external.files.join(', ')}`);
  lines.push(`duplicates: ${r.duplicates.tensors} tensors repeat another (${formatBytes(r.duplicates.bytes)} in ${r.duplicates.groups} groups)`);
  if (r.largest.length > 0) {
    lines.push('', 'largest tensors');
    lines.push(table(r.largest.slice(0, 5).map((t) => ['  ' + t.name, t.dtype, `[${t.shape.join(', ')}]`, formatBytes(t.bytes), t.where]), [false, false, false, true, false]));
  }
  return lines.join('\n');
}

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
        process.stdout.write(opts.json
          ? terminalSafeJson(JSON.stringify({ models: reports, across }, null, 2)) + '\n'
          : [...reports.map(renderInspect), renderAcross(across)].join('\n\n') + '\n');
        return;
      }
      const path = paths[0]!;
      const report = inspectModel(readModel(path));
      process.stdout.write(opts.json ? terminalSafeJson(JSON.stringify(report, null, 2)) + '\n' : renderInspect(report) + '\n');
    });
}
