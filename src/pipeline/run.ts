// Running a pipeline: the steps in the order the user wrote them, each a pass changing the model in
// place; a pass that throws is named in the error.
import type { Model } from '../ir/model.js';
import { sortGraph } from '../ir/rewrite.js';
import { forEachGraph } from '../ir/walk.js';
import { silentProgress } from '../report/progress.js';
import type { PassContext, PassSummary } from './pass.js';
import type { PipelineStep } from './registry.js';

export class PassError extends Error {
  constructor(readonly step: PipelineStep, cause: unknown) {
    super(`pass ${step.spec} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'PassError';
  }
}

export async function runPipeline(model: Model, steps: PipelineStep[], context: Partial<PassContext> = {}): Promise<PassSummary[]> {
  const ctx: PassContext = { progress: context.progress ?? silentProgress, seed: context.seed ?? 0, threads: context.threads ?? 1 };
  const summaries: PassSummary[] = [];
  for (const step of steps) {
    try {
      summaries.push(await step.pass.run(model, step.options, ctx));
    } catch (e) {
      throw new PassError(step, e);
    }
  }
  // A rewritten graph is written in topological order (a graph no pass touched keeps its order).
  if (summaries.some((s) => s.tensors.length > 0)) forEachGraph(model.proto, ({ graph }) => sortGraph(graph));
  return summaries;
}
