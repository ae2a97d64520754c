// The output-path policy (src/io/output-path.ts), met where users meet it: the command line.
// Each case is one that replaced, lost or wrote outside a user's files before the policy.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, cli, fixture, scratch } from '../helpers.js';

const root = scratch();
const DIGITS = fixture('digits', 'model.onnx');
let n = 0;
/** A fresh folder holding a copy of the digits model as model.onnx. */
function folder(): { dir: string; model: string } {
  const dir = join(root, `case-${n++}`);
  mkdirSync(dir, { recursive: true });
  const model = join(dir, 'model.onnx');
  copyFileSync(DIGITS, model);
  return { dir, model };
}
const original = readFileSync(DIGITS);
const oneLine = (stderr: string) => expect(stderr.trim().split('\n')).toHaveLength(1);

describe('no data loss', () => {
  it('refuses a --report that names the input model, even with --force, and the input stays', () => {
    const { dir, model } = folder();
    const alias = join(dir, 'model.json');
    symlinkSync('model.onnx', alias); // a report name with the right extension that is the input
    const r = cli(['compress', model, '-o', join(dir, 'out.onnx'), '--report', alias, '--force']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to replace an input/);
    expect(Buffer.compare(readFileSync(model), original)).toBe(0);
    expect(existsSync(join(dir, 'out.onnx'))).toBe(false);
  });

  it('refuses to replace an existing external data file without --force, and replaces it with --force', () => {
    const { dir, model } = folder();
    const out = join(dir, 'out.onnx');
    writeFileSync(out + '.data', 'precious');
    const r = cli(['compress', model, '-o', out, '--external-data']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/out\.onnx\.data: exists; pass --force/);
    expect(readFileSync(out + '.data', 'utf8')).toBe('precious');
    expect(existsSync(out)).toBe(false);
    expect(cli(['compress', model, '-o', out, '--external-data', '--force']).code).toBe(0);
    expect(readFileSync(out + '.data').length).toBeGreaterThan(100_000);
  });

  it('the file named by --location too, and a symlink there is replaced, never written through', () => {
    const { dir, model } = folder();
    const out = join(dir, 'out.onnx');
    const elsewhere = join(dir, 'elsewhere.bin');
    writeFileSync(elsewhere, 'keep');
    symlinkSync(elsewhere, join(dir, 'w.data'));
    const r = cli(['compress', model, '-o', out, '--external-data', '--location', 'w.data']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/w\.data: is a symbolic link; pass --force/);
    expect(cli(['compress', model, '-o', out, '--external-data', '--location', 'w.data', '--force']).code).toBe(0);
    expect(readFileSync(elsewhere, 'utf8')).toBe('keep');
    expect(lstatSync(join(dir, 'w.data')).isFile()).toBe(true);
  });

  it('refuses to replace an existing report without --force (compress, eval, auto recipe)', () => {
    const { dir, model } = folder();
    const report = join(dir, 'r.json');
    writeFileSync(report, 'mine');
    const c = cli(['compress', model, '-o', join(dir, 'out.onnx'), '--report', report]);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/r\.json: exists; pass --force to replace it with the report/);
    const e = cli(['eval', model, '--reference', model, '--runs', '0', '--batches', '1', '--report', report]);
    expect(e.code).toBe(2);
    expect(readFileSync(report, 'utf8')).toBe('mine');
    writeFileSync(join(dir, 'auto.onnx.recipe.yaml'), 'mine');
    const a = cli(['auto', model, '-o', join(dir, 'auto.onnx'), '--max-accuracy-drop', '0.01']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/recipe\.yaml: exists/);
    expect(readFileSync(join(dir, 'auto.onnx.recipe.yaml'), 'utf8')).toBe('mine');
    expect(cli(['eval', model, '--reference', model, '--runs', '0', '--batches', '1', '--report', report, '--force']).code).toBe(0);
    expect(JSON.parse(readFileSync(report, 'utf8')).command).toBe('eval');
  });

  it('refuses -o equal to the input without suggesting --force', () => {
    const { model } = folder();
    const r = cli(['compress', model, '-o', model]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to replace an input/);
    expect(r.stderr).not.toMatch(/--force/);
  });
});

describe('only regular files are replaced', () => {
  it('a folder, a FIFO, and a device behind a symlink are refused even with --force', () => {
    const { dir, model } = folder();
    mkdirSync(join(dir, 'a-folder.onnx'));
    execFileSync('mkfifo', [join(dir, 'fifo.onnx')]);
    symlinkSync('/dev/null', join(dir, 'null.onnx'));
    const cases: [string, RegExp][] = [
      ['a-folder.onnx', /is a directory/],
      ['fifo.onnx', /is a FIFO/],
      ['null.onnx', /is a character device \(through a symbolic link\)/],
    ];
    for (const [name, reason] of cases) {
      const r = cli(['compress', model, '-o', join(dir, name), '--force']);
      expect(r.code, name).toBe(2);
      expect(r.stderr).toMatch(reason);
      oneLine(r.stderr);
    }
    expect(lstatSync(join(dir, 'fifo.onnx')).isFIFO()).toBe(true);
    expect(readlinkSync(join(dir, 'null.onnx'))).toBe('/dev/null');
    expect(lstatSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('a dangling symlink is not replaced silently', () => {
    const { dir, model } = folder();
    symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling.onnx'));
    const r = cli(['compress', model, '-o', join(dir, 'dangling.onnx')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is a dangling symbolic link; pass --force/);
    expect(readlinkSync(join(dir, 'dangling.onnx'))).toBe(join(dir, 'nowhere'));
  });
});

describe('nothing written outside the output folder', () => {
  it('refuses --location through a symlink to a folder elsewhere', () => {
    const { dir, model } = folder();
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    mkdirSync(join(dir, 'out'));
    symlinkSync(outside, join(dir, 'out', 'lnk'));
    const r = cli(['compress', model, '-o', join(dir, 'out', 'm.onnx'), '--external-data', '--location', 'lnk/evil.data']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/would be written outside .*through a symbolic link/);
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(join(dir, 'out'))).toEqual(['lnk']);
  });

  it('creates the folder named in --location, as -o does', () => {
    const { dir, model } = folder();
    const out = join(dir, 'o', 'm.onnx');
    const r = cli(['compress', model, '-o', out, '--external-data', '--location', 'sub/w.data']);
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, 'o', 'sub', 'w.data'))).toBe(true);
    expect(cli(['inspect', out]).code).toBe(0);
  });
});

