import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel, readModel } from '../../src/io/read.js';
import { encode } from '../../src/io/codec.js';
import { ROOT, cli, fixture, scratch } from '../helpers.js';
import { FLOAT, graph, model, node, tensor, valueInfo } from './models.js';
// @ts-expect-error -- a plain JavaScript module shared with scripts/fuzz.mjs
import { fuzz } from '../../scripts/fuzz-lib.mjs';

const dir = scratch();
const CHARLM = fixture('charlm', 'model.onnx');

/** Options that contradict each other or name a missing file, and what the error says. */
const CONTRADICTIONS = [
  ['--prune', 'nm:n=4,m=4', /n must be smaller than m/],
  ['--quantize', 'int4:block=48', /block must be 16, 32, 64 or 128/],
  ['--quantize', 'int8:calibration=/missing', /calibration: \/missing: no such file/],
  ['--quantize', 'int4:calibration=/missing', /calibration: \/missing: no such file/],
] as const;

describe('hostile input', () => {
  it('300 mutated models: only results or one-line errors, no crash, no hang, no partial output', async () => {
    const stats = await fuzz({ count: 300, seed: 11, cliEvery: 60, dir: join(dir, 'fuzz') });
    expect(stats.cases).toBeGreaterThan(200);
    expect(stats.crashes).toEqual([]);
    expect(stats.hangs).toEqual([]);
    expect(stats.partial).toEqual([]);
    expect(stats.refused).toBeGreaterThan(0);
  });

  it('refuses dims that claim more elements than the data holds', () => {
    const model = readModel(fixture('digits', 'model.onnx'));
    model.graph.initializer[0]!.dims = [1_000_000_000_000];
    const path = join(dir, 'terabytes.onnx');
    writeFileSync(path, encode('onnx.ModelProto', model.proto));
    const r = cli(['compress', path, '-o', join(dir, 'tb-out.onnx'), '--quantize', 'int8']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/has 576 bytes of data for shape \[1000000000000\], which needs 4000000000000/);
  });

  it('refuses external data at ../../etc/passwd and at an absolute path, from the command line', () => {
    for (const location of ['../../etc/passwd', '/etc/passwd']) {
      const proto = decodeModel(readFileSync(fixture('conformance', 'external', 'model.onnx')), 'external');
      for (const t of proto.graph!.initializer) for (const e of t.external_data) if (e.key === 'location') e.value = location;
      const sub = join(dir, `ext-${location.length}`);
      mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, 'model.onnx'), encode('onnx.ModelProto', proto));
      const r = cli(['inspect', join(sub, 'model.onnx')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/absolute path|leaves the model's folder/);
    }
  });

  it('refuses evaluation data that links outside its folder', () => {
    const set = join(dir, 'data', 'test_data_set_0');
    mkdirSync(set, { recursive: true });
    symlinkSync('/etc/hostname', join(set, 'input_0.pb'));
    const r = cli(['eval', fixture('digits', 'model.onnx'), '--reference', fixture('digits', 'model.onnx'), '--data', join(dir, 'data')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/links outside its data folder/);
  });
});

describe('faults', () => {
  it('50 random kill points: never a partial or leftover file, the input untouched', { timeout: 120_000 }, async () => {
    const input = join(dir, 'kill-input.onnx');
    copyFileSync(CHARLM, input);
    const before = readModel(input).source!.bytes;
    let complete = 0,
      interrupted = 0;
    for (let i = 0; i < 50; i++) {
      const out = join(dir, `kill-${i}.onnx`);
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'onnxpress'), 'compress', input, '-o', out, '--quantize', 'int8'], {
        stdio: 'ignore',
      });
      const closed = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      // Spread over the run: start-up, reading, the pass, writing and the report (about 0.4 s in all).
      const delay = (i * 37) % 500;
      await new Promise((r) => setTimeout(r, delay));
      child.kill(i % 2 ? 'SIGINT' : 'SIGTERM');
      const code = await closed;
      if (existsSync(out)) {
        readModel(out);
        complete++;
      } else interrupted++;
      expect([0, 130, 143, null]).toContain(code);
      expect(readdirSync(dir).filter((f) => f.startsWith(`kill-${i}.onnx.tmp-`))).toEqual([]);
    }
    expect(complete + interrupted).toBe(50);
    expect(interrupted).toBeGreaterThan(0);
    expect(readModel(input).source!.bytes).toBe(before);
  });

  it('a write that fails (file-size limit, like a full disk) leaves nothing behind', () => {
    const out = join(dir, 'efbig', 'out.onnx');
    mkdirSync(join(dir, 'efbig'), { recursive: true });
    const r = spawnSync(
      'bash',
      ['-c', `ulimit -f 100; exec "${process.execPath}" "${join(ROOT, 'bin', 'onnxpress')}" compress "${CHARLM}" -o "${out}"`],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/write failed \(EFBIG\)$/);
    expect(readdirSync(join(dir, 'efbig'))).toEqual([]);
  });

  it('options that contradict each other, or name a missing file, are usage errors found before the model is read', () => {
    // The model does not exist: an error about the options proves they were checked first.
    for (const [flag, spec, reason] of CONTRADICTIONS) {
      const out = join(dir, 'never.onnx');
      const r = cli(['compress', join(dir, 'no-such-model.onnx'), '-o', out, flag, spec]);
      expect(r.code, spec).toBe(2);
      expect(r.stderr.trim()).toMatch(new RegExp(`^onnxpress: ${flag} ${spec.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: ${reason.source}`));
      expect(existsSync(out)).toBe(false);
    }
  });

  it('on a 210 MB model, each such error comes back (exit 2, one line, nothing written) in a fraction of the time reading the model takes', () => {
    // 210 tensors of 1,000,000 bytes: under the lazy read's 1 MiB, so reading the model reads them all.
    const weights = Array.from({ length: 210 }, (_, t) =>
      tensor(`w${t}`, [500, 500], FLOAT, new Uint8Array(new Float32Array(250_000).fill(t / 210).buffer)),
    );
    const big = join(dir, 'big.onnx');
    writeFileSync(
      big,
      encode(
        'onnx.ModelProto',
        model(graph([node('Identity', ['x'], ['y'])], [valueInfo('x')], [valueInfo('y')], { initializer: weights })),
      ),
    );
    expect(statSync(big).size).toBeGreaterThan(200e6);
    // The fastest of three runs: what the work takes, without the shared machine's stalls.
    const fastest = (args: string[], code: number) =>
      Math.min(
        ...[1, 2, 3].map(() => {
          const start = performance.now();
          const r = cli(args);
          expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
          if (code === 2) expect(r.stderr.trim().split('\n')).toHaveLength(1);
          return performance.now() - start;
        }),
      );
    const reading = fastest(['inspect', big], 0);
    const out = join(dir, 'never-big.onnx');
    for (const [flag, spec] of CONTRADICTIONS) {
      const refused = fastest(['compress', big, '-o', out, flag, spec], 2);
      expect(refused, `${spec}: ${refused.toFixed(0)} ms against ${reading.toFixed(0)} ms to read the model`).toBeLessThan(reading / 2);
      expect(existsSync(out)).toBe(false);
    }
  });
});

