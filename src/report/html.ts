// The HTML report: one self-contained page (inline CSS and SVG, no script, no network) with the
// summary, the fidelity and tensor tables, and a per-layer chart of size and error.
import { printable } from './printable.js';
import type { Report } from './report.js';
import {
  budgetRows,
  fmt,
  latencyRows,
  parametersText,
  passRows,
  sensitivityTable,
  trialsTable,
  worstTensors,
  nodeTable,
  NODES_TITLE,
} from './render.js';
import { formatBytes } from './format.js';
import type { TensorRow } from './tensors.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Advance of one character of the chart's labels (11px monospace: 0.6 em), in SVG units. */
export const LABEL_CHAR_WIDTH = 6.6;
/** Longest label shown in the chart; longer names keep their start and end around an ellipsis, whole in the tooltip. */
export const LABEL_MAX_CHARS = 48;

/** A name cut to `max` characters keeping both ends (layer names differ at the start, their roles at the end). */
export function middleEllipsis(name: string, max = LABEL_MAX_CHARS): string {
  const chars = [...name];
  if (chars.length <= max) return name;
  const head = Math.ceil((max - 1) / 2),
    tail = max - 1 - head;
  return chars.slice(0, head).join('') + '…' + chars.slice(chars.length - tail).join('');
}

/** Horizontal bars per tensor: bytes before and after on the left, relative RMS error on the right. */
export function layerChart(tensors: TensorRow[], limit = 40): string {
  const rows = [...tensors].sort((a, b) => b.bytesBefore - a.bytesBefore).slice(0, limit);
  if (rows.length === 0) return '<p>No weight tensors.</p>';
  // The label column is as wide as the longest label shown: a long name is neither cut off at the
  // left edge nor overlaps the bars.
  const names = rows.map((r) => middleEllipsis(r.name));
  const label = Math.ceil(Math.max(...names.map((n) => [...n].length)) * LABEL_CHAR_WIDTH) + 16;
  const bar = 300,
    gap = 30,
    errW = 220,
    rowH = 18,
    top = 30;
  const width = label + bar + gap + errW + 20;
  const height = top + rows.length * rowH + 10;
  const maxBytes = Math.max(...rows.map((r) => r.bytesBefore), 1);
  const maxErr = Math.max(...rows.map((r) => (Number.isFinite(r.relRmsError ?? 0) ? (r.relRmsError ?? 0) : 0)), 1e-12);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="size and error per tensor">`,
  );
  parts.push(`<text x="${label}" y="16" class="h">bytes before (grey) and after (blue)</text>`);
  parts.push(`<text x="${label + bar + gap}" y="16" class="h">relative RMS error (max ${esc(fmt(maxErr))})</text>`);
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="${label - 6}" y="${y + 12}" text-anchor="end"><title>${esc(r.name)}</title>${esc(names[i]!)}</text>`);
    parts.push(
      `<rect x="${label}" y="${y + 2}" width="${(bar * r.bytesBefore) / maxBytes}" height="7" class="before"><title>${esc(`${r.name}: ${formatBytes(r.bytesBefore)} before`)}</title></rect>`,
    );
    parts.push(
      `<rect x="${label}" y="${y + 9}" width="${(bar * r.bytesAfter) / maxBytes}" height="7" class="after"><title>${esc(`${r.name}: ${formatBytes(r.bytesAfter)} after`)}</title></rect>`,
    );
    const e = r.relRmsError;
    if (e !== undefined) {
      const w = Number.isFinite(e) ? (errW * e) / maxErr : errW;
      parts.push(
        `<rect x="${label + bar + gap}" y="${y + 4}" width="${Math.max(w, e > 0 ? 1 : 0)}" height="10" class="err"><title>${esc(`${r.name}: ${fmt(e)}`)}</title></rect>`,
      );
    }
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function table(rows: string[][], header = true): string {
  const head = header ? `<thead><tr>${rows[0]!.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead>` : '';
  const body = header ? rows.slice(1) : rows;
  return `<table>${head}<tbody>${body.map((r) => `<tr>${r.map((c, i) => (!header && i === 0 ? `<th>${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`).join('')}</tbody></table>`;
}

export function renderHtml(unsafe: Report): string {
  const r = printable(unsafe);
  const summary: string[][] = [];
  summary.push(['input', `${r.input.path} (${formatBytes(r.input.bytes)})`]);
  summary.push(['output', `${r.output.path} (${formatBytes(r.output.bytes)})`]);
  summary.push([
    'size',
    `${(r.input.bytes / r.output.bytes).toFixed(2)}× smaller${r.output.gzipBytes !== undefined ? `, gzip ${formatBytes(r.output.gzipBytes)}` : ''}`,
  ]);
  summary.push(...budgetRows(r), ...passRows(r));
  summary.push(['parameters', parametersText(r)]);
  const a = r.accuracy;
  if (a)
    summary.push(['accuracy', `${a.metric} ${fmt(a.reference)} → ${fmt(a.compressed)} (drop ${fmt(a.drop)}) on ${a.data.description}`]);
  summary.push(...latencyRows(r.latency, false));
  for (const g of r.gates) summary.push(['gate', `${g.passed ? 'passed' : 'FAILED'}: ${g.message}`]);
  const fidelity = a
    ? table([
        ['output', 'max abs', 'mean abs', 'cosine', 'SNR dB'],
        ...Object.entries(a.fidelity).map(([n, f]) => [n, fmt(f.maxAbsError), fmt(f.meanAbsError), fmt(f.cosine, 6), fmt(f.snrDb, 1)]),
      ])
    : '';
  const tensors = table([
    ['tensor', 'shape', 'dtype', 'bytes', 'sparsity', 'max abs err', 'rel RMS err'],
    ...worstTensors(r.tensors, 50).map((t) => [
      t.name,
      `[${t.shape.join(', ')}]`,
      `${t.dtypeBefore} → ${t.dtypeAfter ?? '–'}`,
      `${formatBytes(t.bytesBefore)} → ${formatBytes(t.bytesAfter)}`,
      t.sparsity === undefined ? '–' : `${(100 * t.sparsity).toFixed(1)}%`,
      fmt(t.maxAbsError),
      fmt(t.relRmsError),
    ]),
  ]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>onnxpress ${esc(r.command)} report: ${esc(r.output.path)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}svg{max-width:100%;height:auto}svg text{font:11px monospace;fill:#333}svg .h{font:12px system-ui;font-weight:bold}
.before{fill:#bbb}.after{fill:#2b6cb0}.err{fill:#c53030}
</style></head><body>
<h1>onnxpress ${esc(r.command)} report</h1>
${table(summary, false)}
${a ? `<h2>Output fidelity</h2>${fidelity}` : ''}
${r.auto ? `<h2>Sensitivity (drop with only this layer at 4 bits), most sensitive first</h2>${table(sensitivityTable(r))}<h2>Trials</h2>${table(trialsTable(r))}` : ''}
<h2>Size and error per layer</h2>
${layerChart(r.tensors)}
<h2>Tensors</h2>
${tensors}
${r.nodes?.length ? `<h2>${esc(NODES_TITLE[0]!.toUpperCase() + NODES_TITLE.slice(1))}</h2>${table(nodeTable(r))}` : ''}
</body></html>
`;
}
