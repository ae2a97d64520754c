// Terminal and Markdown renderings of a report.
import { printable } from './printable.js';
import type { PassRecord, Report } from './report.js';
import type { TensorRow } from './tensors.js';
import { formatBytes, table } from './format.js';

export function passLabel(p: PassRecord): string {
  return `${p.pass} ${p.method} (${p.tensorsChanged} tensors${p.skipped.length ? `, ${p.skipped.length} skipped` : ''})`;
}

export function fmt(v: number | undefined, digits = 4): string {
  if (v === undefined) return '–';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return v.toExponential(2);
  return v.toFixed(digits);
}

function metricName(metric: string): string {
  return metric === 'top1' ? 'top-1' : metric === 'f1' ? 'macro F1' : metric === 'fidelity' ? 'lowest output cosine' : metric;
}

/** The tensors with the most error, then the largest when none has error. */
export function worstTensors(tensors: TensorRow[], n = 5): TensorRow[] {
  return [...tensors].sort((a, b) => (b.relRmsError ?? -1) - (a.relRmsError ?? -1) || b.bytesBefore - a.bytesBefore).slice(0, n);
}

function sizeLine(r: Report): string {
  const reduction = r.input.bytes / r.output.bytes;
  const gz = r.output.gzipBytes !== undefined ? `; gzip ${formatBytes(r.output.gzipBytes)}` : '';
  return `${formatBytes(r.input.bytes)} → ${formatBytes(r.output.bytes)} (${reduction.toFixed(2)}× smaller, ratio ${r.sizeRatio.toFixed(3)})${gz}`;
}

function accuracyLines(r: Report): string[] {
  const a = r.accuracy;
  if (!a) return [];
  const lines: string[] = [];
  // A perplexity that fell shows as −0.08 %, not +-0.08 %.
  const drop = a.metric === 'perplexity' ? `${a.drop < 0 ? '−' : '+'}${fmt(100 * Math.abs(a.drop), 2)}%` : `drop ${fmt(a.drop)}`;
  lines.push(`${metricName(a.metric)} ${fmt(a.reference)} → ${fmt(a.compressed)} (${drop}) on ${a.data.description}${a.data.labels ? `, labels ${a.data.labels}` : ''}`);
  if (a.classification && a.metric === 'top1') lines.push(`macro F1 ${fmt(a.classification.reference.macroF1)} → ${fmt(a.classification.compressed.macroF1)}`);
  if (a.perplexity) lines.push(`${a.perplexity.tokens} tokens`);
  return lines;
}

function tensorTable(tensors: TensorRow[]): string[][] {
  return [['tensor', 'dtype', 'bytes', 'sparsity', 'max abs err', 'rel RMS err'],
    ...worstTensors(tensors).map((t) => [
      t.name, `${t.dtypeBefore} → ${t.dtypeAfter ?? '–'}`, `${formatBytes(t.bytesBefore)} → ${formatBytes(t.bytesAfter)}`,
      t.sparsity === undefined ? '–' : `${(100 * t.sparsity).toFixed(1)}%`, fmt(t.maxAbsError), fmt(t.relRmsError),
    ])];
}

export function renderTerminal(unsafe: Report): string {
  const r = printable(unsafe);
  const out: string[] = [];
  out.push(r.command === 'eval' ? `${r.output.path} against ${r.input.path}` : `${r.input.path} → ${r.output.path}${r.dryRun ? ' (dry run: nothing written; sizes are those the files would have)' : ''}`);
  const rows: string[][] = [];
  if (r.command === 'compress') rows.push(['passes', r.passes.length ? r.passes.map(passLabel).join(' → ') : 'none (faithful copy)']);
  rows.push(['size', sizeLine(r)]);
  rows.push(['parameters', `${r.input.parameters} → ${r.output.parameters}`]);
  if (r.output.identical !== undefined) rows.push(['identical', r.output.identical ? 'yes, byte for byte' : 'no']);
  accuracyLines(r).forEach((l, i) => rows.push([i === 0 ? 'accuracy' : '', l]));
  if (r.accuracy) {
    for (const [name, f] of Object.entries(r.accuracy.fidelity)) {
      rows.push(['fidelity', `${name}: max abs ${fmt(f.maxAbsError)}, mean abs ${fmt(f.meanAbsError)}, cosine ${fmt(f.cosine, 6)}, SNR ${fmt(f.snrDb, 1)} dB`]);
    }
  }
  if (r.latency) {
    const l = r.latency;
    rows.push(['latency', `${fmt(l.reference.meanMs, 3)} → ${fmt(l.compressed.meanMs, 3)} ms mean, p90 ${fmt(l.reference.p90Ms, 3)} → ${fmt(l.compressed.p90Ms, 3)} ms (${fmt(l.ratio, 2)}×), ${l.runs} runs, ${l.threads} thread${l.threads === 1 ? '' : 's'}`]);
  }
  for (const g of r.gates) rows.push(['gate', `${g.passed ? 'passed' : 'FAILED'}: ${g.gate} — ${g.message}`]);
  out.push(table(rows.map((row) => ['  ' + row[0]!, row[1]!])));
  if (r.tensors.length) {
    out.push('', 'tensors with the most error');
    out.push(table(tensorTable(r.tensors).map((row) => row.map((c, i) => (i === 0 ? '  ' + c : c)))));
  }
  return out.join('\n');
}

function mdTable(rows: string[][]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| ' + rows[0]!.map(esc).join(' | ') + ' |',
    '| ' + rows[0]!.map(() => '---').join(' | ') + ' |',
    ...rows.slice(1).map((r) => '| ' + r.map(esc).join(' | ') + ' |'),
  ].join('\n');
}

export function renderMarkdown(unsafe: Report): string {
  const r = printable(unsafe);
  const lines: string[] = [];
  lines.push(`### onnxpress ${r.command}: \`${r.input.path}\` → \`${r.output.path}\``, '');
  const rows: string[][] = [['', '']];
  if (r.command === 'compress') rows.push(['passes', r.passes.length ? r.passes.map((p) => `\`${passLabel(p)}\``).join(' → ') : 'none (faithful copy)']);
  rows.push(['size', sizeLine(r)]);
  accuracyLines(r).forEach((l, i) => rows.push([i === 0 ? 'accuracy' : '', l]));
  if (r.latency) rows.push(['latency', `${fmt(r.latency.reference.meanMs, 3)} → ${fmt(r.latency.compressed.meanMs, 3)} ms (${fmt(r.latency.ratio, 2)}×)`]);
  for (const g of r.gates) rows.push(['gate', `${g.passed ? '✅' : '❌'} ${g.gate}: ${g.message}`]);
  lines.push(mdTable(rows));
  if (r.accuracy) {
    lines.push('', '#### Output fidelity', '');
    lines.push(mdTable([['output', 'max abs', 'mean abs', 'cosine', 'SNR dB'],
      ...Object.entries(r.accuracy.fidelity).map(([n, f]) => [n, fmt(f.maxAbsError), fmt(f.meanAbsError), fmt(f.cosine, 6), fmt(f.snrDb, 1)])]));
  }
  if (r.tensors.length) {
    lines.push('', '#### Tensors with the most error', '');
    lines.push(mdTable(tensorTable(r.tensors)));
  }
  return lines.join('\n') + '\n';
}
