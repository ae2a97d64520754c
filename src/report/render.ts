// Terminal and Markdown renderings of a report.
import { NODE_SAMPLES } from './node-errors.js';
import { printable } from './printable.js';
import type { LatencyReport } from './evaluate.js';
import type { PassRecord, Report } from './report.js';
import type { TensorRow } from './tensors.js';
import { formatBytes, plural, table } from './format.js';
import { noteLines, skipLines } from './skips.js';

export function passLabel(p: PassRecord): string {
  return `${p.pass} ${p.method} (${plural(p.tensorsChanged, 'tensor')}${p.skipped.length ? `, ${p.skipped.length} skipped` : ''})`;
}

/** The first line of a report: what was compared with what, or what became what. */
export function headline(r: Report): string {
  if (r.command === 'eval') return `${r.output.path} against ${r.input.path}`;
  const arrow = `${r.input.path} → ${r.output.path}${r.dryRun ? ' (dry run: nothing written; sizes are those the files would have)' : ''}`;
  return r.command === 'auto' ? `onnxpress auto: ${arrow}` : arrow;
}

/** Rows of what the passes did, left alone and noted; none for eval. */
export function passRows(r: Report, code: (s: string) => string = (s) => s): string[][] {
  if (r.command === 'eval') return [];
  const rows = [['passes', r.passes.length ? r.passes.map((p) => code(passLabel(p))).join(' → ') : 'none (faithful copy)']];
  for (const [i, l] of r.passes.flatMap(skipLines).entries()) rows.push([i === 0 ? 'skipped' : '', l]);
  for (const [i, l] of noteLines(r.passes).entries()) rows.push([i === 0 ? 'notes' : '', l]);
  return rows;
}

/**
 * Parameters before and after: elements of the weights as the model computes them, and, where
 * clustering stores codes and codebooks, the elements stored (see Report.output).
 */
export function parametersText(r: Report): string {
  const computed = `${r.input.parameters} → ${r.output.parameters}`;
  if (r.input.storedParameters === undefined && r.output.storedParameters === undefined) return computed;
  const [before, after] = [r.input.storedParameters ?? r.input.parameters, r.output.storedParameters ?? r.output.parameters];
  return `${computed} as computed; stored: ${before} → ${after} (a code per value, plus ${plural(after - r.output.parameters, 'codebook value')})`;
}

/** The latency figures (and with `full`, the p90s, runs and threads); the per-run ratio's spread where measured. */
export function latencyText(l: LatencyReport, full: boolean): string {
  const spread = l.ratioP10 !== undefined && l.ratioP90 !== undefined ? `, p10–p90 ${fmt(l.ratioP10, 2)}–${fmt(l.ratioP90, 2)}×` : '';
  const ratio = `(${fmt(l.ratio, 2)}×${spread})`;
  if (!full) return `${fmt(l.reference.meanMs, 3)} → ${fmt(l.compressed.meanMs, 3)} ms ${ratio}`;
  return `${fmt(l.reference.meanMs, 3)} → ${fmt(l.compressed.meanMs, 3)} ms mean, p90 ${fmt(l.reference.p90Ms, 3)} → ${fmt(l.compressed.p90Ms, 3)} ms ${ratio}, ${plural(l.runs, 'run')}, ${plural(l.threads, 'thread')}`;
}

/** Latency rows: the figures, then each warning on a line of its own. */
export function latencyRows(l: LatencyReport | undefined, full: boolean): string[][] {
  if (!l) return [];
  return [['latency', latencyText(l, full)], ...(l.warnings ?? []).map((w) => ['', `warning: ${w}`])];
}

/** `auto`: the budget and whether the chosen model is within it. */
export function budgetRows(r: Report): string[][] {
  const a = r.auto;
  if (!a) return [];
  const budget = `accuracy drop ≤ ${a.budget}: ${a.withinBudget ? 'within budget' : 'NOT within budget (the smallest drop reached is reported)'}`;
  const data = a.data
    ? [['data', `chosen on ${a.data.chosenOn}; the figures below are measured on ${a.data.reportedOn}, held out from the choice`]]
    : [];
  const fell = (a.fellBack ?? []).map((f) => ['not 4-bit', `${f.name}: written at ${f.written} (${f.reason})`]);
  const int8 = a.int8 ? [['8-bit form', `${a.int8}: 8-bit layers computed in integers`]] : [];
  return [['budget', `${budget}${a.data ? ` on ${a.data.chosenOn}` : ''}; recipe ${a.recipe}`], ...data, ...int8, ...fell];
}

/** `auto`: the layers by sensitivity (the drop with only that layer at 4 bits) and the precision chosen for each. */
export function sensitivityTable(r: Report): string[][] {
  const a = r.auto!;
  return [['layer', 'drop at 4 bits', 'chosen'], ...a.sensitivity.map((s) => [s.name, fmt(s.drop), a.chosen[s.name] ?? '–'])];
}

/** `auto`: every trial, the first ones each layer alone at 4 bits, then from all at 4 bits upwards. */
export function trialsTable(r: Report, from = 0): string[][] {
  const a = r.auto!;
  const measured = a.sensitivity.length;
  return [
    ['trial', 'step', 'int4', 'int8', 'fp16', 'float', 'bytes', 'drop'],
    ...a.trials
      .map((t, i) => [
        String(i + 1),
        t.step ?? (i < measured ? 'sensitivity' : 'search'),
        String(t.int4),
        String(t.int8),
        String(t.fp16 ?? 0),
        String(t.float),
        formatBytes(t.bytes),
        fmt(t.drop),
      ])
      .slice(from),
  ];
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
  lines.push(
    `${metricName(a.metric)} ${fmt(a.reference)} → ${fmt(a.compressed)} (${drop}) on ${a.data.description}${a.data.labels ? `, labels ${a.data.labels}` : ''}`,
  );
  if (a.classification && a.metric === 'top1')
    lines.push(`macro F1 ${fmt(a.classification.reference.macroF1)} → ${fmt(a.classification.compressed.macroF1)}`);
  if (a.perplexity) lines.push(plural(a.perplexity.tokens, 'token'));
  return lines;
}

