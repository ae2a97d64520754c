// The input-path policy (src/io/input-path.ts) through the CLI: only regular files are read, a FIFO
// never blocks, and files found inside a data folder stay inside it.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { decodeModel } from '../../src/io/read.js';
import { ROOT, fixture, scratch } from '../helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');
const EVAL = ['eval', DIGITS, '--reference', DIGITS, '--runs', '0'];

/**
 * Runs the CLI with a short timeout, so that a read that blocks fails the test instead of hanging it:
 * SIGKILL, because a process blocked in open(2) on a FIFO never gets to run its SIGTERM handler.
 */
function run(args: string[]) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'onnxpress'), ...args], {
    encoding: 'utf8',
    timeout: 15_000,
    killSignal: 'SIGKILL',
  });
  return { code: r.status, signal: r.signal, stderr: r.stderr, seconds: (Date.now() - started) / 1000 };
}

/** Expects a prompt exit 1 with one line naming the file. */
function expectRefused(r: ReturnType<typeof run>, message: RegExp) {
  expect(r.signal, 'the command hung and was killed').toBeNull();
  expect(r.stderr).not.toMatch(/internal error/);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.code).toBe(1);
}

function fifo(path: string): string {
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo ${path} failed`);
  return path;
}

/** A data folder holding test_data_set_0 with the digits inputs. */
function dataFolder(name: string): { data: string; set: string } {
  const data = join(dir, name);
  const set = join(data, 'test_data_set_0');
  mkdirSync(set, { recursive: true });
  copyFileSync(fixture('digits', 'test_data_set_0', 'input_0.pb'), join(set, 'input_0.pb'));
  return { data, set };
}

describe('only regular files are read, and a FIFO never blocks', () => {
  it('a FIFO as input_0.pb in a data folder', () => {
    const data = join(dir, 'fifo-data', 'test_data_set_0');
    mkdirSync(data, { recursive: true });
    fifo(join(data, 'input_0.pb'));
    expectRefused(run([...EVAL, '--data', join(dir, 'fifo-data')]), /input_0\.pb: not a regular file \(it is a FIFO\)/);
  });

  it('a FIFO as --labels', () => {
    const labels = fifo(join(dir, 'labels-fifo.txt'));
    expectRefused(
      run([...EVAL, '--data', fixture('digits', 'test_data_set_0'), '--labels', labels]),
      /labels-fifo\.txt: not a regular file \(it is a FIFO\)/,
    );
  });

  it('a FIFO as --data (.npz)', () => {
    const data = fifo(join(dir, 'data-fifo.npz'));
    expectRefused(run([...EVAL, '--data', data]), /data-fifo\.npz: not a regular file \(it is a FIFO\)/);
  });

  it('a FIFO as the model', () => {
    const model = fifo(join(dir, 'model-fifo.onnx'));
    expectRefused(run(['inspect', model]), /model-fifo\.onnx: not a regular file \(it is a FIFO\)/);
  });

  it('a FIFO as --recipe', () => {
    const recipe = fifo(join(dir, 'recipe-fifo.yaml'));
    expectRefused(
      run(['compress', DIGITS, '-o', join(dir, 'recipe-out.onnx'), '--recipe', recipe]),
      /recipe-fifo\.yaml: not a regular file \(it is a FIFO\)/,
    );
  });

  it('a FIFO as a report given to merge, and a report that is JSON but not an object', () => {
    expectRefused(run(['merge', fifo(join(dir, 'report-fifo.json'))]), /report-fifo\.json: not a regular file \(it is a FIFO\)/);
    writeFileSync(join(dir, 'null.json'), 'null\n');
    expectRefused(run(['merge', join(dir, 'null.json')]), /null\.json: not a sweep report/);
  });

  it('a FIFO as an external data file', () => {
    const proto = decodeModel(readFileSync(fixture('conformance', 'external', 'model.onnx')), 'external');
    const sub = join(dir, 'ext-fifo');
    mkdirSync(sub);
    for (const t of proto.graph!.initializer) for (const e of t.external_data) if (e.key === 'location') e.value = 'weights.bin';
    writeFileSync(join(sub, 'model.onnx'), encode('onnx.ModelProto', proto));
    fifo(join(sub, 'weights.bin'));
    expectRefused(run(['inspect', join(sub, 'model.onnx')]), /external data file 'weights\.bin': not a regular file \(it is a FIFO\)/);
  });

  it('a folder as input_0.pb', () => {
    const set = join(dir, 'folder-data', 'test_data_set_0');
    mkdirSync(join(set, 'input_0.pb'), { recursive: true });
    expectRefused(run([...EVAL, '--data', join(dir, 'folder-data')]), /input_0\.pb: not a regular file \(it is a directory\)/);
  });
});

describe('files found inside a data folder stay inside it', () => {
  it('a test_data_set_0 that links to a folder outside --data', () => {
    const { set: outside } = dataFolder('outside-set');
    const data = join(dir, 'linked-set');
    mkdirSync(data);
    symlinkSync(outside, join(data, 'test_data_set_0'));
    expectRefused(run([...EVAL, '--data', data]), /test_data_set_0: links outside its data folder/);
  });

  it('labels beside the inputs that link outside --data', () => {
    const { data, set } = dataFolder('linked-labels');
    symlinkSync(fixture('digits', 'labels_0.npy'), join(set, 'labels_0.npy'));
    expectRefused(run([...EVAL, '--data', data]), /labels_0\.npy: links outside its data folder/);
  });

  it('reads the same layout when nothing leads outside (and a link inside the folder is fine)', () => {
    const { data, set } = dataFolder('inside');
    copyFileSync(fixture('digits', 'labels_0.npy'), join(data, 'labels.npy'));
    symlinkSync(join(data, 'labels.npy'), join(set, 'labels_0.npy'));
    const r = run([...EVAL, '--data', data, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('the files the user names may be anywhere', () => {
    const r = run([...EVAL, '--data', fixture('digits', 'test_data_set_0'), '--labels', fixture('digits', 'labels_0.npy'), '--json']);
    expect(r.code).toBe(0);
  });
});
