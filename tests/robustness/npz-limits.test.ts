// Decompression limits for .npz evaluation data (src/io/npz.ts), and .npy lengths: an archive of a
// few MB that claims gigabytes is refused from its headers, before anything is inflated.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readNpz } from '../../src/io/npz.js';
import { parseNpy } from '../../src/io/testdata.js';
import { ROOT, fixture, scratch } from '../helpers.js';

const dir = scratch();
const GiB = 2 ** 30;

/** A .npy header (format 1.0, padded to 128 bytes as numpy does) for float32 data of `shape`. */
function npyHeader(shape: number[]): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const text = dict.padEnd(128 - 10 - 1, ' ') + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre.writeUInt16LE(text.length, 8);
  return Buffer.concat([pre, Buffer.from(text, 'latin1')]);
}

/**
 * Raw deflate of `prefix` followed by `zeros` zero bytes, built without ever holding the zeros: full
 * flushes make byte-aligned pieces that do not refer back, so one deflated 64 MiB piece repeats.
 */
function deflatedZeros(prefix: Buffer, zeros: number): Buffer {
  const flush = { finishFlush: constants.Z_FULL_FLUSH };
  const piece = 64 * 2 ** 20;
  const parts = [deflateRawSync(prefix, flush)];
  const whole = deflateRawSync(Buffer.alloc(piece), flush);
  for (let n = 0; n < Math.floor(zeros / piece); n++) parts.push(whole);
  if (zeros % piece) parts.push(deflateRawSync(Buffer.alloc(zeros % piece), flush));
  parts.push(deflateRawSync(Buffer.alloc(0)));
  return Buffer.concat(parts);
}

/** A zip of one deflated entry whose headers declare `size` bytes (the local header may say `localSize`). */
function zip(name: string, body: Buffer, size: number, localSize = size): Buffer {
  const n = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(body.length, 18);
  local.writeUInt32LE(localSize, 22);
  local.writeUInt16LE(n.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(body.length, 20);
  central.writeUInt32LE(size, 24);
  central.writeUInt16LE(n.length, 28);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + n.length, 12);
  end.writeUInt32LE(30 + n.length + body.length, 16);
  return Buffer.concat([local, n, body, central, n, end]);
}

/**
 * readNpz in a process of its own (the built code): the error, the time it took, and the process's
 * peak memory, which a test process shared with other tests could not show.
 */
function readInChild(path: string): { message: string; ms: number; peak: number } {
  const script = `import(${JSON.stringify(join(ROOT, 'dist', 'io', 'npz.js'))}).then((m) => {
    const start = Date.now();
    let message = 'read';
    try { m.readNpz(${JSON.stringify(path)}); } catch (e) { message = e.name + ': ' + e.message; }
    console.log(JSON.stringify({ message, ms: Date.now() - start, peak: process.resourceUsage().maxRSS * 1024 }));
  });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  expect(r.signal).toBeNull();
  return JSON.parse(r.stdout);
}

describe('.npz decompression limits', () => {
  // 3 GiB of float32 zeros, deflated to about 3 MB.
  const big = [805_306_368];
  const bigBytes = 128 + 3 * GiB;

  it('a 3 MB archive declaring 3 GiB is refused from its headers, fast and in little memory', () => {
    const path = join(dir, 'bomb.npz');
    writeFileSync(path, zip('input.npy', deflatedZeros(npyHeader(big), 3 * GiB), bigBytes));
    const r = readInChild(path);
    expect(r.message).toMatch(
      /^InputError: \S*bomb\.npz:input\.npy: the archive's arrays take 3221225600 bytes, over the \d+ (GiB|MiB|bytes) limit for a data file$/,
    );
    expect(r.ms).toBeLessThan(1000);
    expect(r.peak).toBeLessThan(300 * 2 ** 20);
    // The CLI: one line, exit 1.
    const cli = spawnSync(
      process.execPath,
      [
        join(ROOT, 'bin', 'onnxpress'),
        'eval',
        fixture('digits', 'model.onnx'),
        '--reference',
        fixture('digits', 'model.onnx'),
        '--data',
        path,
        '--runs',
        '0',
      ],
      { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' },
    );
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli.stderr).toMatch(/over the .* limit for a data file/);
    expect(cli.status).toBe(1);
  });

  it('an archive whose zip headers declare 4 kB but whose .npy header claims 3 GiB is refused before inflating', () => {
    const path = join(dir, 'lying-zip.npz');
    writeFileSync(path, zip('input.npy', deflatedZeros(npyHeader(big), 3 * GiB), 4224));
    const r = readInChild(path);
    expect(r.message).toMatch(/input\.npy: shape \(805306368\) needs 3221225600 bytes with its header, the zip declares 4224$/);
    expect(r.ms).toBeLessThan(1000);
    expect(r.peak).toBeLessThan(300 * 2 ** 20);
  });

  it('an entry that inflates past its declared size stops there', () => {
    const path = join(dir, 'lying-data.npz');
    writeFileSync(path, zip('input.npy', deflatedZeros(npyHeader([1024]), 3 * GiB), 128 + 4096));
    const r = readInChild(path);
    expect(r.message).toMatch(/input\.npy: inflates to more than the 4224 bytes the zip declares$/);
    expect(r.ms).toBeLessThan(1000);
    expect(r.peak).toBeLessThan(300 * 2 ** 20);
  });

  it('an entry that inflates to less than declared, local and central headers that disagree, damaged data', () => {
    const header = npyHeader([1024]);
    const path = join(dir, 'short.npz');
    writeFileSync(path, zip('input.npy', deflatedZeros(header, 4000), 128 + 4096));
    expect(() => readNpz(path)).toThrow(/input\.npy: inflates to 4128 bytes, the zip declares 4224$/);
    writeFileSync(path, zip('input.npy', deflatedZeros(header, 4096), 128 + 4096, 100));
    expect(() => readNpz(path)).toThrow(/local header \(100 bytes, \d+ compressed\) disagrees with its directory \(4224, \d+\)/);
    const body = deflatedZeros(header, 4096);
    body.fill(0xff, 40, 60);
    writeFileSync(path, zip('input.npy', body, 128 + 4096));
    expect(() => readNpz(path)).toThrow(/input\.npy: (damaged compressed data|inflates)/);
  });
});

describe('.npy lengths', () => {
  const header = npyHeader([64]);
  it('the values must fill the file exactly: shape × dtype against its length', () => {
    expect(parseNpy(Buffer.concat([header, Buffer.alloc(256)]), 'ok.npy').dims).toEqual([64]);
    expect(() => parseNpy(Buffer.concat([header, Buffer.alloc(256 + 5)]), 'long.npy')).toThrow(
      /^long\.npy: shape \(64\) needs 256 bytes of values, the file holds 261$/,
    );
    expect(() => parseNpy(Buffer.concat([header, Buffer.alloc(100)]), 'short.npy')).toThrow(
      /^short\.npy: shape \(64\) needs 256 bytes of values, the file holds 100$/,
    );
  });

  it('a shape that is not whole numbers is refused', () => {
    const bad = Buffer.from(npyHeader([64]).toString('latin1').replace('(64,)', '(-1,)'), 'latin1');
    expect(() => parseNpy(Buffer.concat([bad, Buffer.alloc(4)]), 'neg.npy')).toThrow(/neg\.npy: unreadable \.npy shape/);
  });
});
