// Options shared by the commands that evaluate and report (compress --eval, eval).
import { Option, type Command } from 'commander';

import { extname } from 'node:path';
import { GateError, UsageError } from '../errors.js';
import { writeFileAtomically } from '../io/atomic.js';
import type { OutputTarget } from '../io/output-path.js';
import { METRICS, type EvaluateOptions, type Metric } from '../report/evaluate.js';
import { renderHtml } from '../report/html.js';
import { renderMarkdown, renderTerminal } from '../report/render.js';
import { reportJson, type GateOptions, type Report } from '../report/report.js';
import { terminalProgress } from './progress.js';

export interface ReportFlags {
  data?: string;
  labels?: string;
  metric?: string;
  dim?: string[];
  shape?: string[];
  seed?: string;
  batches?: string;
  threads?: string;
  runs?: string;
  evalTimeout?: string;
  report?: string[];
  json?: boolean;
  gzip?: boolean;
  maxAccuracyDrop?: string;
  minSizeReduction?: string;
  minCosine?: string;
  maxLatencyRatio?: string;
  nodeErrors?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function addEvalOptions(cmd: Command): Command {
  return cmd
    .option(
      '--data <path>',
      'evaluation inputs: a folder of test_data_set_N (input_K.pb), a .npz, .npy or .pb file; default: synthesized from the input types',
    )
    .option(
      '--labels <file>',
      "labels: a text file with a line per sample (one integer, or for perplexity the sample's token ids separated by spaces, one a position), a .npy or a TensorProto .pb (in data order)",
    )
    .addOption(
      new Option(
        '--metric <name>',
        'what accuracy means here (default: top1 with labels, perplexity for [batch, seq, vocab] logits with labels, else fidelity)',
      ).choices(METRICS),
    )
    .option('--dim <name=value>', 'value of a symbolic input dimension for synthesized inputs (repeatable)', collect)
    .option(
      '--shape <input=dims>',
      'the whole shape of a synthesized input, e.g. x=1,512: for dimensions the model leaves unnamed (repeatable; not with --data)',
      collect,
    )
    .option('--seed <n>', "seed of synthesized inputs and of the passes' randomness (clustering)", '0')
    .option('--batches <n>', 'number of synthesized batches', '4')
    .option(
      '--threads <n>',
      'threads: ONNX Runtime intra-op threads when evaluating, and (compress) the threads of the quantization, magnitude-pruning, clustering and dedup kernels, this one included (default for the kernels: one per core for single-file models of 64 MiB or more, else 1)',
      '1',
    )
    .option('--runs <n>', 'timed runs per model for latency (0 to skip)', '20')
    .option(
      '--no-node-errors',
      'skip the per-node error table (every value both models write, compared on the first samples of the first batch)',
    )
    .option(
      '--eval-timeout <seconds>',
      "seconds an evaluation may spend in ONNX Runtime, loading and running both models (each of auto's trials is one evaluation); past them it is stopped and fails",
      '600',
    );
}

export function addReportOptions(cmd: Command): Command {
  return cmd
    .option('--report <file>', 'write the report to FILE: .json, .md or .html by extension (repeatable)', collect)
    .option('--json', 'print the report as JSON')
    .option('--gzip', 'measure the gzip size of the output (default with --eval)')
    .option('--no-gzip', 'do not measure the gzip size of the output')
    .option('--max-accuracy-drop <x>', 'exit 3 when accuracy drops by more than X (metric units; relative increase for perplexity)')
    .option('--min-size-reduction <r>', 'exit 3 when the output is not at least R times smaller than the input')
    .option('--min-cosine <c>', "exit 3 when any output's cosine similarity to the reference is below C")
    .option(
      '--max-latency-ratio <r>',
      "exit 3 when the compressed model's mean ONNX Runtime latency is more than R times the reference's (needs --runs ≥ 1; latency is noisy: leave a margin, and see the spread the report gives)",
    );
}

function number(flag: string, text: string | undefined, check: (n: number) => boolean, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`${flag} must be ${what}, got '${text}'`);
  return n;
}

