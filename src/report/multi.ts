// The report of a run over several models (compress A.onnx B.onnx … -o DIR): each model's own report,
// then the totals: bytes in and out, and what was stored once for several models.
import { REPORT_VERSION, reportJson, type Report } from './report.js';
import { renderMarkdown, renderTerminal } from './render.js';
import { formatBytes } from './format.js';
import { printable, terminalSafeJson } from './printable.js';

export interface MultiReport {
  version: number;
  command: 'compress';
  models: Report[];
  total: {
    /** Every input file (models and their data files), each once. */
    inputBytes: number;
    /** Every output file: the model files and the shared data file once. */
    outputBytes: number;
    /** Distinct tensors that two or more models read from the shared data file. */
    sharedTensors: number;
    /** Their bytes (stored once). */
    sharedBytes: number;
    /** Bytes not written again because they were already stored (for another tensor or model). */
    savedBytes: number;
    sizeRatio: number;
  };
  /** The one external data file every model reads (with a share pass: dedup, near or cluster). */
  shared?: {
    path: string;
    bytes: number;
    tensors: number;
    /** Per model, in order: its tensors that read bytes stored before (transposed: through a new Transpose node), and the bytes it reads. */
    models: { path: string; reused: number; transposed: number; savedBytes: number; readsBytes: number }[];
  };
}

export function multiReportJson(report: MultiReport): string {
  const models = report.models.map((m) => JSON.parse(reportJson(m)) as unknown);
  return terminalSafeJson(JSON.stringify({ ...report, models }, null, 2));
}

export function renderMultiTerminal(report: MultiReport): string {
  const parts = report.models.map((m) => renderTerminal(m));
  const t = report.total;
  const lines = [`all ${report.models.length} models`];
  for (const m of report.models) {
    const safe = printable({ input: m.input.path, output: m.output.path });
    lines.push(`  ${safe.input}: ${formatBytes(m.input.bytes)} → ${safe.output}: ${formatBytes(m.output.bytes)}`);
  }
  if (report.shared) {
    lines.push(
      `  shared data ${printable(report.shared.path)}: ${formatBytes(report.shared.bytes)}, ${report.shared.tensors} tensors (counted once in the total; each model's figure above counts the part it reads)`,
    );
    lines.push(
      `  stored once for several models: ${t.sharedTensors} ${t.sharedTensors === 1 ? 'tensor' : 'tensors'}, ${formatBytes(t.sharedBytes)}; ${formatBytes(t.savedBytes)} not written again`,
    );
  }
  lines.push(
    `  total: ${formatBytes(t.inputBytes)} → ${formatBytes(t.outputBytes)} (${t.sizeRatio > 0 ? (1 / t.sizeRatio).toFixed(2) : '∞'}× smaller)`,
  );
  return [...parts, lines.join('\n')].join('\n\n');
}

/** Markdown: each model's own report, then the totals as a table. */
export function renderMultiMarkdown(unsafe: MultiReport): string {
  const r = printable(unsafe);
  const t = r.total;
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = [
    '| file | input | output |',
    '| --- | ---: | ---: |',
    ...r.models.map((m) => `| \`${cell(m.output.path)}\` | ${formatBytes(m.input.bytes)} | ${formatBytes(m.output.bytes)} |`),
    ...(r.shared ? [`| \`${cell(r.shared.path)}\` (shared data, ${r.shared.tensors} tensors) | | ${formatBytes(r.shared.bytes)} |`] : []),
    `| **total** | ${formatBytes(t.inputBytes)} | ${formatBytes(t.outputBytes)} |`,
  ];
  const lines = [`### onnxpress compress: ${r.models.length} models`, '', ...rows, ''];
  if (r.shared)
    lines.push(
      `Stored once for several models: ${t.sharedTensors} tensors, ${formatBytes(t.sharedBytes)}; ${formatBytes(t.savedBytes)} not written again. Each model's output counts its model file and the part of the shared data it reads.`,
      '',
    );
  return [lines.join('\n'), ...unsafe.models.map((m) => renderMarkdown(m))].join('\n');
}

export function multiReport(models: Report[], total: Omit<MultiReport['total'], 'sizeRatio'>, shared?: MultiReport['shared']): MultiReport {
  return {
    version: REPORT_VERSION,
    command: 'compress',
    models,
    total: { ...total, sizeRatio: total.inputBytes > 0 ? total.outputBytes / total.inputBytes : 0 },
    ...(shared ? { shared } : {}),
  };
}
