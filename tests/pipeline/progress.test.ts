// Long passes report their progress in bytes of weights done; the CLI draws it as a bar on a
// terminal (and nothing elsewhere).
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { compress } from '../../src/pipeline/compress.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { silentProgress, type Progress } from '../../src/kernels/progress.js';
import { terminalProgress } from '../../src/cli/progress.js';
import { fixture, scratch } from '../helpers.js';

const dir = scratch();

function recorder() {
  const calls: { start: [number, string, string | undefined][]; ticks: number[]; stops: number } = { start: [], ticks: [], stops: 0 };
  const progress: Progress = {
    start(total, label, unit) {
      calls.start.push([total, label, unit]);
    },
    tick(n) {
      calls.ticks.push(n);
    },
    stop() {
      calls.stops++;
    },
  };
  return { calls, progress };
}

describe('progress', () => {
  it.each([
    ['quantize', 'int8', 'int8'],
    ['quantize', 'int4', 'int4'],
    ['prune', 'magnitude', 'magnitude'],
    ['share', 'cluster:k=16', 'clustering'],
    ['share', 'dedup', 'dedup'],
  ])("%s %s reports every weight's bytes, once each", async (family, spec, label) => {
    const { calls, progress } = recorder();
    const result = await compress(fixture('charlm', 'model.onnx'), join(dir, `${spec.replace(/[:=]/g, '_')}.onnx`), {
      steps: [parseStep(family, spec)],
      progress,
    });
    expect(calls.start.length).toBe(1);
    const [total, shown, unit] = calls.start[0]!;
    expect([shown, unit]).toEqual([label, 'bytes']);
    expect(calls.ticks.reduce((a, b) => a + b, 0)).toBe(total);
    expect(calls.stops).toBe(1);
    // The weights the pass changed are among those it counted.
    const changed = result.passes[0]!.tensors.reduce((n, t) => n + t.bytesBefore, 0);
    expect(total).toBeGreaterThanOrEqual(changed);
    expect(total).toBeGreaterThan(0);
  });

  // Calibration runs the model over the data before any weight is touched (BERT-base, 128 sequences:
  // 45 s): the bar counts its runs first. The char LM's calibration set is 32 windows: 2 runs of 16.
  it.each([
    ['prune', 'sparsegpt', 'sparsegpt'],
    ['prune', 'wanda', 'wanda'],
    ['quantize', 'int4', 'int4'],
    ['prune', 'structured:ratio=0.3,target=neurons', undefined],
  ])('%s %s with calibration=: calibration runs counted one by one, then the weights', async (family, spec, label) => {
    const phases: { total: number; label: string; done: number; stopped: boolean }[] = [];
    const progress: Progress = {
      start(total, shown) {
        phases.push({ total, label: shown, done: 0, stopped: false });
      },
      tick(n) {
        phases.at(-1)!.done += n;
      },
      stop() {
        if (phases.length) phases.at(-1)!.stopped = true;
      },
    };
    const calibration = fixture('charlm', 'calibration');
    const joined = `${spec}${spec.includes(':') ? ',' : ':'}calibration=${calibration}`;
    await compress(fixture('charlm', 'model.onnx'), join(dir, `calibrated-${family}-${label ?? 'structured'}.onnx`), {
      steps: [parseStep(family, joined)],
      progress,
    });
    expect(phases[0]).toEqual({ total: 2, label: 'calibrating', done: 2, stopped: true });
    // GPTQ then factors each weight's XᵀX (the char LM's 19 MatMul weights) before rounding.
    const after =
      family === 'quantize'
        ? [
            ['factoring', true],
            [label, true],
          ]
        : [[label, true]];
    if (label) expect(phases.slice(1).map((p) => [p.label, p.done === p.total && p.stopped])).toEqual(after);
  });

  it('draws nothing where the stream is not a terminal, and a rate in MB/s where it is', async () => {
    expect(terminalProgress(Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream)).toBe(silentProgress);
    const tty = Object.assign(new PassThrough(), {
      isTTY: true,
      columns: 120,
      cursorTo: () => true,
      clearLine: () => true,
      moveCursor: () => true,
    }) as unknown as NodeJS.WriteStream;
    let text = '';
    (tty as unknown as PassThrough).on('data', (d: Buffer) => {
      text += d.toString();
    });
    const bar = terminalProgress(tty);
    bar.start(4e6, 'int8', 'bytes');
    bar.tick(2e6);
    bar.stop();
    await new Promise((r) => setImmediate(r));
    expect(text).toMatch(/int8 +\[.*\] \d+\.\d MB of 4\.0 MB, \d+\.\d MB\/s/);
  });
});
