// Crafted hostile cases, one or more for each class that an attack probe found (issue 25): data
// loss, writes and reads outside the allowed folders, hangs, crashes, memory, wrong data accepted,
// "internal error", leftovers, terminal escapes, stray files. Each case builds its files in a fresh
// folder and names the command to run and the outcome expected; scripts/crafted-lib.mjs runs it
// and checks everything else (one-line error, nothing outside touched, no leftovers, …).
// `heavy` cases take seconds or hundreds of MB; `npm test` runs the others, `npm run fuzz` all.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDeflateRaw, deflateRawSync } from 'node:zlib';
import { encode } from '../dist/io/codec.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const DIGITS = join(ROOT, 'fixtures', 'digits', 'model.onnx');
const DIGITS_SET = join(ROOT, 'fixtures', 'digits', 'test_data_set_0');
const FLOAT = 1,
  INT64 = 7,
  BOOL = 9;

// Small model builders (protobuf messages as plain objects, encoded by the project's codec).
const dims = (shape) => ({ dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) });
const value = (name, shape = [1], elem = FLOAT) => ({ name, type: { tensor_type: { elem_type: elem, shape: dims(shape) } } });
const node = (op_type, input, output, extra = {}) => ({ op_type, input, output, ...extra });
const tensor = (name, shape, data_type, raw) => ({ name, dims: shape, data_type, raw_data: raw });
const f32 = (values) => new Uint8Array(Float32Array.from(values).buffer);
function model(graph, { ir = 8, opset = 13, functions = [], imports = [] } = {}) {
  return {
    ir_version: ir,
    producer_name: 'crafted',
    opset_import: [{ domain: '', version: opset }, ...imports],
    graph: { name: 'g', initializer: [], ...graph },
    functions,
  };
}
const save = (path, m) => {
  writeFileSync(path, encode('onnx.ModelProto', m));
  return path;
};
/** y = x + 1 on a [1] float. */
const addOne = (dir, name = 'add.onnx') =>
  save(
    join(dir, name),
    model({
      node: [node('Add', ['x', 'one'], ['y'])],
      input: [value('x')],
      output: [value('y')],
      initializer: [tensor('one', [1], FLOAT, f32([1]))],
    }),
  );
const copyDigits = (dir, name = 'model.onnx') => {
  const p = join(dir, name);
  copyFileSync(DIGITS, p);
  return p;
};
const same = (path, bytes) => (existsSync(path) && Buffer.compare(readFileSync(path), bytes) === 0 ? undefined : `${path} changed`);
const missing = (path) => (existsSync(path) ? `${path} was left behind` : undefined);
const fifo = (path) => {
  execFileSync('mkfifo', [path]);
  return path;
};
const evalArgs = (m, ...rest) => ['eval', m, '--reference', m, '--runs', '0', '--batches', '1', ...rest];
/** A TensorProto file holding a [1] float named x. */
const inputPb = (path, v = 0) => writeFileSync(path, encode('onnx.TensorProto', tensor('x', [1], FLOAT, f32([v]))));