describe('crafted hostile cases (scripts/crafted-cases.mjs; npm run fuzz runs the heavy ones too)', () => {
  it('each quick case ends as expected: one-line error or result, nothing outside touched, no leftovers, no stray files', {
    timeout: 240_000,
  }, async () => {
    // @ts-expect-error -- plain JavaScript modules shared with scripts/fuzz.mjs
    const { CRAFTED } = await import('../../scripts/crafted-cases.mjs');
    // @ts-expect-error -- as above
    const { runCrafted } = await import('../../scripts/crafted-lib.mjs');
    const quick = (CRAFTED as { heavy?: boolean }[]).filter((c) => !c.heavy);
    expect(quick.length).toBeGreaterThan(40);
    const results = (await runCrafted(quick, { root: join(dir, 'crafted') })) as { kind: string; name: string; problems: string[] }[];
    expect(results.filter((r) => r.problems.length > 0).map((r) => `[${r.kind}] ${r.name}: ${r.problems.join('; ')}`)).toEqual([]);
    // Every class of the attack probe has at least one case.
    expect(new Set(results.map((r) => r.kind))).toEqual(
      new Set([
        'data loss',
        'write outside',
        'read outside',
        'hang',
        'crash',
        'memory',
        'accepted though wrong',
        'internal error',
        'left behind',
        'terminal',
        'stray files',
        'user mistake',
      ]),
    );
  });
});
