// ONNX's backend test cases (fixtures/convert-backend, copied by scripts/convert-fixtures.mjs),
// converted to opsets 13 and 21 and run in ONNX Runtime on their stored inputs: the outputs must
// match the stored outputs (rtol 1e-3, atol 1e-7) or the original's; nothing may be wrong.
import { describe, expect, it } from 'vitest';
import { checkConversions } from '../../src/conformance/conversions.js';
import { fixture } from '../helpers.js';

describe('backend test cases', () => {
  it('converts to 13 and 21 with no wrong result; refuses only Scan 8→9 and opset-1 models', async () => {
    const report = await checkConversions(fixture('convert-backend'), [13, 21]);
    const wrong = report.cases.filter((c) => c.status === 'wrong').map((c) => `${c.model} →${c.to}: ${c.reason}`);
    expect(wrong).toEqual([]);
    expect(report.counts.converted).toBeGreaterThanOrEqual(420);
    expect(report.refusedOps).toEqual({ Scan: 2, 'opset 1': 6 });
    // Adapters of every kind ran on real cases.
    const adapted = new Set(report.cases.flatMap((c) => c.adapted ?? []).map((l) => l.split(' ')[0]));
    for (const op of [
      'Add',
      'BatchNormalization',
      'Softmax',
      'LogSoftmax',
      'Pad',
      'Clip',
      'Split',
      'Squeeze',
      'Unsqueeze',
      'ReduceSum',
      'ReduceMean',
      'Slice',
      'Upsample',
      'Scatter',
      'Dropout',
      'PRelu',
      'DFT',
    ]) {
      expect(adapted, op).toContain(op);
    }
  }, 120_000);
});
