// Running a pipeline: the steps in the order the user wrote them, each a pass changing the model in
// place; a pass that throws is named in the error.
import type { Model, SettleListener } from '../ir/model.js';
import { sortGraph } from '../ir/rewrite.js';
import { forEachGraph } from '../ir/walk.js';
import { silentProgress } from '../kernels/progress.js';
import type { PassContext, PassSummary } from '../pass/pass.js';
import { storeSparse } from '../prune/store.js';
import type { PipelineStep } from './registry.js';

export class PassError extends Error {
  constructor(readonly step: PipelineStep, cause: unknown) {
    // The cause is kept: an input or usage error inside a pass keeps its exit code (errors.ts knownError).
    super(`pass ${step.spec} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'PassError';
  }
}

export interface RunOptions extends Partial<PassContext> {
  /**
   * Hears of the tensors the settle step declares final (model.settle): the writer of an external
   * data output, which writes them at once so that their bytes need not stay in memory.
   */
  settle?: SettleListener;
  /**
   * The step whose settled tensors are final (default the last). An earlier one may be, where the
   * writer is content-addressed and the steps after it only drop or merge tensors (compress-many.ts).
   */
  settleStep?: number;
}

export async function runPipeline(model: Model, steps: PipelineStep[], context: RunOptions = {}): Promise<PassSummary[]> {
  const ctx: PassContext = { progress: context.progress ?? silentProgress, seed: context.seed ?? 0, threads: context.threads ?? 1 };
  const summaries: PassSummary[] = [];
  const settleStep = context.settleStep ?? steps.length - 1;
  for (const [i, step] of steps.entries()) {
    model.listenForSettled(i === settleStep ? context.settle : undefined);
    try {
      summaries.push(await step.pass.run(model, step.options, ctx));
    } catch (e) {
      throw new PassError(step, e);
    } finally {
      model.listenForSettled(undefined);
    }
  }
  // Pruned tensors that stayed float are stored sparsely where that is smaller, once no pass can change them.
  const moved = storeSparse(model);
  if (moved.length > 0) {
    summaries.push({
      pass: 'prune', method: 'sparse-storage', options: {}, skipped: [], notes: ['pruned tensors stored as sparse_initializer (values + int64 indices) where smaller than dense'],
      bytesBefore: moved.reduce((n, m) => n + m.denseBytes, 0), bytesAfter: moved.reduce((n, m) => n + m.sparseBytes, 0),
      tensors: moved.map((m) => ({ name: m.name, shape: [], dtypeBefore: 'float32', dtypeAfter: 'float32', bytesBefore: m.denseBytes, bytesAfter: m.sparseBytes, form: 'sparse_initializer' })),
    });
  }
  // A rewritten graph is written in topological order (a graph no pass touched keeps its order).
  if (summaries.some((s) => s.tensors.length > 0)) forEachGraph(model.proto, ({ graph }) => sortGraph(graph));
  return summaries;
}