export function evalOptionsFrom(flags: ReportFlags): EvaluateOptions {
  // Without a prototype, so that any name (even '__proto__') is a plain key.
  const dims: Record<string, number> = Object.create(null);
  for (const spec of flags.dim ?? []) {
    const m = /^([^=]+)=(\d+)$/.exec(spec);
    if (!m || Number(m[2]) < 1) throw new UsageError(`--dim takes name=value with a positive whole value, got '${spec}'`);
    dims[m[1]!] = Number(m[2]);
  }
  const shapes = shapesFrom(flags.shape);
  if (Object.keys(shapes).length > 0 && flags.data !== undefined)
    throw new UsageError('--shape sets the shapes of synthesized inputs: with --data, the data gives its own shapes');
  const whole = (n: number) => Number.isInteger(n);
  return {
    data: flags.data,
    labels: flags.labels,
    metric: flags.metric as Metric | undefined,
    dims,
    shapes,
    seed: number('--seed', flags.seed, (n) => whole(n) && n >= 0, 'a whole number ≥ 0'),
    batches: number('--batches', flags.batches, (n) => whole(n) && n >= 1 && n <= 10000, 'a whole number from 1 to 10000'),
    threads: number('--threads', flags.threads, (n) => whole(n) && n >= 1 && n <= 256, 'a whole number from 1 to 256'),
    runs: number('--runs', flags.runs, (n) => whole(n) && n >= 0 && n <= 100000, 'a whole number from 0 to 100000'),
    timeout: number('--eval-timeout', flags.evalTimeout, (n) => n > 0, 'a positive number of seconds'),
    progress: terminalProgress(),
    nodeErrors: flags.nodeErrors !== false,
  };
}

/** --shape INPUT=D0,D1,...: by input name (which may hold '='; the dims follow the last one). */
export function shapesFrom(specs: string[] = []): Record<string, number[]> {
  const shapes: Record<string, number[]> = Object.create(null);
  for (const spec of specs) {
    const m = /^(.+)=(\d+(?:,\d+)*)$/.exec(spec);
    const dims = m ? m[2]!.split(',').map(Number) : [];
    if (!m || dims.some((d) => d < 1 || !Number.isSafeInteger(d)))
      throw new UsageError(`--shape takes INPUT=D0,D1,... with positive whole dimensions, got '${spec}'`);
    if (Object.hasOwn(shapes, m[1]!)) throw new UsageError(`--shape given twice for input '${m[1]}'`);
    shapes[m[1]!] = dims;
  }
  return shapes;
}

export function gateOptionsFrom(flags: ReportFlags): GateOptions {
  return {
    maxAccuracyDrop: number('--max-accuracy-drop', flags.maxAccuracyDrop, (n) => n >= 0, 'a number ≥ 0'),
    minSizeReduction: number('--min-size-reduction', flags.minSizeReduction, (n) => n > 0, 'a number > 0'),
    minCosine: number('--min-cosine', flags.minCosine, (n) => n >= -1 && n <= 1, 'a number from -1 to 1'),
    maxLatencyRatio: number('--max-latency-ratio', flags.maxLatencyRatio, (n) => n > 0, 'a number > 0'),
  };
}

/** --max-latency-ratio compares timed runs: with --runs 0 there are none (a usage error before anything is read). */
export function latencyGateProblem(gates: GateOptions, evaluate: EvaluateOptions | undefined): void {
  if (gates.maxLatencyRatio !== undefined && evaluate?.runs === 0)
    throw new UsageError('--max-latency-ratio needs timed runs: --runs must be at least 1');
}

/** The --report files as outputs, refused where the extension names no format. */
export function reportTargets(flags: ReportFlags): OutputTarget[] {
  for (const path of flags.report ?? []) {
    if (!['.json', '.md', '.html', '.htm'].includes(extname(path).toLowerCase())) {
      throw new UsageError(`--report ${path}: the file name must end in .json, .md or .html`);
    }
  }
  return (flags.report ?? []).map((path) => ({ path, role: 'report' }));
}

/** Files a command with these flags reads besides its models: no output may replace them. */
export function dataInputs(flags: ReportFlags): string[] {
  return [flags.data, flags.labels].filter((p): p is string => p !== undefined);
}

/** Writes the report files, prints the report, and turns a failed gate into exit code 3. */
export function emitReport(report: Report, flags: ReportFlags): void {
  for (const path of flags.report ?? []) {
    const ext = extname(path).toLowerCase();
    const text = ext === '.json' ? reportJson(report) + '\n' : ext === '.md' ? renderMarkdown(report) : renderHtml(report);
    writeFileAtomically(path, Buffer.from(text, 'utf8'));
  }
  process.stdout.write(flags.json ? reportJson(report) + '\n' : renderTerminal(report) + '\n');
  const failed = report.gates.filter((g) => !g.passed);
  if (failed.length > 0) throw new GateError(failed.map((g) => `gate ${g.gate} failed: ${g.message}`).join('; '));
}
