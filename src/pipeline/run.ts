// Running a pipeline: the steps in the order the user wrote them, each a pass changing the model in
// place, then the finish steps they asked for (PassContext.finishing); a pass that throws is named
// in the error.
import type { Model, SettleListener } from '../ir/model.js';
import { stripDebugInfo } from '../ir/debug-info.js';
import { formatBytes } from '../report/format.js';
import { sortGraph } from '../ir/rewrite.js';
import { forEachGraph } from '../ir/walk.js';
import { silentProgress } from '../kernels/progress.js';
import type { Finish, PassContext, PassSummary } from '../pass/pass.js';
import type { PipelineStep } from './registry.js';

export class PassError extends Error {
  constructor(
    readonly step: PipelineStep,
    cause: unknown,
  ) {
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
  /** Keep the exporters' debug info on the nodes (ir/debug-info.ts), which a pipeline of passes removes. */
  keepDebugInfo?: boolean;
}

export async function runPipeline(model: Model, steps: PipelineStep[], context: RunOptions = {}): Promise<PassSummary[]> {
  // This run's finish steps and their states, in the order first asked for.
  const finishes = new Map<Finish<unknown>, unknown>();
  const finishing = <S>(finish: Finish<S>): S => {
    if (!finishes.has(finish)) finishes.set(finish, finish.start());
    return finishes.get(finish) as S;
  };
  const ctx: PassContext = {
    progress: context.progress ?? silentProgress,
    seed: context.seed ?? 0,
    threads: context.threads ?? 1,
    checkThreads: context.checkThreads ?? context.threads ?? 1,
    finishing,
    inputs: context.inputs,
    deferConversions: context.deferConversions,
  };
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
  // What the steps left for the end (pruned tensors stored sparsely), once no step can change it.
  for (const [finish, state] of finishes) {
    const summary = finish.run(model, state);
    if (summary) summaries.push(summary);
  }
  // A compressed model sheds what only a debugger reads; said in the last step's notes.
  if (steps.length > 0 && !context.keepDebugInfo) {
    const stripped = stripDebugInfo(model.proto);
    if (stripped.nodes > 0 && summaries.length > 0) {
      const keys = stripped.byKey
        .slice(0, 3)
        .map(([key, bytes]) => `${key} ${formatBytes(bytes)}`)
        .join(', ');
      summaries[summaries.length - 1]!.notes.push(
        `removed the exporter's debug info from ${stripped.nodes} node${stripped.nodes === 1 ? '' : 's'} (${formatBytes(stripped.bytes)}: ${keys}${stripped.byKey.length > 3 ? ', …' : ''}); --keep-debug-info keeps it`,
      );
    }
  }
  // A rewritten graph is written in topological order (a graph no pass touched keeps its order).
  if (summaries.some((s) => s.tensors.length > 0)) forEachGraph(model.proto, ({ graph }) => sortGraph(graph));
  return summaries;
}
