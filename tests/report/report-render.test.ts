// What the text reports show (issue 21 items 5 and 6): skip reasons grouped and counted, the passes'
// notes, `auto`'s own report, chart labels that fit, singular counts, stored and computed parameters,
// and the spread of the latency ratio with its warnings, in the terminal, Markdown and HTML alike.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layerChart, LABEL_CHAR_WIDTH, renderHtml } from '../../src/report/html.js';
import { passLabel, renderMarkdown, renderTerminal } from '../../src/report/render.js';
import { REPORT_VERSION, type PassRecord, type Report } from '../../src/report/report.js';
import { skipLines } from '../../src/report/skips.js';
import type { TensorRow } from '../../src/report/tensors.js';
import { digitsData } from '../digits-data.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');
const DATA = ['--data', fixture('digits', 'test_data_set_0'), '--labels', fixture('digits', 'labels.txt')];

/** Runs the CLI with --report .md and .html beside it; returns what it printed and wrote. */
function reported(name: string, args: string[]) {
  const [md, html, json] = ['md', 'html', 'json'].map((e) => join(dir, `${name}.${e}`));
  const r = cli([...args, '--report', md, '--report', html, '--report', json]);
  expect(r.code, r.stderr).toBe(0);
  return {
    stdout: r.stdout,
    md: readFileSync(md, 'utf8'),
    html: readFileSync(html, 'utf8'),
    json: JSON.parse(readFileSync(json, 'utf8')) as Report,
  };
}

const pass = (skipped: { name: string; reason: string }[], notes: string[] = []): PassRecord => ({
  pass: 'quantize',
  method: 'int8',
  options: {},
  tensorsChanged: 1,
  bytesBefore: 0,
  bytesAfter: 0,
  skipped,
  notes,
});

function report(extra: Partial<Report> = {}): Report {
  return {
    version: REPORT_VERSION,
    tool: { name: 'onnxpress', version: '0' },
    command: 'compress',
    input: { path: 'in.onnx', bytes: 2000, files: [], parameters: 10 },
    output: { path: 'out.onnx', bytes: 1000, files: [], parameters: 10 },
    sizeRatio: 0.5,
    passes: [],
    tensors: [],
    gates: [],
    ...extra,
  };
}

const latency = {
  threads: 1,
  runs: 20,
  warmup: 5,
  batch: 'b',
  reference: { meanMs: 1.21, p90Ms: 1.235 },
  compressed: { meanMs: 2.395, p90Ms: 2.423 },
  ratio: 1.98,
};

describe('skip reasons and notes', () => {
  // digits int8: conv1.weight (144 elements) is under min-size; the note says which form each op got.
  it('compress: the terminal, Markdown and HTML reports give each reason with its count and names, and the notes', () => {
    const { stdout, md, html } = reported('int8', ['compress', DIGITS, '-o', join(dir, 'int8.onnx'), '--quantize', 'int8']);
    const line = 'quantize int8: 1 tensor skipped: 144 elements, below min-size 256 (conv1.weight)';
    const note =
      'quantize int8: auto: 2 weights (2 Gemm) dynamic, computed in integers by MatMulInteger; 1 weight (1 Conv) weight-only, through DequantizeLinear';
    expect(stdout).toContain(`  skipped     ${line}\n`);
    expect(stdout).toContain(`  notes       ${note}\n`);
    expect(md).toContain(`| skipped | ${line} |`);
    expect(md).toContain(`| notes | ${note} |`);
    expect(html).toContain(`<th>skipped</th><td>${line}</td>`);
    expect(html).toContain('<th>notes</th><td>quantize int8: auto: 2 weights (2 Gemm) dynamic');
  });

  it('reasons that differ only in a number are one line with its range; other reasons a line each, most first', () => {
    const skipped = [
      ...Array.from({ length: 47 }, (_, i) => ({ name: `layer.${i}.bias`, reason: `${10 + i} elements, below min-size 256` })),
      { name: 'emb', reason: 'opset 9 has no DequantizeLinear and cannot be raised: Upsample' },
      { name: 'head', reason: 'opset 9 has no DequantizeLinear and cannot be raised: Upsample' },
    ];
    expect(skipLines(pass(skipped))).toEqual([
      'quantize int8: 47 tensors skipped: 10–56 elements, below min-size 256 (layer.0.bias, layer.1.bias, layer.2.bias and 44 more)',
      'quantize int8: 2 tensors skipped: opset 9 has no DequantizeLinear and cannot be raised: Upsample (emb, head)',
    ]);
    // A number inside a name is part of the name, not of the reason.
    expect(
      skipLines(
        pass([
          { name: 'a', reason: 'equals layer.3.weight but is a graph output' },
          { name: 'b', reason: 'equals layer.4.weight but is a graph output' },
        ]),
      ),
    ).toHaveLength(2);
  });
});

