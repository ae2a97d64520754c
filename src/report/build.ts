// Assembling a report from what was measured: file sizes, tensors, accuracy, latency, gates.
import type { Model } from '../ir/model.js';
import { readModel } from '../io/read.js';
import { evaluate, type EvaluateOptions } from './evaluate.js';
import { parameterCounts, type ParameterCounts } from './inspect.js';
import { checkGates, REPORT_VERSION, type GateOptions, type PassRecord, type Report } from './report.js';
import { gzipBytes, totalBytes, type FileSize } from './size.js';
import { compareTensors, type TensorRow } from './tensors.js';
import type { PassSummary } from '../pass/pass.js';
import { VERSION } from '../version.js';

export interface BuildOptions {
  command: Report['command'];
  reference: Model;
  referenceFiles: FileSize[];
  candidatePath: string;
  /** The candidate in memory, when the caller has it (saves reading it again). */
  candidate?: Model;
  /** Per-tensor rows, when the caller measured them (otherwise the two models are compared by tensor name). */
  tensors?: TensorRow[];
  candidateFiles: FileSize[];
  passes?: PassSummary[];
  /** Parameters of the input, when the caller counted them before passes changed the model. */
  inputParameters?: number;
  /** Run both models in ONNX Runtime and report accuracy and latency. */
  evaluate?: EvaluateOptions;
  /** Measure the gzip size of the output (default: when evaluating). */
  gzip?: boolean;
  gates?: GateOptions;
  dryRun?: boolean;
}

/** The parameter counts as the report writes them: stored ones only where they differ. */
function parameters(counts: ParameterCounts): { parameters: number; storedParameters?: number } {
  return { parameters: counts.effective, ...(counts.stored !== counts.effective ? { storedParameters: counts.stored } : {}) };
}

export async function buildReport(options: BuildOptions): Promise<Report> {
  const candidate = options.candidate ?? readModel(options.candidatePath);
  const dry = options.dryRun ? { dryRun: true } : {};
  const reference = options.reference;
  // The input's, counted before the passes changed the model, or counted here (eval).
  const inputCounts =
    options.inputParameters !== undefined ? { parameters: options.inputParameters } : parameters(parameterCounts(reference));
  const report: Report = {
    version: REPORT_VERSION,
    tool: { name: 'onnxpress', version: VERSION },
    command: options.command,
    input: {
      path: reference.source?.given ?? '',
      bytes: totalBytes(options.referenceFiles),
      files: options.referenceFiles,
      ...inputCounts,
    },
    output: {
      path: options.candidatePath,
      bytes: totalBytes(options.candidateFiles),
      files: options.candidateFiles,
      ...parameters(parameterCounts(candidate)),
    },
    sizeRatio: 0,
    passes: (options.passes ?? []).map(
      (s): PassRecord => ({
        pass: s.pass,
        method: s.method,
        options: s.options,
        tensorsChanged: s.tensors.length,
        bytesBefore: s.bytesBefore,
        bytesAfter: s.bytesAfter,
        skipped: s.skipped,
        notes: s.notes,
        ...(s.ranges ? { ranges: s.ranges } : {}),
      }),
    ),
    tensors: options.tensors ?? compareTensors(reference, candidate),
    gates: [],
    ...dry,
  };
  report.sizeRatio = report.output.bytes / report.input.bytes;
  if (options.gzip ?? options.evaluate !== undefined) report.output.gzipBytes = await gzipBytes(options.candidateFiles.map((f) => f.path));
  if (options.evaluate) {
    const { accuracy, latency, nodes } = await evaluate(reference.source!.path, options.candidatePath, options.evaluate, reference);
    report.accuracy = accuracy;
    report.latency = latency;
    if (nodes) report.nodes = nodes;
  }
  report.gates = checkGates(report, options.gates ?? {});
  return report;
}
