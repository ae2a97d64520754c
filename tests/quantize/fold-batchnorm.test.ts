// int8 folds each BatchNormalization into the Conv before it when that Conv's weight is quantized
// (fold-batchnorm=true, the default): the PP-OCR angle classifier's 140 BatchNormalization tensors,
// kept in Constant nodes by paddle2onnx, held it at 0.40× its size. A Conv → BN → Relu model, with its
// weights as initializers and as Constant nodes, checked in ONNX Runtime against the original.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import type { NodeProto } from '../../src/ir/onnx.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { float, graph, input, ints, model, node, save, tensor, tensorAttr, values, vi } from '../convert/helpers.js';
import { cli, cosine, scratch } from '../helpers.js';

const dir = scratch();
const C = 24,
  IN = 8;

function convBnModel(asConstants: boolean) {
  const positive = (n: number, seed: number) => Array.from(values(n, seed), (x) => 0.5 + Math.abs(x));
  const weights = [
    tensor(
      'w',
      [C, IN, 3, 3],
      Array.from(values(C * IN * 9, 2), (x) => x * 0.2),
    ),
    tensor('gamma', [C], positive(C, 3)),
    tensor('beta', [C], Array.from(values(C, 4))),
    tensor(
      'mean',
      [C],
      Array.from(values(C, 5), (x) => x * 0.1),
    ),
    tensor('var', [C], positive(C, 6)),
  ];
  const nodes: NodeProto[] = [
    node('Conv', ['X', 'w'], ['c'], [ints('pads', [1, 1, 1, 1])]),
    node('BatchNormalization', ['c', 'gamma', 'beta', 'mean', 'var'], ['b'], [float('epsilon', 1e-5)]),
    node('Relu', ['b'], ['Y']),
  ];
  const constants = asConstants ? weights.map((t) => node('Constant', [], [t.name!], [tensorAttr('value', t)])) : [];
  return model(graph([...constants, ...nodes], [vi('X', [2, IN, 10, 10])], [vi('Y', [2, C, 10, 10])], asConstants ? [] : weights), 13);
}

async function outputCosine(a: string, b: string): Promise<number> {
  const x = [input('X', [2, IN, 10, 10], 7)];
  const ya = (await run(await createSession(a), x))[0]!,
    yb = (await run(await createSession(b), x))[0]!;
  return cosine(ya.data as Float32Array, yb.data as Float32Array);
}

describe('int8 folds BatchNormalization into the Conv before it', () => {
  for (const asConstants of [false, true]) {
    const label = asConstants ? 'constants' : 'initializers';
    it(`${label}: no BatchNormalization left, said in the notes, smaller than without folding, output cosine ≥ 0.9999`, async () => {
      const original = save(join(dir, `${label}.onnx`), convBnModel(asConstants));
      const folded = join(dir, `${label}-folded.onnx`),
        kept = join(dir, `${label}-kept.onnx`);
      const a = cli(['compress', original, '-o', folded, '--quantize', 'int8', '--json']);
      expect(a.code, a.stderr).toBe(0);
      const notes = (JSON.parse(a.stdout).passes as { notes: string[] }[]).flatMap((p) => p.notes).join('\n');
      expect(notes).toMatch(/1 BatchNormalization folded into the Conv before it .*fold-batchnorm=false keeps them/);
      const b = cli(['compress', original, '-o', kept, '--quantize', 'int8:fold-batchnorm=false']);
      expect(b.code, b.stderr).toBe(0);

      expect(readModel(folded).graph.node.map((n) => n.op_type)).not.toContain('BatchNormalization');
      expect(readModel(kept).graph.node.map((n) => n.op_type)).toContain('BatchNormalization');
      // Four vectors of C floats become one bias.
      expect(statSync(kept).size - statSync(folded).size).toBeGreaterThanOrEqual(3 * C * 4);
      expect(await outputCosine(original, folded)).toBeGreaterThanOrEqual(0.9999);
      expect(await outputCosine(original, kept)).toBeGreaterThanOrEqual(0.9999);
    });
  }
});
