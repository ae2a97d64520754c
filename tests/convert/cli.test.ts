// onnxpress convert on the command line: what it prints, --json, and its refusals (one line, an
// exit code, nothing written).
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { cli, scratch } from '../helpers.js';
import { float, graph, graphAttr, int, model, node, save, vi } from './helpers.js';

const dir = scratch();
const clip = save(
  join(dir, 'clip9.onnx'),
  model(
    graph(
      [
        node('Clip', ['x'], ['a'], [float('min', 0), float('max', 6)]),
        node('Relu', ['a'], ['b']),
        node('Clip', ['b'], ['y'], [float('max', 1)]),
      ],
      [vi('x', [2, 3])],
      [vi('y', [2, 3])],
    ),
    9,
  ),
);

function expectRefused(args: string[], code: number, pattern: RegExp, out: string) {
  const r = cli(['convert', ...args]);
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^onnxpress: /);
  expect(lines[0]).not.toMatch(/internal error/);
  expect(lines[0]).toMatch(pattern);
  expect(existsSync(out)).toBe(false);
}

describe('onnxpress convert', () => {
  it('converts, writes, and prints what was converted per op', () => {
    const out = join(dir, 'clip13.onnx');
    const r = cli(['convert', clip, '-o', out, '--opset', '13']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/converted opset 9 → 13 \(IR version 4 → 7\)/);
    expect(r.stdout).toMatch(/Clip 6→13: min\/max attributes to inputs ×2/);
    expect(r.stdout).toMatch(/same meaning, new version: Relu 6→13 ×1/);
    const m = readModel(out);
    expect(Number(m.proto.opset_import[0]!.version)).toBe(13);
  });

  it('--json gives the same as data', () => {
    const out = join(dir, 'clip21.json.onnx');
    const r = cli(['convert', clip, '-o', out, '--opset', '21', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const data = JSON.parse(r.stdout);
    expect(data).toMatchObject({ from: 9, to: 21, irVersion: { from: 4, to: 10 } });
    expect(data.converted).toEqual([{ op: 'Clip', from: 6, to: 13, how: 'min/max attributes to inputs', count: 2 }]);
    expect(data.unchanged).toEqual([{ op: 'Relu', from: 6, to: 14, how: 'same meaning', count: 1 }]);
  });

  it('refuses a bad target with exit 2, writing nothing', () => {
    const out = join(dir, 'bad-target.onnx');
    expectRefused([clip, '-o', out, '--opset', '22'], 2, /--opset must be a whole number from 1 to 21/, out);
    expectRefused([clip, '-o', out, '--opset', 'x'], 2, /--opset must be/, out);
    expectRefused([clip, '-o', out, '--opset', '8'], 2, /older than the model's opset 9/, out);
    expectRefused([clip, '-o', out], 2, /missing --opset/, out);
  });

  it('refuses an op with no adapter with exit 1, naming the op and versions, writing nothing', () => {
    const body = graph([node('Identity', ['s'], ['s2']), node('Identity', ['x'], ['o'])], [vi('s'), vi('x')], [vi('s2'), vi('o')]);
    const scan = save(
      join(dir, 'scan8.onnx'),
      model(
        graph(
          [node('Scan', ['', 'init', 'xs'], ['final', 'ys'], [graphAttr('body', body), int('num_scan_inputs', 1)])],
          [vi('init', [1, 1]), vi('xs', [1, 3, 1])],
          [vi('final'), vi('ys')],
        ),
        8,
      ),
    );
    const out = join(dir, 'scan13.onnx');
    expectRefused([scan, '-o', out, '--opset', '13'], 1, /cannot convert from opset 8 to 13: Scan 8→9/, out);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('leaves a custom-domain op alone', () => {
    const p = model(
      graph([node('Clip', ['x'], ['a'], [float('min', 0)]), node('Gelu', ['a'], ['y'], [], 'com.example')], [vi('x', [2])], [vi('y', [2])]),
      11,
    );
    p.opset_import.push({ domain: 'com.example', version: 1 });
    const path = save(join(dir, 'custom.onnx'), p);
    const out = join(dir, 'custom13.onnx');
    const r = cli(['convert', path, '-o', out, '--opset', '13']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 of other domains left alone/);
    const gelu = readModel(out).proto.graph!.node.find((n) => n.domain === 'com.example')!;
    expect(gelu.op_type).toBe('Gelu');
  });

  it('follows the output policy: an existing output needs --force; the input is never replaced', () => {
    const out = join(dir, 'exists.onnx');
    writeFileSync(out, 'keep');
    const r = cli(['convert', clip, '-o', out, '--opset', '13']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli(['convert', clip, '-o', out, '--opset', '13', '--force']).code).toBe(0);
    const self = cli(['convert', clip, '-o', clip, '--opset', '13', '--force']);
    expect(self.code).not.toBe(0);
    expect(Number(readModel(clip).proto.opset_import[0]!.version)).toBe(9);
  });
});
