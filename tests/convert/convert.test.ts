// convertOpset's contract: targets, refusals that leave the model as it was, other domains left
// alone, IR version and opset_import, and a table that classifies every definition change.
import { describe, expect, it } from 'vitest';
import { convertOpset } from '../../src/convert/convert.js';
import { ruleFor } from '../../src/convert/registry.js';
import { SCHEMA_VERSIONS } from '../../src/convert/schemas.js';
import { ADAPTERS } from '../../src/convert/registry.js';
import { UNCHANGED } from '../../src/convert/unchanged.js';
import { InputError, UsageError } from '../../src/errors.js';
import { encode } from '../../src/io/codec.js';
import type { ModelProto } from '../../src/ir/onnx.js';
import { Model } from '../../src/ir/model.js';
import { float, graph, graphAttr, int, ints, model, node, vi } from './helpers.js';

const clipModel = (opset = 9) => model(graph([node('Clip', ['x'], ['y'], [float('min', 0)])], [vi('x', [2])], [vi('y', [2])]), opset);
const bytes = (p: ModelProto) => Buffer.from(encode('onnx.ModelProto', p));

function refusal(proto: ModelProto, target: number): Error {
  const before = bytes(proto);
  const m = new Model(proto);
  let error: unknown;
  try {
    convertOpset(m, target);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(Error);
  // Nothing changed.
  expect(bytes(m.proto).equals(before)).toBe(true);
  return error as Error;
}

describe('convertOpset', () => {
  it('refuses a target newer than 21 or older than the model as usage errors', () => {
    for (const target of [22, 8]) {
      const e = refusal(clipModel(), target);
      expect(e).toBeInstanceOf(UsageError);
    }
    expect(refusal(clipModel(), 22).message).toMatch(/up to 21/);
    expect(refusal(clipModel(), 8).message).toMatch(/older than the model's opset 9/);
  });

  it('refuses models below opset 6 and models with no default-domain opset as input errors', () => {
    expect(refusal(clipModel(5), 13)).toBeInstanceOf(InputError);
    const none = { ...clipModel(), opset_import: [{ domain: 'custom', version: 1 }] };
    expect(refusal(none, 13).message).toMatch(/no default-domain/);
  });

  it('refuses an op with no adapter, naming the op and the versions, and changes nothing', () => {
    const body = graph([node('Identity', ['s'], ['s2']), node('Identity', ['x'], ['o'])], [vi('s'), vi('x')], [vi('s2'), vi('o')]);
    const scan = node('Scan', ['', 'init', 'xs'], ['final', 'ys'], [graphAttr('body', body), int('num_scan_inputs', 1)]);
    const p = model(
      graph([scan, node('Clip', ['final'], ['c'], [float('max', 1)])], [vi('init', [1, 1]), vi('xs', [1, 3, 1])], [vi('c'), vi('ys')]),
      8,
    );
    const e = refusal(p, 13);
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/Scan 8→9/);
    expect(e.message).toMatch(/cannot convert from opset 8 to 13/);
  });

  it('refuses what an adapter cannot convert faithfully: a read Dropout mask, BatchNormalization spatial=0, Clip of unknown type, unknown ops', () => {
    const mask = model(graph([node('Dropout', ['x'], ['y', 'm'])], [vi('x', [2])], [vi('y'), vi('m')]), 9);
    expect(refusal(mask, 13).message).toMatch(/Dropout 7→10: its mask output 'm' is read/);
    const bn = model(
      graph(
        [node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y'], [int('spatial', 0)])],
        ['x', 's', 'b', 'm', 'v'].map((n) => vi(n)),
        [vi('y')],
      ),
      8,
    );
    expect(refusal(bn, 9).message).toMatch(/BatchNormalization 7→9: spatial=0/);
    const stats = model(
      graph(
        [node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y', 'mean'])],
        ['x', 's', 'b', 'm', 'v'].map((n) => vi(n)),
        [vi('y'), vi('mean')],
      ),
      9,
    );
    expect(refusal(stats, 14).message).toMatch(/BatchNormalization 9→14: its training output 'mean' is read/);
    const unread = new Model(
      model(
        graph(
          [node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y', 'mean', 'var'])],
          ['x', 's', 'b', 'm', 'v'].map((n) => vi(n)),
          [vi('y')],
        ),
        9,
      ),
    );
    convertOpset(unread, 15);
    expect(unread.proto.graph!.node[0]!.output).toEqual(['y']);
    const unknown = model(
      graph([node('Clip', ['x'], ['y'], [float('min', 0)])], [{ name: 'x', metadata_props: [] }], [{ name: 'y', metadata_props: [] }]),
      9,
    );
    expect(refusal(unknown, 11).message).toMatch(/element type of 'x' is not known/);
    const notAnOp = model(graph([node('Crop', ['x'], ['y'])], [vi('x')], [vi('y')]), 9);
    expect(refusal(notAnOp, 11).message).toMatch(/'Crop' is not an ONNX operator/);
  });

  it('knows element types through the graph without value_info: Clip after an LSTM, a DequantizeLinear, a Cast to double', () => {
    const untyped = (name: string) => ({ name, metadata_props: [] });
    const p = model(
      graph(
        [
          node('LSTM', ['x', 'w', 'r'], ['ys', 'h'], [int('hidden_size', 2)]),
          node('Clip', ['h'], ['a'], [float('min', 0)]),
          node('DequantizeLinear', ['q', 's'], ['d']),
          node('Clip', ['d'], ['b'], [float('max', 1)]),
          node('Cast', ['x'], ['x64'], [int('to', 11)]),
          node('Clip', ['x64'], ['c'], [float('max', 1)]),
        ],
        [vi('x', [1, 1, 2]), vi('w', [1, 8, 2]), vi('r', [1, 8, 2]), vi('q', [2], 2), vi('s', [])],
        ['a', 'b', 'c'].map(untyped),
      ),
      10,
    );
    const m = new Model(p);
    expect(convertOpset(m, 11).converted.map((e) => `${e.op} ×${e.count}`)).toEqual(['Clip ×3']);
    const constantType = (clipOut: string) => {
      const clip = m.proto.graph!.node.find((n) => n.output[0] === clipOut)!;
      const name = clip.input.find((i, k) => k > 0 && i)!;
      return m.proto.graph!.node.find((n) => n.output[0] === name)!.attribute[0]!.t!.data_type;
    };
    expect([constantType('a'), constantType('b'), constantType('c')]).toEqual([1, 1, 11]);
  });

  it('leaves ops of other domains alone, sets opset_import and raises the IR version', () => {
    const p = model(
      graph(
        [node('Clip', ['x'], ['a'], [float('min', 0)]), node('Clip', ['a'], ['y'], [float('min', 0)], 'com.example')],
        [vi('x', [2])],
        [vi('y', [2])],
      ),
      9,
    );
    p.opset_import.push({ domain: 'com.example', version: 1 });
    const m = new Model(p);
    const summary = convertOpset(m, 21);
    expect(summary.otherDomain).toBe(1);
    expect(m.proto.graph!.node.find((n) => n.domain === 'com.example')!.attribute.map((a) => a.name)).toEqual(['min']);
    expect(m.proto.opset_import).toEqual([
      { domain: '', version: 21 },
      { domain: 'com.example', version: 1 },
    ]);
    expect(Number(m.proto.ir_version)).toBe(10);
    expect(summary.irVersion).toEqual({ from: 4, to: 10 });
  });

  it("converting to the model's own opset changes nothing", () => {
    const p = clipModel();
    const before = bytes(p);
    const summary = convertOpset(new Model(p), 9);
    expect(summary.converted).toEqual([]);
    expect(bytes(p).equals(before)).toBe(true);
  });

  it('keeps an int64 attribute exact when it becomes an input (INT64_MAX stays INT64_MAX)', () => {
    const p = model(
      graph([node('Slice', ['x'], ['y'], [ints('starts', [0]), ints('ends', [9223372036854775807n])])], [vi('x', [3])], [vi('y')]),
      9,
    );
    const m = new Model(p);
    convertOpset(m, 10);
    const constant = m.proto.graph!.node.find((n) => n.output[0] === m.proto.graph!.node.find((k) => k.op_type === 'Slice')!.input[2])!;
    const raw = constant.attribute[0]!.t!.raw_data!;
    expect(new BigInt64Array(raw.slice().buffer)[0]).toBe(9223372036854775807n);
  });

  it('classifies every default-domain definition change from opset 6 to 21: adapter, unchanged semantics or a known refusal', () => {
    const unclassified: string[] = [],
      known: string[] = [];
    for (const [op, versions] of Object.entries(SCHEMA_VERSIONS)) {
      for (const v of versions) {
        if (v < 7 || v === versions[0]) continue;
        const rule = ruleFor(op, v);
        if (rule.kind === 'refused') (rule.reason ? known : unclassified).push(`${op}@${v}`);
      }
    }
    expect(unclassified).toEqual([]);
    expect(known.sort()).toEqual(['Scan@9', 'Upsample@7']);
    expect(ruleFor('Upsample', 7)).toMatchObject({ kind: 'refused' });
    // No change is both adapted and listed as unchanged, and every listed version is a real change.
    for (const e of UNCHANGED)
      for (const v of e.versions) {
        expect(SCHEMA_VERSIONS[e.op], e.op).toContain(v);
        expect(
          ADAPTERS.some((a) => a.op === e.op && a.version === v),
          `${e.op}@${v}`,
        ).toBe(false);
      }
    for (const a of ADAPTERS) expect(SCHEMA_VERSIONS[a.op], `${a.op}@${a.version}`).toContain(a.version);
  });
});