describe('auto writes its own report', () => {
  it('command auto in the JSON, a title in every format, sensitivity and trials in Markdown and HTML; --recipe of the report reproduces it', () => {
    const out = join(dir, 'auto.onnx');
    // Images 181–360 to choose on (every layer at 4 bits drops one of them), 1–180 held out.
    const data = digitsData(dir, 'swapped', [
      [180, 360],
      [0, 180],
    ]);
    const { stdout, md, html, json } = reported('auto', ['auto', DIGITS, '-o', out, '--max-accuracy-drop', '0', ...data]);
    expect(json.command).toBe('auto');
    expect(json.auto!.trials[0]!.step).toMatch(/ alone at int4$/);
    expect(stdout.split('\n')[0]).toBe(`onnxpress auto: ${DIGITS} → ${out}`);
    expect(stdout).toMatch(/ {2}budget {6}accuracy drop ≤ 0: within budget on batch 1 of 2; recipe .*auto\.onnx\.recipe\.yaml\n/);
    expect(stdout).toMatch(
      / {2}data {8}chosen on batch 1 of 2; the figures below are measured on batch 2 of 2, held out from the choice\n/,
    );
    // The drop fc2 alone at 4 bits measured (the rest of the digits' layers drop nothing), as every format shows it.
    const fc2 = json.auto!.sensitivity.find((s) => s.name === 'fc2.weight')!;
    expect(fc2.drop).toBeGreaterThan(0);
    const drop = fc2.drop.toFixed(4);
    expect(stdout).toMatch(new RegExp(`\\n {2}fc2\\.weight +${drop} +int8\\n`));
    expect(md).toMatch(/^### onnxpress auto: /);
    expect(md).toContain('| data | chosen on batch 1 of 2; the figures below are measured on batch 2 of 2, held out from the choice |');
    expect(md).toContain(`| layer | drop at 4 bits | chosen |\n| --- | --- | --- |\n| fc2.weight | ${drop} | int8 |`);
    expect(md).toContain('| trial | step | int4 | int8 | fp16 | float | bytes | drop |');
    expect(md).toContain('| every layer at int4 |');
    expect(md).toContain('| fc2.weight → int8 |');
    expect(html).toContain('<h1>onnxpress auto report</h1>');
    expect(html).toContain(`<td>fc2.weight</td><td>${drop}</td><td>int8</td>`);
    expect(html).toContain('<td>fc2.weight → int8</td>');
    // A report of auto is a recipe for compress, as a compress report is.
    const again = join(dir, 'again.onnx');
    expect(cli(['compress', DIGITS, '-o', again, '--recipe', join(dir, 'auto.json')]).code).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(again))).toBe(0);
  });
});

