import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync, crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readNpz } from '../../src/io/npz.js';
import { parseNpy, readTestDataSet } from '../../src/io/testdata.js';
import { cli, fixture, scratch, npy } from '../helpers.js';

const dir = scratch();

/** A zip archive of the entries, stored or deflated (what numpy's savez and savez_compressed write). */
function zip(entries: [string, Buffer][], deflate: boolean): Buffer {
  const locals: Buffer[] = [],
    centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const body = deflate ? deflateRawSync(data) : data;
    const n = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(deflate ? 8 : 0, 10);
    central.writeUInt32LE(crc32(data), 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(n.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, body);
    centrals.push(central, n);
    offset += 30 + n.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

describe('.npy and .npz evaluation data', () => {
  const set = readTestDataSet(fixture('digits', 'test_data_set_1'));
  const images = set.inputs[0]!.data as Float32Array;

  it('parses .npy headers and data', () => {
    const a = parseNpy(npy(images, set.inputs[0]!.dims), 'x.npy');
    expect(a.dims).toEqual(set.inputs[0]!.dims);
    expect(Array.from(a.data as Float32Array)).toEqual(Array.from(images));
  });

  it.each([[false], [true]])('reads .npz archives (deflated: %s), keys naming the inputs', (deflate) => {
    const path = join(dir, `data-${deflate}.npz`);
    writeFileSync(path, zip([['input.npy', npy(images, set.inputs[0]!.dims)]], deflate));
    const [a] = readNpz(path);
    expect(a!.name).toBe('input');
    expect(Array.from(a!.data as Float32Array)).toEqual(Array.from(images));
  });

  it('eval takes an .npz and a .npy of labels', () => {
    const data = join(dir, 'eval.npz');
    writeFileSync(data, zip([['input.npy', npy(images, set.inputs[0]!.dims)]], true));
    const r = cli([
      'eval',
      fixture('digits', 'model.onnx'),
      '--reference',
      fixture('digits', 'model.onnx'),
      '--data',
      data,
      '--labels',
      fixture('digits', 'labels_1.npy'),
      '--runs',
      '0',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.accuracy.data.kind).toBe('npz');
    expect(report.accuracy.data.samples).toBe(64);
    expect(report.accuracy.metric).toBe('top1');
  });

  it('refuses a file that is not a zip', () => {
    const path = join(dir, 'bad.npz');
    writeFileSync(path, 'not a zip');
    expect(() => readNpz(path)).toThrow(/not an \.npz/);
  });
});
