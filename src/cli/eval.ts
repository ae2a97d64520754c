import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { readModel } from '../io/read.js';
import { prepareOutputs } from '../io/output-path.js';
import { buildReport } from '../report/build.js';
import { prestartOrtChild } from '../runtime/client.js';
import {
  addEvalOptions,
  addReportOptions,
  dataInputs,
  emitReport,
  reportTargets,
  evalOptionsFrom,
  gateOptionsFrom,
  latencyGateProblem,
  type ReportFlags,
} from './report-options.js';

interface EvalFlags extends ReportFlags {
  reference: string;
  force?: boolean;
}

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .description('compare a model with a reference in ONNX Runtime: accuracy, output fidelity, latency, size and per-tensor error')
    .argument('<model>', 'the model to judge (e.g. a compressed one)')
    .requiredOption('--reference <model>', 'the model to compare against (e.g. the original)')
    .option('--force', 'replace --report files that exist');
  addEvalOptions(cmd);
  addReportOptions(cmd);
  cmd.action(async (path: string, flags: EvalFlags) => {
    const reports = reportTargets(flags);
    const evaluate = evalOptionsFrom(flags);
    // ONNX Runtime's process starts while the models are read and compared.
    prestartOrtChild();
    const gates = gateOptionsFrom(flags);
    latencyGateProblem(gates, evaluate);
    const reference = readModel(flags.reference);
    const candidate = readModel(path);
    // No report may replace a file this run reads: the models, their data files, the evaluation data.
    prepareOutputs(reports, {
      force: flags.force ?? false,
      inputs: [...reference.sourceFiles(), ...candidate.sourceFiles(), ...dataInputs(flags)],
    });
    const files = (m: typeof reference) =>
      m.sourceFiles().map((p) => ({ path: p === m.source!.path ? m.source!.given : p, bytes: statSync(p).size }));
    const report = await buildReport({
      command: 'eval',
      reference,
      referenceFiles: files(reference),
      candidatePath: path,
      candidateFiles: files(candidate),
      candidate,
      evaluate,
      gzip: flags.gzip,
      gates,
    });
    emitReport(report, flags);
  });
}