describe('no hang, no leftovers', () => {
  it('an output folder that cannot be created fails at once with one line (Node’s recursive mkdir spins under /proc)', () => {
    const { model } = folder();
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'onnxpress'), 'compress', model, '-o', '/proc/nope/deeper/out.onnx'], {
      encoding: 'utf8',
      timeout: 20_000,
      killSignal: 'SIGKILL',
    });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\/proc\/nope: cannot create the folder \(ENOENT\)/);
    oneLine(r.stderr);
  });

  it('-o …/sub/../model.onnx with sub missing is refused, creates no folder, and replaces nothing', () => {
    const { dir, model } = folder();
    // Not join(): it would remove the '..' that the kernel sees.
    const r = cli(['compress', DIGITS, '-o', `${dir}/sub/../model.onnx`, '--quantize', 'int8']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/'\.\.' below a folder that does not exist/);
    expect(existsSync(join(dir, 'sub'))).toBe(false);
    expect(Buffer.compare(readFileSync(model), original)).toBe(0);
  });

  it('a run that fails after creating the output folder removes it', () => {
    const { dir } = folder();
    writeFileSync(join(dir, 'bad.onnx'), 'not a model');
    const r = cli(['compress', join(dir, 'bad.onnx'), '-o', join(dir, 'new', 'deeper', 'out.onnx')]);
    expect(r.code).toBe(1);
    expect(existsSync(join(dir, 'new'))).toBe(false);
  });

  it('a report into a missing folder gets its folder, and one that cannot be written stops the run before the output', () => {
    const { dir, model } = folder();
    const ok = cli(['compress', model, '-o', join(dir, 'out.onnx'), '--report', join(dir, 'reports', 'r.md')]);
    expect(ok.code).toBe(0);
    expect(readFileSync(join(dir, 'reports', 'r.md'), 'utf8')).toMatch(/onnxpress compress/);
    writeFileSync(join(dir, 'file'), '');
    const bad = cli(['compress', model, '-o', join(dir, 'out2.onnx'), '--report', join(dir, 'file', 'r.md')]);
    expect(bad.code).toBe(2);
    expect(existsSync(join(dir, 'out2.onnx'))).toBe(false);
  });
});

describe('terminal safety: text from a model file is escaped and cut', () => {
  const HOSTILE = '\u001b[2J\u001b[31mred\nforged line\u009b1m\u202e';
  /** The digits model with its input and first weight renamed to `name` (and `long` for the weight). */
  async function renamed(dims?: number[]): Promise<string> {
    const { readModel } = await import('../../src/io/read.js');
    const { encode } = await import('../../src/io/codec.js');
    const model = readModel(DIGITS);
    const g = model.graph;
    const rename = (from: string, to: string) => {
      for (const node of g.node) node.input = node.input.map((x) => (x === from ? to : x));
      for (const v of [...g.input, ...g.initializer]) if (v.name === from) v.name = to;
    };
    rename(g.input[0]!.name!, HOSTILE);
    const weight = g.initializer[0]!;
    rename(weight.name!, `${HOSTILE}${'x'.repeat(300_000)}`);
    if (dims) weight.dims = dims;
    const path = join(root, `hostile-${n++}.onnx`);
    writeFileSync(path, encode('onnx.ModelProto', model.proto));
    return path;
  }
  const raw = /[\u001b\u009b\u202e]/;

  it('inspect and the compress report print names escaped, on their own lines', async () => {
    const model = await renamed();
    for (const args of [
      ['inspect', model],
      ['compress', model, '-o', join(root, `t-${n++}.onnx`), '--quantize', 'int8:min-size=0'],
    ]) {
      const r = cli(args);
      expect(r.code, args[0]).toBe(0);
      expect(r.stdout).not.toMatch(raw);
      expect(r.stdout).not.toMatch(/^forged line/m);
      expect(r.stdout).toContain('\\x1b[31mred\\nforged line');
      expect(Math.max(...r.stdout.split('\n').map((l) => l.length))).toBeLessThan(1000);
    }
  });

  it('JSON keeps the exact names, with the characters terminals act on escaped', async () => {
    const model = await renamed();
    const r = cli(['inspect', model, '--json']);
    expect(r.stdout).not.toMatch(raw);
    expect(JSON.parse(r.stdout).inputs[0].name).toBe(HOSTILE);
  });

  it('an error naming a hostile 300 kB tensor name is one short line', async () => {
    const model = await renamed([999]);
    const r = cli(['inspect', model]);
    expect(r.code).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).not.toMatch(raw);
    expect(r.stderr.length).toBeLessThan(1100);
  });
});
