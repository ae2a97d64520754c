// include=, exclude= and min-size= read one way by every pass (the weight passes, dedup, structured pruning).
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { optionFilter } from '../../src/pass/select.js';
import { fixture } from '../helpers.js';

describe('optionFilter', () => {
  it('checks min-size, then include, then exclude, against any of the names', () => {
    const filter = optionFilter({ include: 'fc*|conv1.*', exclude: '*.bias', 'min-size': 10 });
    expect(filter(['fc1.weight'], 9)).toBe('9 elements, below min-size 10');
    expect(filter(['other'], 100)).toBe('does not match include pattern');
    expect(filter(['w', 'fc1'], 100)).toBeUndefined();
    expect(filter(['fc1.bias'], 100)).toBe('matches exclude pattern');
    expect(optionFilter({ include: '', exclude: '' })(['anything'], 0)).toBeUndefined();
  });

  it('structured pruning skips by the selection options with the same reasons, marked as chosen', async () => {
    const model = readModel(fixture('digits', 'model.onnx'));
    const [summary] = await runPipeline(model, [parseStep('prune', 'structured:ratio=0.25,exclude=conv1.*,min-size=100')]);
    expect(summary!.skipped).toContainEqual({ name: 'conv1.weight', reason: 'matches exclude pattern', chosen: true });
    const small = await runPipeline(readModel(fixture('digits', 'model.onnx')), [parseStep('prune', 'structured:min-size=1000')]);
    expect(small[0]!.skipped).toContainEqual({ name: 'conv1.weight', reason: '144 elements, below min-size 1000', chosen: true });
  });
});
