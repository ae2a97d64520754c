import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decode, encode, DecodeError } from '../../src/io/codec.js';
import { schemaTable } from '../../src/io/schema.js';
import { packagePath } from '../../src/paths.js';
import type { ModelProto, TensorProto } from '../../src/ir/onnx.js';
import { emptyTensor } from '../../src/ir/tensor.js';
import { fixture, fixtureModels } from '../helpers.js';

const digits = () => readFileSync(fixture('digits', 'model.onnx'));

describe('codec', () => {
  it.each(fixtureModels().map((p) => [p.slice(p.indexOf('fixtures/')), p]))('re-encodes %s byte for byte', (_name, path) => {
    const bytes = readFileSync(path);
    const model = decode<ModelProto>('onnx.ModelProto', bytes);
    expect(Buffer.compare(encode('onnx.ModelProto', model), bytes)).toBe(0);
  });

  it('decode → encode → decode gives the same model', () => {
    const first = decode<ModelProto>('onnx.ModelProto', digits());
    const second = decode<ModelProto>('onnx.ModelProto', encode('onnx.ModelProto', first));
    expect(second).toEqual(first);
  });

  it('keeps byte fields as views into the input (no copy)', () => {
    const bytes = digits();
    const model = decode<ModelProto>('onnx.ModelProto', bytes);
    const raw = model.graph!.initializer.find((t) => t.raw_data && t.raw_data.length > 1000)!.raw_data!;
    expect(raw.buffer).toBe(bytes.buffer);
  });

  it('keeps unknown fields, at the top level and inside nested messages', () => {
    const bytes = digits();
    // field 99, varint 42 at the top level; field 1000, a length-delimited "hi" inside the graph.
    const model = decode<ModelProto>('onnx.ModelProto', Buffer.concat([bytes, Buffer.from([0x98, 0x06, 42])]));
    expect(model.$unknown).toHaveLength(1);
    model.graph!.$unknown = [Buffer.from([0xc2, 0x3e, 2, 0x68, 0x69])];
    const again = decode<ModelProto>('onnx.ModelProto', encode('onnx.ModelProto', model));
    expect(Buffer.from(again.$unknown![0]!)).toEqual(Buffer.from([0x98, 0x06, 42]));
    expect(Buffer.from(again.graph!.$unknown![0]!)).toEqual(Buffer.from([0xc2, 0x3e, 2, 0x68, 0x69]));
    expect(encode('onnx.ModelProto', again)).toEqual(encode('onnx.ModelProto', model));
  });

  it('keeps proto2 presence: a field set to its default is written, an absent one is not', () => {
    const withEmpty = { ...emptyTensor(), name: '', data_type: 1 };
    const without = { ...emptyTensor(), data_type: 1 };
    expect(encode('onnx.TensorProto', withEmpty)).toEqual(Buffer.from([0x10, 1, 0x42, 0]));
    expect(encode('onnx.TensorProto', without)).toEqual(Buffer.from([0x10, 1]));
    expect(decode<TensorProto>('onnx.TensorProto', Buffer.from([0x10, 1, 0x42, 0])).name).toBe('');
    expect('name' in decode<TensorProto>('onnx.TensorProto', Buffer.from([0x10, 1]))).toBe(false);
  });

  it('round-trips every int64 exactly: negatives, the 2^53 edge, and INT64 extremes', () => {
    const values = [0, 1, -1, 127, 128, 2 ** 31, -(2 ** 31), 2 ** 53 - 1, -(2 ** 53 - 1), 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)];
    const tensor = { ...emptyTensor(), dims: values, int64_data: BigInt64Array.from(values, (v) => BigInt(v)) };
    const bytes = encode('onnx.TensorProto', tensor);
    const back = decode<TensorProto>('onnx.TensorProto', bytes);
    expect(back.dims).toEqual(values);
    expect([...back.int64_data]).toEqual(values.map((v) => BigInt(v)));
    // -1 as int64 is the 10-byte varint ff ff ff ff ff ff ff ff ff 01, as protobuf writes it.
    expect(encode('onnx.TensorProto', { ...emptyTensor(), dims: [-1] })).toEqual(
      Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    );
  });

  it('reads packed floats at unaligned offsets through a copy, aligned ones as a view', () => {
    const t = { ...emptyTensor(), data_type: 1, dims: [3], float_data: Float32Array.of(1.5, -2, 3.25) };
    const bytes = encode('onnx.TensorProto', t);
    for (const shift of [0, 1, 2, 3]) {
      const padded = Buffer.alloc(bytes.length + shift);
      bytes.copy(padded, shift);
      const back = decode<TensorProto>('onnx.TensorProto', padded.subarray(shift));
      expect([...back.float_data]).toEqual([1.5, -2, 3.25]);
    }
  });

  it('accepts repeated scalars both packed and unpacked, as protobuf parsers must', () => {
    // dims (field 1) packed: tag 0x0a, length 2, values 2 and 3.
    expect(decode<TensorProto>('onnx.TensorProto', Buffer.from([0x0a, 2, 2, 3])).dims).toEqual([2, 3]);
    // float_data (field 4) unpacked: two fixed32 entries.
    const f = Buffer.alloc(10);
    f[0] = 0x25;
    f.writeFloatLE(1.5, 1);
    f[5] = 0x25;
    f.writeFloatLE(2.5, 6);
    expect([...decode<TensorProto>('onnx.TensorProto', f).float_data]).toEqual([1.5, 2.5]);
  });

  it('fails with a DecodeError, never another exception, on every truncation of a real model', () => {
    const bytes = digits();
    const step = Math.max(1, Math.floor(bytes.length / 400));
    let failures = 0;
    for (let n = 1; n < bytes.length; n += step) {
      try {
        decode('onnx.ModelProto', bytes.subarray(0, n));
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(300);
  });

  it('refuses nesting deeper than the limit', () => {
    // TypeProto.sequence_type.elem_type repeated 200 times.
    let inner = Buffer.alloc(0);
    for (let i = 0; i < 200; i++) {
      const seq = Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
      if (seq.length > 127) break;
      inner = Buffer.concat([Buffer.from([0x22, seq.length]), seq]);
    }
    expect(() => decode('onnx.TypeProto', inner)).not.toThrow();
    let deep: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 120; i++) {
      const len = (n: number) => {
        const out: number[] = [];
        while (n >= 0x80) {
          out.push((n & 0x7f) | 0x80);
          n >>>= 7;
        }
        out.push(n);
        return Buffer.from(out);
      };
      const seq = Buffer.concat([Buffer.from([0x0a]), len(deep.length), deep]);
      deep = Buffer.concat([Buffer.from([0x22]), len(seq.length), seq]);
    }
    expect(() => decode('onnx.TypeProto', deep)).toThrow(/nested deeper/);
  });
});

describe('schema', () => {
  it('the JSON form the build writes is the same schema as onnx.proto', () => {
    expect(existsSync(packagePath('dist', 'io', 'onnx.proto.json'))).toBe(true);
    const built = schemaTable('auto');
    expect(built).toEqual(schemaTable('proto'));
    // The table covers the types a model needs, with their fields' numbers.
    const tensor = built.find((m) => m.name === 'onnx.TensorProto')!;
    expect(tensor.fields.find((f) => f.name === 'raw_data')).toMatchObject({ number: 9, kind: 'bytes' });
    expect(built.find((m) => m.name === 'onnx.ModelProto')!.fields.find((f) => f.name === 'graph')).toMatchObject({
      number: 7,
      kind: 'message',
      type: 'onnx.GraphProto',
    });
  });
});
