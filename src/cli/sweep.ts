import type { Command } from 'commander';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { GateError, InputError, UsageError } from '../errors.js';
import { readInputText } from '../io/input-path.js';
import { writeFileAtomically } from '../io/atomic.js';
import { prepareFolder, prepareOutputs } from '../io/output-path.js';
import { readModel } from '../io/read.js';
import { terminalProgress } from './progress.js';
import { expandGrid, parseGrid, parseShard, shardJobs, shardProblems } from '../sweep/grid.js';
import { runJobs } from '../sweep/run.js';
import { finishRows, renderSweep, renderSweepHtml, renderSweepMarkdown, SWEEP_VERSION, type SweepReport } from '../sweep/table.js';
import { addEvalOptions, dataInputs, evalOptionsFrom, type ReportFlags } from './report-options.js';
import { recipeEvalOf } from './recipe-flags.js';

interface SweepFlags extends ReportFlags {
  force?: boolean;
  grid?: string;
  jobs?: string;
  plan?: boolean;
  shard?: string;
  out?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Checks the --report files against the output policy before any work (shared with merge). */
function prepareSweepReports(flags: { report?: string[]; force?: boolean }, inputs: string[]): void {
  prepareOutputs(
    (flags.report ?? []).map((path) => ({ path, role: 'report' })),
    { force: flags.force ?? false, inputs },
  );
}

/** Writes the sweep report files and prints it (shared with merge). */
export function emitSweep(report: SweepReport, flags: { report?: string[]; json?: boolean }): void {
  for (const path of flags.report ?? []) {
    const ext = extname(path).toLowerCase();
    const text =
      ext === '.json'
        ? JSON.stringify(report, null, 2) + '\n'
        : ext === '.md'
          ? renderSweepMarkdown(report)
          : ext === '.html' || ext === '.htm'
            ? renderSweepHtml(report)
            : undefined;
    if (text === undefined) throw new UsageError(`--report ${path}: the file name must end in .json, .md or .html`);
    writeFileAtomically(path, Buffer.from(text));
  }
  process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : renderSweep(report) + '\n');
}

export function registerSweep(program: Command): void {
  const cmd = program
    .command('sweep')
    .description(
      'compress a model with every combination of a grid of passes, evaluate each, and compare them (Pareto-optimal rows marked)',
    )
    .argument('<model>', 'an .onnx file')
    .requiredOption(
      '--grid <spec>',
      "axes separated by ';', choices by ',': 'quantize=int8,int4:block=32; prune=none,magnitude:sparsity=0.3' (each combination runs prune, share, quantize in that order)",
    )
    .option('--jobs <n>', 'combinations run at once, each in its own process', String(Math.max(1, availableParallelism())))
    .option('--plan', 'print the combinations as JSON jobs and run nothing')
    .option('--shard <i/n>', 'run only shard i of n (for spreading a sweep over machines; combine with onnxpress merge)')
    .option('--out <dir>', 'keep every compressed model and its report in this folder (default: a temporary folder, removed)')
    .option('--report <file>', 'write the sweep report: .json, .md or .html (a size-vs-accuracy scatter plot); repeatable', collect)
    .option('--json', 'print the sweep report as JSON')
    .option('--force', 'replace --report files that exist');
  addEvalOptions(cmd);
  cmd.action(async (model: string, flags: SweepFlags) => {
    const axes = parseGrid(flags.grid!);
    const parallel = Number(flags.jobs);
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 256)
      throw new UsageError(`--jobs must be a whole number from 1 to 256, got '${flags.jobs}'`);
    evalOptionsFrom(flags); // validates the evaluation flags now, before any job starts
    const jobs = expandGrid(axes, recipeEvalOf(flags));
    if (flags.plan) {
      process.stdout.write(JSON.stringify({ version: SWEEP_VERSION, command: 'sweep-plan', model, jobs }, null, 2) + '\n');
      return;
    }
    const shard = flags.shard ? parseShard(flags.shard) : undefined;
    const mine = shard ? shardJobs(jobs, shard) : jobs;
    prepareSweepReports(flags, [model, ...dataInputs(flags)]);
    const inputBytes = readModel(model)
      .sourceFiles()
      .reduce((n, f) => n + statSync(f).size, 0);
    const outDir = flags.out ?? mkdtempSync(join(tmpdir(), 'onnxpress-sweep-'));
    prepareFolder(outDir, 'sweep outputs');
    try {
      const rows = await runJobs(model, mine, outDir, parallel, terminalProgress());
      const report: SweepReport = {
        version: SWEEP_VERSION,
        command: 'sweep',
        model,
        input: { bytes: inputBytes },
        ...(shard ? { shard: flags.shard } : {}),
        rows: finishRows(rows),
      };
      emitSweep(report, flags);
      if (rows.some((r) => r.error)) process.exitCode = 1;
    } finally {
      if (!flags.out) rmSync(outDir, { recursive: true, force: true });
    }
  });
}

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('combine sweep reports (e.g. from --shard runs on several machines) into one table and page')
    .argument('<reports...>', 'sweep report JSON files')
    .option('--report <file>', 'write the merged report: .json, .md or .html; repeatable', collect)
    .option('--json', 'print the merged report as JSON')
    .option('--force', 'replace --report files that exist')
    .option('--strict', 'fail (exit 3) when shards are missing, given twice or of different counts, instead of warning')
    .action((paths: string[], flags: { report?: string[]; json?: boolean; force?: boolean; strict?: boolean }) => {
      prepareSweepReports(flags, paths);
      const reports = paths.map((p) => {
        let r: SweepReport;
        // Read under the input policy first, so that its refusals are not reported as bad JSON.
        const text = readInputText(p, { what: 'report' });
        try {
          r = JSON.parse(text);
        } catch (e) {
          throw new InputError(`${p}: not a sweep report (${(e as Error).message.split('\n')[0]})`);
        }
        if (typeof r !== 'object' || r === null || r.command !== 'sweep' || !Array.isArray(r.rows))
          throw new InputError(`${p}: not a sweep report`);
        return r;
      });
      const model = reports[0]!.model;
      for (const [i, r] of reports.entries())
        if (r.model !== model) throw new InputError(`${paths[i]}: a sweep of ${r.model}, not ${model}`);
      // Each shard report records its i/n: a merge of an incomplete set is not the whole sweep.
      const problems = shardProblems(reports.map((r) => (typeof r.shard === 'string' ? r.shard : undefined)));
      if (problems.length > 0) {
        const message = `the reports are not one whole sweep: ${problems.join('; ')}`;
        if (flags.strict) throw new GateError(message);
        process.stderr.write(`onnxpress: warning: ${message}\n`);
      }
      const rows = new Map<string, SweepReport['rows'][number]>();
      for (const r of reports) for (const row of r.rows) rows.set(row.id, { ...row, pareto: false });
      emitSweep({ version: SWEEP_VERSION, command: 'sweep', model, input: reports[0]!.input, rows: finishRows([...rows.values()]) }, flags);
    });
}
