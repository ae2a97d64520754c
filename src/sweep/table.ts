// The sweep report: one row per combination, sorted by size, with the Pareto-optimal rows marked
// (no other row is both no larger and no less accurate, and better in one).
import { printable } from '../report/printable.js';
import type { RecipeData } from '../pipeline/recipe.js';
import type { Report } from '../report/report.js';
import { formatBytes, table } from '../report/format.js';
import { fmt } from '../report/render.js';

export const SWEEP_VERSION = 1;

export interface SweepRow {
  id: string;
  label: string;
  recipe: RecipeData;
  output: { bytes: number; gzipBytes?: number };
  sizeRatio: number;
  accuracy?: { metric: string; reference: number; compressed: number; drop: number };
  latency?: { ratio: number; meanMs: number };
  pareto: boolean;
  /** Set when the combination failed: the one-line error. */
  error?: string;
}

export interface SweepReport {
  version: number;
  command: 'sweep';
  model: string;
  input: { bytes: number };
  shard?: string;
  rows: SweepRow[];
}

export function rowFromReport(id: string, label: string, recipe: RecipeData, report: Report): SweepRow {
  const a = report.accuracy;
  return {
    id,
    label,
    recipe,
    output: { bytes: report.output.bytes, gzipBytes: report.output.gzipBytes },
    sizeRatio: report.sizeRatio,
    accuracy: a ? { metric: a.metric, reference: a.reference, compressed: a.compressed, drop: a.drop } : undefined,
    latency: report.latency ? { ratio: report.latency.ratio, meanMs: report.latency.compressed.meanMs } : undefined,
    pareto: false,
  };
}

/** Sorts by size and marks the Pareto front over (bytes, accuracy drop). */
export function finishRows(rows: SweepRow[]): SweepRow[] {
  const ok = rows.filter((r) => !r.error);
  for (const r of ok) {
    const drop = r.accuracy?.drop ?? 0;
    r.pareto = !ok.some(
      (o) =>
        o !== r &&
        o.output.bytes <= r.output.bytes &&
        (o.accuracy?.drop ?? 0) <= drop &&
        (o.output.bytes < r.output.bytes || (o.accuracy?.drop ?? 0) < drop),
    );
  }
  return [...rows].sort((a, b) => a.output.bytes - b.output.bytes || a.id.localeCompare(b.id));
}

export function renderSweep(unsafe: SweepReport): string {
  const s = printable(unsafe);
  const metric = s.rows.find((r) => r.accuracy)?.accuracy?.metric ?? 'accuracy';
  const rows = [
    ['', 'combination', 'size', 'gzip', 'ratio', metric, 'drop', 'latency'],
    ...s.rows.map((r) => [
      r.pareto ? '*' : '',
      r.label,
      r.error ? 'failed' : formatBytes(r.output.bytes),
      r.output.gzipBytes !== undefined ? formatBytes(r.output.gzipBytes) : '',
      r.error ? '' : r.sizeRatio.toFixed(3),
      r.accuracy ? fmt(r.accuracy.compressed) : (r.error ?? '–'),
      r.accuracy ? fmt(r.accuracy.drop) : '',
      r.latency ? `${fmt(r.latency.ratio, 2)}×` : '',
    ]),
  ];
  return (
    `${s.model} (${formatBytes(s.input.bytes)})${s.shard ? `, shard ${s.shard}` : ''}: ${s.rows.length} combinations, * = Pareto-optimal (size vs ${metric} drop)\n` +
    table(rows, [false, false, true, true, true, true, true, true])
  );
}

export function renderSweepMarkdown(unsafe: SweepReport): string {
  const s = printable(unsafe);
  const head = '| | combination | size | ratio | accuracy | drop | latency |\n| --- | --- | --- | --- | --- | --- | --- |';
  const body = s.rows.map(
    (r) =>
      `| ${r.pareto ? '★' : ''} | \`${r.label}\` | ${r.error ? 'failed' : formatBytes(r.output.bytes)} | ${r.error ? '' : r.sizeRatio.toFixed(3)} | ${r.accuracy ? fmt(r.accuracy.compressed) : (r.error ?? '–')} | ${r.accuracy ? fmt(r.accuracy.drop) : ''} | ${r.latency ? `${fmt(r.latency.ratio, 2)}×` : ''} |`,
  );
  return `### onnxpress sweep: \`${s.model}\`\n\n${head}\n${body.join('\n')}\n`;
}

const esc = (t: string) => t.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** One self-contained page: a size-vs-accuracy scatter plot (SVG) and the table. */
export function renderSweepHtml(unsafe: SweepReport): string {
  const s = printable(unsafe);
  const pts = s.rows.filter((r) => !r.error);
  const W = 640,
    H = 380,
    L = 70,
    B = 50,
    T = 20,
    R = 20;
  const xs = pts.map((r) => r.output.bytes),
    ys = pts.map((r) => r.accuracy?.compressed ?? 1 - r.sizeRatio);
  const [x0, x1] = [Math.min(...xs, 0), Math.max(...xs, 1)];
  const [ya, yb] = [Math.min(...ys), Math.max(...ys)];
  const [y0, y1] = ya === yb ? [ya - 1, yb + 1] : [ya - (yb - ya) * 0.1, yb + (yb - ya) * 0.1];
  const px = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (y: number) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - B - T);
  const dots = pts
    .map(
      (r, i) =>
        `<circle cx="${px(xs[i]!).toFixed(1)}" cy="${py(ys[i]!).toFixed(1)}" r="6" class="${r.pareto ? 'front' : 'dot'}"><title>${esc(`${r.label}: ${formatBytes(r.output.bytes)}, ${r.accuracy ? fmt(r.accuracy.compressed) : ''}`)}</title></circle>`,
    )
    .join('\n');
  const metric = pts.find((r) => r.accuracy)?.accuracy?.metric ?? 'accuracy';
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="size against accuracy">
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" class="axis"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" class="axis"/>
<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">output size (${esc(formatBytes(x0))} – ${esc(formatBytes(x1))})</text>
<text x="16" y="${(T + H - B) / 2}" transform="rotate(-90 16 ${(T + H - B) / 2})" text-anchor="middle">${esc(metric)} (${esc(fmt(y0))} – ${esc(fmt(y1))})</text>
${dots}
</svg>`;
  const rows = s.rows
    .map(
      (r) =>
        `<tr${r.pareto ? ' class="front"' : ''}><td>${r.pareto ? '★' : ''}</td><td>${esc(r.label)}</td><td>${r.error ? 'failed' : esc(formatBytes(r.output.bytes))}</td><td>${r.error ? '' : r.sizeRatio.toFixed(3)}</td><td>${r.accuracy ? esc(fmt(r.accuracy.compressed)) : esc(r.error ?? '–')}</td><td>${r.accuracy ? esc(fmt(r.accuracy.drop)) : ''}</td><td>${r.latency ? esc(fmt(r.latency.ratio, 2)) + '×' : ''}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>onnxpress sweep: ${esc(s.model)}</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3}tr.front td{background:#eef6ee}svg text{font:12px system-ui;fill:#333}.axis{stroke:#555}.dot{fill:#999}.front{fill:#2f855a}</style></head>
<body><h1>onnxpress sweep: ${esc(s.model)}</h1><p>${s.rows.length} combinations; ★ and green: Pareto-optimal (no other is both smaller and more accurate).</p>
${svg}
<table><thead><tr><th></th><th>combination</th><th>size</th><th>ratio</th><th>${esc(metric)}</th><th>drop</th><th>latency</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>
`;
}