describe('the HTML chart', () => {
  /** The extent of every text in the chart, from its anchor and its visible characters. */
  function textsOf(svg: string) {
    const [, w, h] = /viewBox="0 0 ([\d.]+) ([\d.]+)"/.exec(svg) ?? [];
    const texts = [...svg.matchAll(/<text x="([\d.]+)" y="[\d.]+"( text-anchor="end")?( class="h")?>(.*?)<\/text>/g)].map((m) => {
      const shown = m[4]!.replace(/<title>.*?<\/title>/, '').replace(/&(amp|lt|gt|quot|#39);/g, '_');
      const width = [...shown].length * (m[3] ? 7.5 : LABEL_CHAR_WIDTH);
      const x = Number(m[1]);
      return m[2] ? { shown, from: x - width, to: x } : { shown, from: x, to: x + width };
    });
    return { width: Number(w), height: Number(h), texts };
  }

  it('a 60-character tensor name fits the viewBox (middle ellipsis), whole in its tooltip', () => {
    const long = 'model.decoder.layers.11.encoder_attn.k_proj.weight_quantized'; // 60 characters
    expect(long).toHaveLength(60);
    const rows: TensorRow[] = [long, 'fc.weight'].map((name, i) => ({
      name,
      shape: [4],
      dtypeBefore: 'float32',
      dtypeAfter: 'int8',
      bytesBefore: 1000 - i,
      bytesAfter: 250,
      relRmsError: 0.01,
    }));
    const svg = layerChart(rows);
    const { width, texts } = textsOf(svg);
    expect(width).toBeGreaterThan(0);
    expect(texts.length).toBe(4);
    for (const t of texts) {
      expect(t.from, t.shown).toBeGreaterThanOrEqual(0);
      expect(t.to, t.shown).toBeLessThanOrEqual(width);
    }
    expect(svg).toContain(`<title>${long}</title>`);
    const label = texts.find((t) => t.shown.includes('…'))!;
    expect(label.shown.startsWith('model.decoder.layers.11')).toBe(true);
    expect(label.shown.endsWith('_quantized')).toBe(true);
  });
});

describe('counts in the singular', () => {
  it('1 tensor, 1 sample, 1 run in the terminal, Markdown and HTML', () => {
    expect(passLabel(pass([]))).toBe('quantize int8 (1 tensor)');
    const { stdout, md, html } = reported('eval1', ['eval', DIGITS, '--reference', DIGITS, '--batches', '1', '--runs', '1']);
    for (const text of [stdout, md, html]) {
      expect(text).toContain('1 batch (1 sample)');
      expect(text).not.toMatch(/\b1 (samples|runs|batches|tensors|threads)\b/);
    }
    expect(stdout).toContain(', 1 run, 1 thread');
  });
});

describe('parameters after clustering', () => {
  // digits: 38346 parameters; clustering k=16 keeps 38346 as computed and stores a code for each
  // clustered value plus 16 values for each of its three codebooks.
  it('the parameters line says computed and stored parameters; the JSON has output.storedParameters', () => {
    const { stdout, md, html, json } = reported('cluster', ['compress', DIGITS, '-o', join(dir, 'cluster.onnx'), '--share', 'cluster']);
    expect(json.input.parameters).toBe(38346);
    expect(json.output.parameters).toBe(38346);
    expect(json.output.storedParameters).toBe(38346 + 3 * 16);
    const line = '38346 → 38346 as computed; stored: 38346 → 38394 (a code per value, plus 48 codebook values)';
    expect(stdout).toContain(`  parameters  ${line}\n`);
    expect(md).toContain(`| parameters | ${line} |`);
    expect(html).toContain(`<th>parameters</th><td>${line}</td>`);
    // Quantized weights store what they compute: no second count.
    const int8 = cli(['compress', DIGITS, '-o', join(dir, 'q.onnx'), '--quantize', 'int8', '--json']);
    const q = JSON.parse(int8.stdout) as Report;
    expect(q.output.parameters).toBe(38346);
    expect(q.output.storedParameters).toBeUndefined();
  });
});

describe('latency spread and warnings', () => {
  it('the ratio with its p10–p90 spread, each warning on a line of its own, in every format', () => {
    const r = report({
      latency: { ...latency, ratioP10: 1.9, ratioP90: 2.05, warnings: ['fewer than 10 runs (5): rough', 'the spread crosses 1.0'] },
    });
    const t = renderTerminal(r);
    expect(t).toContain(
      '  latency     1.210 → 2.395 ms mean, p90 1.235 → 2.423 ms (1.98×, p10–p90 1.90–2.05×), 20 runs, 1 thread\n              warning: fewer than 10 runs (5): rough\n              warning: the spread crosses 1.0',
    );
    expect(renderMarkdown(r)).toContain(
      '| latency | 1.210 → 2.395 ms (1.98×, p10–p90 1.90–2.05×) |\n|  | warning: fewer than 10 runs (5): rough |\n|  | warning: the spread crosses 1.0 |',
    );
    expect(renderHtml(r)).toContain(
      '<th>latency</th><td>1.210 → 2.395 ms (1.98×, p10–p90 1.90–2.05×)</td></tr><tr><th></th><td>warning: fewer than 10 runs (5): rough</td>',
    );
    // A report without the fields (written before them) renders as before.
    const old = report({ latency: latency as Report['latency'] });
    expect(renderTerminal(old)).toContain('(1.98×), 20 runs, 1 thread');
    expect(renderMarkdown(old)).toContain('| latency | 1.210 → 2.395 ms (1.98×) |');
    expect(renderHtml(old)).not.toContain('warning');
  });

  it('compress --eval prints the spread and the warning under the latency line', () => {
    const r = cli(['compress', DIGITS, '-o', join(dir, 'eval.onnx'), '--quantize', 'int8', '--eval', ...DATA, '--runs', '5']);
    expect(r.code, r.stderr).toBe(0);
    // (On a busy machine the spread may cross 1.0 too: that warning comes first, on a line of its own.)
    expect(r.stdout).toMatch(
      / {2}latency {5}.* ms \(\d+\.\d\d×, p10–p90 \d+\.\d\d–\d+\.\d\d×\), 5 runs, 1 thread\n( {14}warning: .*\n)? {14}warning: fewer than 10 runs/,
    );
  });
});