/** A zip (as numpy's .npz) with one stored-deflated entry; `declared` overrides the uncompressed size in its headers. */
function npz(entryName, deflated, { crc = 0, uncompressed, declared = uncompressed }) {
  const name = Buffer.from(entryName);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(deflated.length, 18);
  local.writeUInt32LE(declared, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(deflated.length, 20);
  central.writeUInt32LE(declared, 24);
  central.writeUInt16LE(name.length, 28);
  const body = Buffer.concat([local, name, deflated]);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + name.length, 12);
  end.writeUInt32LE(body.length, 16);
  return Buffer.concat([body, central, name, end]);
}
/** An .npy header for a float32 array of `count` elements, padded as numpy pads it. */
function npyHeader(count) {
  let text = `{'descr': '<f4', 'fortran_order': False, 'shape': (${count},), }`;
  text += ' '.repeat(63 - ((10 + text.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from('\x93NUMPY').copy(head);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(text.length, 8);
  return Buffer.concat([head, Buffer.from(text, 'latin1')]);
}
/** Deflates an .npy header followed by `zeros` zero bytes, in pieces (3 GiB of zeros → ~3 MB). */
async function deflatedZeros(count) {
  const d = createDeflateRaw({ level: 9 });
  const parts = [];
  d.on('data', (c) => parts.push(c));
  const ended = new Promise((r) => d.on('end', r));
  d.write(npyHeader(count));
  const chunk = Buffer.alloc(1 << 24);
  for (let left = count * 4; left > 0; left -= chunk.length) {
    if (!d.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await new Promise((r) => d.once('drain', r));
  }
  d.end();
  await ended;
  return Buffer.concat(parts);
}

/** The digits model with its input and first weight renamed to hostile text (and the weight's shape broken when asked). */
function hostileNames(dir, brokenShape) {
  const HOSTILE = '\u001b[2J\u001b[31mred\nforged line\u009b1m';
  const bytes = readFileSync(DIGITS);
  return import('../dist/io/codec.js').then(({ decode }) => {
    const proto = decode('onnx.ModelProto', bytes);
    const g = proto.graph;
    const rename = (from, to) => {
      for (const n of g.node) n.input = n.input.map((x) => (x === from ? to : x));
      for (const v of [...g.input, ...g.initializer]) if (v.name === from) v.name = to;
    };
    rename(g.input[0].name, HOSTILE);
    rename(g.initializer[0].name, HOSTILE + 'x'.repeat(300_000));
    if (brokenShape) g.initializer[0].dims = [999];
    return save(join(dir, 'hostile.onnx'), proto);
  });
}

export const CRAFTED = [
  // Data loss: a user's file replaced without --force, or an input replaced at all.
  {
    kind: 'data loss',
    name: '--report naming the input (through a .json alias), with --force',
    setup(dir) {
      const m = copyDigits(dir);
      symlinkSync('model.onnx', join(dir, 'model.json'));
      const bytes = readFileSync(m);
      return {
        args: ['compress', m, '-o', join(dir, 'out.onnx'), '--report', join(dir, 'model.json'), '--force'],
        exit: 2,
        check: () => same(m, bytes),
      };
    },
  },
  {
    kind: 'data loss',
    name: 'an existing OUT.data without --force',
    setup(dir) {
      const m = copyDigits(dir);
      writeFileSync(join(dir, 'out.onnx.data'), 'precious');
      return {
        args: ['compress', m, '-o', join(dir, 'out.onnx'), '--external-data'],
        exit: 2,
        check: () => same(join(dir, 'out.onnx.data'), Buffer.from('precious')),
      };
    },
  },
  {
    kind: 'data loss',
    name: 'an existing --location file without --force',
    setup(dir) {
      const m = copyDigits(dir);
      writeFileSync(join(dir, 'w.bin'), 'precious');
      return {
        args: ['compress', m, '-o', join(dir, 'out.onnx'), '--external-data', '--location', 'w.bin'],
        exit: 2,
        check: () => same(join(dir, 'w.bin'), Buffer.from('precious')),
      };
    },
  },
  {
    kind: 'data loss',
    name: 'OUT.data a symlink to a file outside, with --force: the link is replaced, the file kept',
    setup(dir, outside) {
      const m = copyDigits(dir);
      symlinkSync(join(outside, 'victim.onnx'), join(dir, 'out.onnx.data'));
      return {
        args: ['compress', m, '-o', join(dir, 'out.onnx'), '--external-data', '--force'],
        exit: 0,
        check: () => (lstatSync(join(dir, 'out.onnx.data')).isFile() ? undefined : 'the link was not replaced'),
      };
    },
  },
  {
    kind: 'data loss',
    name: 'an existing --report without --force',
    setup(dir) {
      const m = copyDigits(dir);
      writeFileSync(join(dir, 'r.md'), 'mine');
      return {
        args: ['compress', m, '-o', join(dir, 'out.onnx'), '--report', join(dir, 'r.md')],
        exit: 2,
        check: () => same(join(dir, 'r.md'), Buffer.from('mine')) ?? missing(join(dir, 'out.onnx')),
      };
    },
  },
  {
    kind: 'data loss',
    name: '-o SUB/../model.onnx with SUB missing, over an existing file',
    setup(dir) {
      const m = copyDigits(dir);
      const bytes = readFileSync(m);
      return {
        args: ['compress', DIGITS, '-o', `${dir}/sub/../model.onnx`, '--quantize', 'int8'],
        exit: 2,
        check: () => same(m, bytes) ?? missing(join(dir, 'sub')),
      };
    },
  },
  {
    kind: 'data loss',
    name: '-o a device (through a symlink to /dev/null), with --force',
    setup(dir) {
      symlinkSync('/dev/null', join(dir, 'null.onnx'));
      return {
        args: ['compress', DIGITS, '-o', join(dir, 'null.onnx'), '--force'],
        exit: 2,
        check: () => (lstatSync('/dev/null').isCharacterDevice() ? undefined : '/dev/null replaced'),
      };
    },
  },
  {
    kind: 'data loss',
    name: '-o a FIFO, with --force',
    setup(dir) {
      fifo(join(dir, 'f.onnx'));
      return {
        args: ['compress', DIGITS, '-o', join(dir, 'f.onnx'), '--force'],
        exit: 2,
        check: () => (lstatSync(join(dir, 'f.onnx')).isFIFO() ? undefined : 'the FIFO was replaced'),
      };
    },
  },

  // Writes outside the output's folder.
  {
    kind: 'write outside',
    name: "sweep --out DIR with a job's recipe name planted as a symlink to a file elsewhere",
    timeoutMs: 60_000,
    setup(dir, outside) {
      mkdirSync(join(dir, 'out'));
      symlinkSync(join(outside, 'victim.onnx'), join(dir, 'out', 'job-001.recipe.json'));
      return {
        args: ['sweep', DIGITS, '--grid', 'quantize=int8', '--out', join(dir, 'out'), '--runs', '0', '--batches', '1'],
        exit: 0,
        check: () => (lstatSync(join(dir, 'out', 'job-001.recipe.json')).isFile() ? undefined : 'the planted link is still there'),
      };
    },
  },
  {
    kind: 'write outside',
    name: '--location lnk/evil.data with lnk a symlink to a folder elsewhere',
    setup(dir, outside) {
      mkdirSync(join(outside, 'target'), { recursive: true });
      symlinkSync(join(outside, 'target'), join(dir, 'lnk'));
      return { args: ['compress', DIGITS, '-o', join(dir, 'out.onnx'), '--external-data', '--location', 'lnk/evil.data'], exit: 2 };
    },
  },
  {
    kind: 'write outside',
    name: '-o a symlink to a file elsewhere, without --force',
    setup(dir, outside) {
      symlinkSync(join(outside, 'victim.onnx'), join(dir, 'out.onnx'));
      return { args: ['compress', DIGITS, '-o', join(dir, 'out.onnx')], exit: 2 };
    },
  },

  // Reads outside the data folder.
  {
    kind: 'read outside',
    name: 'test_data_set_0 a symlink to a folder outside --data',
    setup(dir, outside) {
      const m = addOne(dir);
      mkdirSync(join(outside, 'set'), { recursive: true });
      inputPb(join(outside, 'set', 'input_0.pb'));
      mkdirSync(join(dir, 'data'));
      symlinkSync(join(outside, 'set'), join(dir, 'data', 'test_data_set_0'));
      return { args: evalArgs(m, '--data', join(dir, 'data')), exit: 1, stderr: /outside/ };
    },
  },
  {
    kind: 'read outside',
    name: 'labels.pb beside a test set, symlinked outside',
    setup(dir, outside) {
      const m = addOne(dir);
      mkdirSync(join(dir, 'data', 'test_data_set_0'), { recursive: true });
      inputPb(join(dir, 'data', 'test_data_set_0', 'input_0.pb'));
      writeFileSync(join(outside, 'labels.pb'), encode('onnx.TensorProto', tensor('labels', [1], INT64, new Uint8Array(8))));
      symlinkSync(join(outside, 'labels.pb'), join(dir, 'data', 'test_data_set_0', 'labels.pb'));
      return { args: evalArgs(m, '--data', join(dir, 'data')), exit: 1, stderr: /outside/ };
    },
  },
  {
    kind: 'read outside',
    name: 'input_0.pb a symlink to a secret outside',
    setup(dir, outside) {
      const m = addOne(dir);
      mkdirSync(join(dir, 'data', 'test_data_set_0'), { recursive: true });
      symlinkSync(join(outside, 'secrets', 'secret.txt'), join(dir, 'data', 'test_data_set_0', 'input_0.pb'));
      return { args: evalArgs(m, '--data', join(dir, 'data')), exit: 1, stderr: /outside/ };
    },
  },

  // Hangs.
  {
    kind: 'hang',
    name: 'input_0.pb a FIFO',
    timeoutMs: 20_000,
    setup(dir) {
      const m = addOne(dir);
      mkdirSync(join(dir, 'data', 'test_data_set_0'), { recursive: true });
      fifo(join(dir, 'data', 'test_data_set_0', 'input_0.pb'));
      return { args: evalArgs(m, '--data', join(dir, 'data')), exit: 1 };
    },
  },
  {
    kind: 'hang',
    name: '--labels a FIFO',
    timeoutMs: 20_000,
    setup(dir) {
      return { args: evalArgs(DIGITS, '--data', DIGITS_SET, '--labels', fifo(join(dir, 'labels.txt'))), exit: 1 };
    },
  },
  {
    kind: 'hang',
    name: 'the model a FIFO',
    timeoutMs: 20_000,
    setup(dir) {
      return { args: ['inspect', fifo(join(dir, 'model.onnx'))], exit: 1 };
    },
  },
  {
    kind: 'hang',
    name: '--recipe a FIFO',
    timeoutMs: 20_000,
    setup(dir) {
      return { args: ['compress', DIGITS, '-o', join(dir, 'out.onnx'), '--recipe', fifo(join(dir, 'r.yaml'))], exit: [1, 2] };
    },
  },
  {
    kind: 'hang',
    name: 'eval of a Loop with trip count 2^63−1 (--eval-timeout 3)',
    timeoutMs: 40_000,
    setup(dir) {
      const body = {
        name: 'body',
        node: [node('Add', ['x_in', 'one'], ['x_out']), node('Identity', ['c_in'], ['c_out'])],
        input: [value('i', [], INT64), value('c_in', [], BOOL), value('x_in')],
        output: [value('c_out', [], BOOL), value('x_out')],
        initializer: [tensor('one', [1], FLOAT, f32([1]))],
      };
      const trips = new Uint8Array(new BigInt64Array([2n ** 63n - 1n]).buffer);
      const m = save(
        join(dir, 'loop.onnx'),
        model({
          node: [node('Loop', ['M', 'c', 'x'], ['y'], { attribute: [{ name: 'body', type: 5, g: body }] })],
          input: [value('x')],
          output: [value('y')],
          initializer: [tensor('M', [], INT64, trips), tensor('c', [], BOOL, new Uint8Array([1]))],
        }),
      );
      return { args: [...evalArgs(m), '--eval-timeout', '3'], exit: 1, stderr: /eval-timeout/ };
    },
  },

  // Crashes inside ONNX Runtime.
  {
    kind: 'crash',
    name: 'eval of 20,000 chained model-local functions',
    timeoutMs: 60_000,
    setup(dir) {
      const functions = [];
      for (let i = 0; i < 20_000; i++) {
        const call = i === 19_999 ? node('Identity', ['a'], ['b']) : node(`f${i + 1}`, ['a'], ['b'], { domain: 'local' });
        functions.push({
          name: `f${i}`,
          domain: 'local',
          input: ['a'],
          output: ['b'],
          node: [call],
          opset_import: [
            { domain: '', version: 13 },
            { domain: 'local', version: 1 },
          ],
        });
      }
      const m = save(
        join(dir, 'chain.onnx'),
        model(
          { node: [node('f0', ['x'], ['y'], { domain: 'local' })], input: [value('x')], output: [value('y')] },
          { functions, imports: [{ domain: 'local', version: 1 }] },
        ),
      );
      return { args: evalArgs(m), exit: 1 };
    },
  },

  // Memory.
  {
    kind: 'memory',
    name: 'a 3 MB .npz that inflates to 3 GiB',
    heavy: true,
    maxRssMb: 700,
    timeoutMs: 60_000,
    async setup(dir) {
      const count = 3 * 2 ** 28; // float32 elements: 3 GiB
      const deflated = await deflatedZeros(count);
      writeFileSync(join(dir, 'bomb.npz'), npz('x.npy', deflated, { uncompressed: (count * 4 + 128) >>> 0 }));
      return { args: evalArgs(addOne(dir), '--data', join(dir, 'bomb.npz')), exit: 1 };
    },
  },
  {
    kind: 'memory',
    name: 'an .npz whose entry inflates past the size its headers declare',
    maxRssMb: 700,
    setup(dir) {
      const deflated = deflateRawSync(Buffer.concat([npyHeader(16 << 20), Buffer.alloc(64 << 20)]));
      writeFileSync(join(dir, 'liar.npz'), npz('x.npy', deflated, { uncompressed: 1024 }));
      return { args: evalArgs(addOne(dir), '--data', join(dir, 'liar.npz')), exit: 1 };
    },
  },
  {
    kind: 'memory',
    name: '1,000,000 Identity nodes: compress and eval',
    heavy: true,
    maxRssMb: 1500,
    timeoutMs: 120_000,
    setup(dir) {
      const nodes = [];
      for (let i = 0; i < 1_000_000; i++) nodes.push(node('Identity', [i === 0 ? 'x' : `t${i - 1}`], [i === 999_999 ? 'y' : `t${i}`]));
      const m = save(join(dir, 'million.onnx'), model({ node: nodes, input: [value('x')], output: [value('y')] }));
      return { args: evalArgs(m), exit: 1 };
    },
  },

  // Wrong data accepted.
  ...[
    ['inspect'],
    ['compress', '-o', 'out.onnx'],
    ['compress', '-o', 'out.onnx', '--quantize', 'int4'],
    ['compress', '-o', 'out.onnx', '--quantize', 'int8'],
  ].flatMap((cmd) =>
    [
      [
        'dims [0, 64] with 16 kB of data',
        (t) => {
          t.dims = [0, 64];
          t.raw_data = new Uint8Array(16384);
        },
      ],
      [
        'float_data with 10 values for [64, 64]',
        (t) => {
          t.dims = [64, 64];
          delete t.raw_data;
          t.float_data = Array.from({ length: 10 }, () => 0.5);
        },
      ],
      [
        'float_data with 5000 values for [64, 64]',
        (t) => {
          t.dims = [64, 64];
          delete t.raw_data;
          t.float_data = Array.from({ length: 5000 }, () => 0.5);
        },
      ],
    ].map(([what, change]) => ({
      kind: 'accepted though wrong',
      name: `${cmd.slice(0, 1).concat(cmd.slice(3)).join(' ')}: ${what}`,
      setup(dir) {
        const w = tensor('w', [64, 64], FLOAT, new Uint8Array(16384));
        change(w);
        const m = save(
          join(dir, 'wrong.onnx'),
          model({
            node: [node('MatMul', ['x', 'w'], ['y'])],
            input: [value('x', [1, 64])],
            output: [value('y', [1, 64])],
            initializer: [w],
          }),
        );
        return { args: [cmd[0], m, ...cmd.slice(1).map((a) => (a === 'out.onnx' ? join(dir, a) : a))], exit: 1 };
      },
    })),
  ),

  // "internal error" for models ONNX Runtime refuses, and other hostile inputs.
  ...[
    [
      'a cycle',
      () =>
        model({
          node: [node('Add', ['x', 'b'], ['a']), node('Relu', ['a'], ['b']), node('Identity', ['a'], ['y'])],
          input: [value('x')],
          output: [value('y')],
        }),
    ],
    [
      'no opset import for its domain',
      () => model({ node: [node('Foo', ['x'], ['y'], { domain: 'nowhere' })], input: [value('x')], output: [value('y')] }),
    ],
    ['IR version 99', () => model({ node: [node('Identity', ['x'], ['y'])], input: [value('x')], output: [value('y')] }, { ir: 99 })],
    [
      'recursive model-local functions',
      () =>
        model(
          { node: [node('f', ['x'], ['y'], { domain: 'local' })], input: [value('x')], output: [value('y')] },
          {
            imports: [{ domain: 'local', version: 1 }],
            functions: [
              {
                name: 'f',
                domain: 'local',
                input: ['a'],
                output: ['b'],
                node: [node('g', ['a'], ['b'], { domain: 'local' })],
                opset_import: [{ domain: 'local', version: 1 }],
              },
              {
                name: 'g',
                domain: 'local',
                input: ['a'],
                output: ['b'],
                node: [node('f', ['a'], ['b'], { domain: 'local' })],
                opset_import: [{ domain: 'local', version: 1 }],
              },
            ],
          },
        ),
    ],
    [
      'a sparse initializer with indices out of range',
      () =>
        model({
          node: [node('Add', ['x', 's'], ['y'])],
          input: [value('x', [4])],
          output: [value('y', [4])],
          sparse_initializer: [
            {
              dims: [4],
              values: tensor('s', [1], FLOAT, f32([1])),
              indices: tensor('', [1], INT64, new Uint8Array(new BigInt64Array([99n]).buffer)),
            },
          ],
        }),
    ],
    ['an unknown operator', () => model({ node: [node('NoSuchOp', ['x'], ['y'])], input: [value('x')], output: [value('y')] })],
  ].map(([what, build]) => ({
    kind: 'internal error',
    name: `eval of a model with ${what}`,
    setup(dir) {
      return { args: evalArgs(save(join(dir, 'bad.onnx'), build())), exit: 1 };
    },
  })),
  {
    kind: 'internal error',
    name: 'eval with --data of the wrong dtype and rank',
    setup(dir) {
      const m = addOne(dir);
      mkdirSync(join(dir, 'data', 'test_data_set_0'), { recursive: true });
      writeFileSync(
        join(dir, 'data', 'test_data_set_0', 'input_0.pb'),
        encode('onnx.TensorProto', tensor('x', [2, 2], INT64, new Uint8Array(32))),
      );
      return { args: evalArgs(m, '--data', join(dir, 'data')), exit: 1, stderr: /\bx\b/ };
    },
  },
  {
    kind: 'internal error',
    name: 'eval of two models with different inputs',
    setup(dir) {
      return { args: ['eval', addOne(dir), '--reference', DIGITS, '--runs', '0', '--batches', '1'], exit: 1 };
    },
  },
  {
    kind: 'internal error',
    name: 'a folder as input_0.pb',
    setup(dir) {
      const m = addOne(dir);
      mkdirSync(join(dir, 'data', 'test_data_set_0', 'input_0.pb'), { recursive: true });
      return { args: evalArgs(m, '--data', join(dir, 'data')), exit: 1 };
    },
  },
  {
    kind: 'internal error',
    name: 'a huge declared input, synthesized',
    setup(dir) {
      const m = save(
        join(dir, 'huge.onnx'),
        model({
          node: [node('Identity', ['x'], ['y'])],
          input: [value('x', [1_000_000, 1_000_000])],
          output: [value('y', [1_000_000, 1_000_000])],
        }),
      );
      return { args: evalArgs(m), exit: [1, 2] };
    },
  },
  {
    kind: 'internal error',
    name: 'an output folder that cannot be created (/proc)',
    timeoutMs: 20_000,
    setup() {
      return { args: ['compress', DIGITS, '-o', '/proc/nope/deeper/out.onnx'], exit: 1 };
    },
  },
  {
    kind: 'internal error',
    name: 'the kernels under a 3 GB address-space limit',
    setup(dir) {
      return { args: ['compress', DIGITS, '-o', join(dir, 'out.onnx'), '--quantize', 'int8'], addressSpaceKb: 3_000_000, exit: [0, 1] };
    },
  },

  // Left behind after a failure.
  {
    kind: 'left behind',
    name: 'compress --eval with unreadable evaluation data writes no output',
    setup(dir) {
      writeFileSync(join(dir, 'bad.npz'), 'not a zip');
      return {
        args: ['compress', DIGITS, '-o', join(dir, 'out.onnx'), '--quantize', 'int8', '--eval', '--data', join(dir, 'bad.npz')],
        exit: 1,
        check: () => missing(join(dir, 'out.onnx')),
      };
    },
  },
  {
    kind: 'left behind',
    name: '--report into a missing folder: the folder is made',
    setup(dir) {
      return {
        args: ['compress', DIGITS, '-o', join(dir, 'out.onnx'), '--report', join(dir, 'new', 'r.json')],
        exit: 0,
        check: () => (existsSync(join(dir, 'new', 'r.json')) ? undefined : 'no report'),
      };
    },
  },
  {
    kind: 'left behind',
    name: 'a failing run removes the output folder it made',
    setup(dir) {
      writeFileSync(join(dir, 'bad.onnx'), 'garbage');
      return {
        args: ['compress', join(dir, 'bad.onnx'), '-o', join(dir, 'made', 'out.onnx')],
        exit: 1,
        check: () => missing(join(dir, 'made')),
      };
    },
  },

  // Terminal safety.
  {
    kind: 'terminal',
    name: 'inspect of names with ANSI escapes and newlines',
    async setup(dir) {
      return {
        args: ['inspect', await hostileNames(dir, false)],
        exit: 0,
        check: (_d, r) => (/^forged line/m.test(r.stdout) ? 'a forged line printed' : undefined),
      };
    },
  },
  {
    kind: 'terminal',
    name: 'the compress report of such names',
    async setup(dir) {
      return { args: ['compress', await hostileNames(dir, false), '-o', join(dir, 'out.onnx'), '--quantize', 'int8:min-size=0'], exit: 0 };
    },
  },
  {
    kind: 'terminal',
    name: 'an error naming a 300 kB hostile name',
    async setup(dir) {
      return { args: ['inspect', await hostileNames(dir, true)], exit: 1 };
    },
  },

  // Stray files: ONNX Runtime's telemetry.
  {
    kind: 'stray files',
    name: 'eval writes nothing to $HOME or /tmp',
    setup() {
      return { args: evalArgs(DIGITS, '--runs', '2'), exit: 0 };
    },
  },

  // A user's mistakes (issue 21): one line naming the file, input or option, exit 1 or 2, never "internal error".
  ...[
    ['--threads abc without --eval', (d) => ['compress', DIGITS, '-o', join(d, 'o.onnx'), '--threads', 'abc'], 2],
    ['--threads 1000 without --eval', (d) => ['compress', DIGITS, '-o', join(d, 'o.onnx'), '--threads', '1000'], 2],
    ['int4 block=48', (d) => ['compress', DIGITS, '-o', join(d, 'o.onnx'), '--quantize', 'int4:block=48'], 2],
    ['nm n=4,m=4', (d) => ['compress', DIGITS, '-o', join(d, 'o.onnx'), '--prune', 'nm:n=4,m=4'], 2],
    [
      'int8 calibration= a missing folder',
      (d) => ['compress', DIGITS, '-o', join(d, 'o.onnx'), '--quantize', 'int8:calibration=/missing'],
      2,
    ],
    ['an unknown pass option', (d) => ['compress', DIGITS, '-o', join(d, 'o.onnx'), '--quantize', 'int8:nope=1'], 2],
    ['a report with no known extension', (d) => ['compress', DIGITS, '-o', join(d, 'o.onnx'), '--report', join(d, 'r.txt')], 2],
    ['a model that does not exist', (d) => ['compress', join(d, 'missing.onnx'), '-o', join(d, 'o.onnx')], 1],
    [
      'a text file as the model',
      (d) => {
        writeFileSync(join(d, 'notes.onnx'), 'hello');
        return ['inspect', join(d, 'notes.onnx')];
      },
      1,
    ],
    ['--data that does not exist', (d) => evalArgs(DIGITS, '--data', join(d, 'nothing')), 1],
    ['--data of another model', () => evalArgs(join(ROOT, 'fixtures', 'charlm', 'model.onnx'), '--data', DIGITS_SET), 1],
    [
      '--labels with too few labels',
      (d) => {
        writeFileSync(join(d, 'l.txt'), '1\n2\n');
        return evalArgs(DIGITS, '--data', DIGITS_SET, '--labels', join(d, 'l.txt'));
      },
      [1, 2],
    ],
    ['a malformed --dim', () => evalArgs(DIGITS, '--dim', 'N'), 2],
    ['--eval-timeout 0', () => evalArgs(DIGITS, '--eval-timeout', '0'), 2],
    ['a gate without --eval', (d) => ['compress', DIGITS, '-o', join(d, 'o.onnx'), '--min-cosine', '0.9'], 2],
    [
      'a recipe with an unknown key',
      (d) => {
        writeFileSync(join(d, 'r.yaml'), 'passes:\n  - quantize: {method: int8, bits: 3}\n');
        return ['compress', DIGITS, '-o', join(d, 'o.onnx'), '--recipe', join(d, 'r.yaml')];
      },
      2,
    ],
    ['merge of a file that is not a sweep report', () => ['merge', DIGITS], 1],
    ['conformance of a folder without models', (d) => ['conformance', d], 1],
    ['a sweep grid with an unknown method', () => ['sweep', DIGITS, '--grid', 'quantize=int9'], 2],
  ].map(([what, args, exit]) => ({
    kind: 'user mistake',
    name: what,
    setup(dir) {
      return { args: args(dir), exit, check: () => missing(join(dir, 'o.onnx')) };
    },
  })),
];
