// auto reports the precision each layer was written at, never one a pass could not apply (issue 16
// item 4): a Gemm weight of an opset-8 model holding a Scan-8 (which no adapter raises) can take
// neither the 4-bit form (opset 21) nor int8 (opset 10+), so it stays float — and auto says so.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { graph, graphAttr, int, model, node, save, tensor, vi } from '../convert/helpers.js';
import { cli, scratch } from '../helpers.js';

const dir = scratch();

function scanModel(): string {
  const body = graph(
    [node('Add', ['s', 'xt'], ['s2']), node('Identity', ['xt'], ['yt'])],
    [vi('s', [8]), vi('xt', [8])],
    [vi('s2', [8]), vi('yt', [8])],
  );
  const g = graph(
    [
      node('Scan', ['', 's0', 'x'], ['sf', 'ys'], [int('num_scan_inputs', 1), graphAttr('body', body)]),
      node('Gemm', ['sf', 'G', 'C'], ['y']),
    ],
    [vi('x', [1, 5, 8])],
    [vi('y', [1, 64]), vi('ys', [1, 5, 8])],
    [
      tensor(
        'G',
        [8, 64],
        Array.from({ length: 512 }, (_, i) => Math.sin(i) * 0.1),
      ),
      tensor('C', [64], new Array(64).fill(0)),
      tensor('s0', [1, 8], new Array(8).fill(0)),
    ],
  );
  return save(join(dir, 'scan8.onnx'), model(g, 8));
}

describe('auto never reports a precision it did not write', () => {
  it('a layer no pass could quantize is reported float, with the reason', () => {
    const input = scanModel();
    const out = join(dir, 'auto.onnx');
    const r = cli(['auto', input, '-o', out, '--max-accuracy-drop', '0.5', '--runs', '0', '--json', '--force']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      auto: {
        chosen: Record<string, string>;
        trials: { int4: number; int8: number; float: number }[];
        fellBack: { name: string; written: string; reason: string }[];
      };
    };
    expect(report.auto.chosen).toEqual({ G: 'float' });
    expect(report.auto.trials.every((t) => t.int4 === 0 && t.int8 === 0 && t.float === 1)).toBe(true);
    expect(report.auto.fellBack).toHaveLength(1);
    expect(report.auto.fellBack[0]!).toMatchObject({ name: 'G', written: 'float' });
    expect(report.auto.fellBack[0]!.reason).toMatch(/opset 21/);
    const text = cli(['auto', input, '-o', out, '--max-accuracy-drop', '0.5', '--runs', '0', '--force']);
    expect(text.stdout).toMatch(/not 4-bit +G: written at float \(int4: needs opset 21/);
  });
});
