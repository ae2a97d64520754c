// Exporters' debug info on nodes (torch.onnx dynamo: a stack trace per node in metadata_props) is
// removed when passes run, said in the notes, and kept with --keep-debug-info; the model's own
// metadata stays either way. The file sizes are read from disk; both outputs run in ONNX Runtime.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { graph, input, model, node, save, tensor, values, vi } from '../convert/helpers.js';
import { cli, scratch } from '../helpers.js';

const dir = scratch();
const trace = (i: number) => `File "model.py", line ${i}, in forward\n    x = self.layer${i}(x)\n`.repeat(40);

function annotatedModel() {
  const nodes = [0, 1, 2].map((i) => {
    const n = node('MatMul', [i === 0 ? 'X' : `h${i}`, `W${i}`], [i === 2 ? 'Y' : `h${i + 1}`]);
    n.metadata_props = [
      { key: 'pkg.torch.onnx.stack_trace', value: trace(i) },
      { key: 'namespace', value: `layer${i}: torch.nn.Linear` },
    ];
    n.doc_string = `layer ${i}`;
    return n;
  });
  const weights = [0, 1, 2].map((i) => tensor(`W${i}`, [32, 32], Array.from(values(32 * 32, i + 3))));
  return model(graph(nodes, [vi('X', [4, 32])], [vi('Y', [4, 32])], weights), 13, {
    metadata_props: [{ key: 'labels', value: 'a,b,c' }],
  });
}

describe('exporter debug info on nodes', () => {
  const original = save(join(dir, 'annotated.onnx'), annotatedModel());

  it('is removed by a run with passes (said in the notes), kept with --keep-debug-info; model metadata kept', async () => {
    const stripped = join(dir, 'stripped.onnx'),
      kept = join(dir, 'kept.onnx');
    const a = cli(['compress', original, '-o', stripped, '--quantize', 'int8:mode=weight', '--json']);
    expect(a.code, a.stderr).toBe(0);
    const notes = (JSON.parse(a.stdout).passes as { notes: string[] }[]).flatMap((p) => p.notes);
    expect(notes.join('\n')).toMatch(
      /removed the exporter's debug info from 3 nodes \(.*pkg\.torch\.onnx\.stack_trace .*\); --keep-debug-info keeps it/,
    );
    const b = cli(['compress', original, '-o', kept, '--quantize', 'int8:mode=weight', '--keep-debug-info']);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).not.toMatch(/debug info/);

    const s = readModel(stripped),
      k = readModel(kept);
    expect(s.graph.node.every((n) => n.metadata_props.length === 0 && !n.doc_string)).toBe(true);
    expect(k.graph.node.filter((n) => n.metadata_props.some((p) => p.key === 'pkg.torch.onnx.stack_trace')).length).toBeGreaterThan(0);
    for (const m of [s, k]) expect(m.proto.metadata_props).toEqual([{ key: 'labels', value: 'a,b,c' }]);
    // About the traces' bytes smaller on disk (each ~2.4 kB of text, on the nodes the pass kept).
    expect(statSync(kept).size - statSync(stripped).size).toBeGreaterThan(2000);

    const x = [input('X', [4, 32], 9)];
    const ya = (await run(await createSession(stripped), x))[0]!,
      yb = (await run(await createSession(kept), x))[0]!;
    expect(Array.from(ya.data as Float32Array)).toEqual(Array.from(yb.data as Float32Array));
  });

  it('a run with no pass copies the model as it is, debug info included', () => {
    const copy = join(dir, 'copy.onnx');
    const r = cli(['compress', original, '-o', copy]);
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(copy).size).toBe(statSync(original).size);
  });
});
