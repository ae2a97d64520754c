// The per-node error report (eval and compress --eval): the node that adds the error is named first.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { readModel } from '../../src/io/read.js';
import { setData } from '../../src/ir/data.js';
import { floatValues } from '../../src/ir/tensor.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');
const DATA = ['--data', fixture('digits', 'test_data_set_0'), '--labels', fixture('digits', 'labels.txt')];

/** The digits CNN with one weight scaled ×100. */
function broken(weight: string): string {
  const model = readModel(DIGITS);
  const t = model.graph.initializer.find((x) => x.name === weight)!;
  setData(t, new Uint8Array(Float32Array.from(floatValues(t), (v) => v * 100).buffer));
  const path = join(dir, `broken-${weight}.onnx`);
  writeFileSync(path, encode('onnx.ModelProto', model.proto));
  return path;
}

describe('per-node errors', () => {
  it('a layer whose weight was scaled ×100 before quantizing is named first, in the JSON and the terminal report', () => {
    const out = join(dir, 'broken-int8.onnx');
    const r = cli(['compress', broken('conv2.weight'), '-o', out, '--quantize', 'int8:mode=weight', '--runs', '0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const e = cli(['eval', out, '--reference', DIGITS, ...DATA, '--runs', '0', '--json']);
    const nodes = JSON.parse(e.stdout).nodes as {
      name: string;
      opType: string;
      output: string;
      noiseAdded: number;
      snrDb: number;
      cosine: number;
      maxAbsError: number;
    }[];
    expect(nodes[0]).toMatchObject({ name: '/conv2/Conv', opType: 'Conv', output: '/conv2/Conv_output_0' });
    expect(nodes[0]!.snrDb).toBeLessThan(0);
    // What follows carries conv2's error without adding to it.
    expect(nodes[1]!.noiseAdded).toBeLessThan(nodes[0]!.noiseAdded / 10);
    for (let i = 1; i < nodes.length; i++) expect(nodes[i]!.noiseAdded).toBeLessThanOrEqual(nodes[i - 1]!.noiseAdded);
    const terminal = cli(['eval', out, '--reference', DIGITS, ...DATA, '--runs', '0']).stdout;
    const table = terminal.slice(terminal.indexOf('nodes adding the most error'));
    expect(table.split('\n')[2]).toMatch(/^\s+\/conv2\/Conv\s+Conv\s+\/conv2\/Conv_output_0/);
  });

  it('static int8: the quantized activations line up by name with the original; --no-node-errors leaves them out', () => {
    const out = join(dir, 'static.onnx');
    const r = cli([
      'compress',
      DIGITS,
      '-o',
      out,
      '--quantize',
      `int8:mode=static,calibration=${fixture('digits', 'test_data_set_1')}`,
      '--eval',
      ...DATA,
      '--runs',
      '0',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const nodes = JSON.parse(r.stdout).nodes as { output: string; cosine: number }[];
    expect(nodes.map((n) => n.output)).toEqual(
      expect.arrayContaining(['/relu/Relu_output_0', '/pool/MaxPool_output_0', '/fc1/Gemm_output_0', 'logits']),
    );
    for (const n of nodes) expect(n.cosine).toBeGreaterThan(0.99);
    const md = join(dir, 'static.md');
    expect(cli(['eval', out, '--reference', DIGITS, ...DATA, '--runs', '0', '--report', md]).code).toBe(0);
    const without = cli(['eval', out, '--reference', DIGITS, ...DATA, '--runs', '0', '--no-node-errors', '--json']);
    expect(JSON.parse(without.stdout).nodes).toBeUndefined();
  });
});
