// Finish steps: work a pass leaves for the end of the run (PassContext.finishing), run once after
// the last step with state kept by that run, never by a module.
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { silentProgress } from '../../src/kernels/progress.js';
import { emptySummary, type Finish, type Pass } from '../../src/pass/pass.js';
import { parseStep, type PipelineStep } from '../../src/pipeline/registry.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { fixture } from '../helpers.js';

const DIGITS = fixture('digits', 'model.onnx');

/** Counts the steps that asked for it, and says so in its summary. */
const COUNT: Finish<{ asked: number }> = {
  start: () => ({ asked: 0 }),
  run: (_model, state) => ({ ...emptySummary({ family: 'test', method: 'count' }, {}), notes: [`asked ${state.asked} times`] }),
};

const asking: Pass = {
  family: 'test',
  method: 'ask',
  description: 'asks for COUNT',
  options: {},
  run(_model, options, context) {
    const state = context.finishing?.(COUNT);
    if (state) state.asked++;
    return emptySummary(asking, options);
  },
};
const ask: PipelineStep = { pass: asking, options: {}, spec: 'ask' };

describe('finish steps', () => {
  it('run once after the last step, with the state of their own run', async () => {
    const first = await runPipeline(readModel(DIGITS), [ask, ask, ask]);
    expect(first.map((s) => s.method)).toEqual(['ask', 'ask', 'ask', 'count']);
    expect(first.at(-1)!.notes).toEqual(['asked 3 times']);
    // A second run starts from a fresh state, on the same model too.
    const model = readModel(DIGITS);
    await runPipeline(model, [ask]);
    expect((await runPipeline(model, [ask, ask])).at(-1)!.notes).toEqual(['asked 2 times']);
  });

  it('sparse storage: one summary for every pruning step of a run (magnitude and N:M), and none for a pass run alone', async () => {
    const steps = [parseStep('prune', 'magnitude:sparsity=0.8,include=fc1.weight'), parseStep('prune', 'nm:n=1,m=4,include=conv2.weight')];
    const summaries = await runPipeline(readModel(DIGITS), steps);
    expect(summaries.map((s) => s.method)).toEqual(['magnitude', 'nm', 'sparse-storage']);
    expect(
      summaries
        .at(-1)!
        .tensors.map((t) => t.name)
        .sort(),
    ).toEqual(['conv2.weight', 'fc1.weight']);
    // Outside a pipeline nothing is left for an end: the tensors stay dense.
    const model = readModel(DIGITS);
    await steps[1]!.pass.run(model, steps[1]!.options, { progress: silentProgress, seed: 0, threads: 1 });
    expect(model.proto.graph!.sparse_initializer).toEqual([]);
  });
});