function tensorTable(tensors: TensorRow[]): string[][] {
  return [
    ['tensor', 'dtype', 'bytes', 'sparsity', 'max abs err', 'rel RMS err'],
    ...worstTensors(tensors).map((t) => [
      t.name,
      `${t.dtypeBefore} → ${t.dtypeAfter ?? '–'}`,
      `${formatBytes(t.bytesBefore)} → ${formatBytes(t.bytesAfter)}`,
      t.sparsity === undefined ? '–' : `${(100 * t.sparsity).toFixed(1)}%`,
      fmt(t.maxAbsError),
      fmt(t.relRmsError),
    ]),
  ];
}

/** The ten nodes that add the most error (Report.nodes is in that order). */
export function nodeTable(r: Report): string[][] {
  return [
    ['node', 'op', 'output', 'noise added', 'SNR dB', 'cosine', 'max abs err'],
    ...(r.nodes ?? [])
      .slice(0, 10)
      .map((n) => [n.name, n.opType, n.output, fmt(n.noiseAdded), fmt(n.snrDb, 1), fmt(n.cosine, 6), fmt(n.maxAbsError)]),
  ];
}

export const NODES_TITLE = `nodes adding the most error (the first batch's first ${NODE_SAMPLES} samples at most; noise added: noise-to-signal power beyond the inputs')`;

export function renderTerminal(unsafe: Report): string {
  const r = printable(unsafe);
  const out: string[] = [];
  out.push(headline(r));
  const rows: string[][] = [...budgetRows(r), ...passRows(r)];
  rows.push(['size', sizeLine(r)]);
  rows.push(['parameters', parametersText(r)]);
  if (r.output.identical !== undefined) rows.push(['identical', r.output.identical ? 'yes, byte for byte' : 'no']);
  for (const [i, l] of accuracyLines(r).entries()) rows.push([i === 0 ? 'accuracy' : '', l]);
  if (r.accuracy) {
    for (const [name, f] of Object.entries(r.accuracy.fidelity)) {
      rows.push([
        'fidelity',
        `${name}: max abs ${fmt(f.maxAbsError)}, mean abs ${fmt(f.meanAbsError)}, cosine ${fmt(f.cosine, 6)}, SNR ${fmt(f.snrDb, 1)} dB`,
      ]);
    }
  }
  rows.push(...latencyRows(r.latency, true));
  for (const g of r.gates) rows.push(['gate', `${g.passed ? 'passed' : 'FAILED'}: ${g.gate} — ${g.message}`]);
  out.push(table(rows.map((row) => ['  ' + row[0]!, row[1]!])));
  const indent = (t: string[][]) => table(t.map((row) => row.map((c, i) => (i === 0 ? '  ' + c : c))));
  if (r.auto) {
    out.push('', 'sensitivity (drop with only this layer at 4 bits), most sensitive first', indent(sensitivityTable(r)));
    // The search's trials; the sensitivity trials are the table above (all of them in the JSON, Markdown and HTML reports).
    const search = trialsTable(r, r.auto.sensitivity.length);
    if (search.length > 1) out.push('', 'trials from every layer at 4 bits up', indent(search));
  }
  if (r.tensors.length) {
    out.push('', 'tensors with the most error');
    out.push(table(tensorTable(r.tensors).map((row) => row.map((c, i) => (i === 0 ? '  ' + c : c)))));
  }
  if (r.nodes?.length) out.push('', NODES_TITLE, indent(nodeTable(r)));
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
  const rows: string[][] = [['', ''], ...budgetRows(r), ...passRows(r, (s) => `\`${s}\``)];
  rows.push(['size', sizeLine(r)]);
  rows.push(['parameters', parametersText(r)]);
  for (const [i, l] of accuracyLines(r).entries()) rows.push([i === 0 ? 'accuracy' : '', l]);
  rows.push(...latencyRows(r.latency, false));
  for (const g of r.gates) rows.push(['gate', `${g.passed ? '✅' : '❌'} ${g.gate}: ${g.message}`]);
  lines.push(mdTable(rows));
  if (r.accuracy) {
    lines.push('', '#### Output fidelity', '');
    lines.push(
      mdTable([
        ['output', 'max abs', 'mean abs', 'cosine', 'SNR dB'],
        ...Object.entries(r.accuracy.fidelity).map(([n, f]) => [
          n,
          fmt(f.maxAbsError),
          fmt(f.meanAbsError),
          fmt(f.cosine, 6),
          fmt(f.snrDb, 1),
        ]),
      ]),
    );
  }
  if (r.auto) {
    lines.push('', '#### Sensitivity (drop with only this layer at 4 bits), most sensitive first', '', mdTable(sensitivityTable(r)));
    lines.push('', '#### Trials', '', mdTable(trialsTable(r)));
  }
  if (r.tensors.length) {
    lines.push('', '#### Tensors with the most error', '');
    lines.push(mdTable(tensorTable(r.tensors)));
  }
  if (r.nodes?.length) lines.push('', `#### ${NODES_TITLE[0]!.toUpperCase()}${NODES_TITLE.slice(1)}`, '', mdTable(nodeTable(r)));
  return lines.join('\n') + '\n';
}
