import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import type { ValueInfoProto } from '../../src/ir/onnx.js';
import { makeTensor } from '../../src/ir/tensor.js';
import { OrtProcess } from '../../src/runtime/client.js';
import { RuntimeFailure } from '../../src/runtime/failure.js';
import { ROOT, cli, fixture, scratch, type CliResult } from '../helpers.js';
import { BOOL, INT64, chainedFunctions, endlessLoop, graph, int64s, model, node, save, tensor, valueInfo } from './models.js';

const dir = scratch();
const CLI = join(ROOT, 'bin', 'onnxpress');
const DIGITS = fixture('digits', 'model.onnx');

/** Exit code 1 and one line, never an internal error. */
function refused(r: CliResult, message: RegExp, code = 1): void {
  expect(r.stderr).not.toMatch(/internal error/);
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(message);
}

/** x -> y through one node of `op`, with the input type and shape given. */
function single(name: string, elemType: number, dims: (number | string)[], op = 'Identity'): string {
  return save(join(dir, name), model(graph([node(op, ['x'], ['y'])], [valueInfo('x', elemType, dims)], [valueInfo('y', elemType, dims)])));
}

/** The processes whose parent is `pid` (Linux). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      /* ended meanwhile */
    }
  }
  return out;
}

const alive = (pid: number) =>
  existsSync(`/proc/${pid}`) && !/^\S+ \S+ Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, 'x'));

async function waitFor<T>(f: () => T | undefined, ms = 20_000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
    const v = f();
    if (v !== undefined) return v;
  }
  throw new Error('timed out waiting');
}

/** Runs the command line without waiting; `done` gives what cli() gives. */
function start(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT });
  let stdout = '',
    stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
  return { pid: child.pid!, kill: (s: NodeJS.Signals) => child.kill(s), done };
}

/** The ONNX Runtime child of a running command line, once it has one. */
const ortChild = (pid: number) => waitFor(() => childrenOf(pid)[0]);

describe('ONNX Runtime in a child process', () => {
  const loop = save(join(dir, 'loop.onnx'), endlessLoop());

  it('a model that runs forever is stopped at --eval-timeout: one line naming the model, the budget and the flag', async () => {
    const t = Date.now();
    const run = start(['eval', loop, '--reference', loop, '--eval-timeout', '1.5']);
    const child = await ortChild(run.pid);
    const r = await run.done;
    refused(
      r,
      /^onnxpress: .*loop\.onnx: evaluation ran past its time budget of 1\.5 s while running it in ONNX Runtime \(raise it with --eval-timeout SECONDS\)$/,
    );
    expect(Date.now() - t).toBeLessThan(15_000);
    await waitFor(() => (alive(child) ? undefined : true), 5_000);
  });

  it('--eval-timeout takes a positive number of seconds', () => {
    for (const value of ['0', '-3', 'soon']) {
      refused(
        cli(['eval', DIGITS, '--reference', DIGITS, '--eval-timeout', value]),
        new RegExp(`--eval-timeout must be a positive number of seconds, got '${value}'`),
        2,
      );
    }
  });

  it('ONNX Runtime crashing (SIGSEGV, SIGABRT as on bad_alloc) is one line naming the model, and onnxpress exits 1', async () => {
    for (const signal of ['SIGSEGV', 'SIGABRT'] as const) {
      const run = start(['eval', loop, '--reference', loop, '--eval-timeout', '60']);
      const child = await ortChild(run.pid);
      // Loading the model takes milliseconds; then the child is inside session.run for good.
      await new Promise((r) => setTimeout(r, 1500));
      process.kill(child, signal);
      refused(await run.done, new RegExp(`^onnxpress: ONNX Runtime crashed \\(${signal}\\) while running .*loop\\.onnx$`));
    }
  });

  it('ONNX Runtime killed outright (SIGKILL, as the out-of-memory killer does) says so, likely for memory, and onnxpress exits 1', async () => {
    const run = start(['eval', loop, '--reference', loop, '--eval-timeout', '60']);
    const child = await ortChild(run.pid);
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(child, 'SIGKILL');
    refused(
      await run.done,
      /^onnxpress: ONNX Runtime was killed \(SIGKILL, as the out-of-memory killer kills: it may need more memory than this process may use\) while running .*loop\.onnx$/,
    );
  });

  it('a real crash: ONNX Runtime segfaults on 20,000 chained functions; the child dies, the next load gets a new one', async () => {
    // Past the limit readModel applies; given straight to the runtime, as a library user could.
    const path = save(join(dir, 'chain.onnx'), chainedFunctions(20_000));
    const ort = new OrtProcess(60);
    try {
      const failure = await ort.load(path, 'chain.onnx').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(RuntimeFailure);
      expect((failure as RuntimeFailure).message).toMatch(/^ONNX Runtime crashed \(SIG[A-Z]+\) while loading chain\.onnx$/);
      const session = await ort.load(DIGITS, 'digits');
      const [logits] = await ort.run(session, [{ name: 'input', dtype: 1, dims: [2, 1, 8, 8], data: new Float32Array(128) }]);
      expect(logits!.dims).toEqual([2, 10]);
    } finally {
      ort.close();
    }
  });

  it("the budget counts time spent waiting for ONNX Runtime, not the caller's own work between runs", async () => {
    const ort = new OrtProcess(1);
    try {
      const digits = await ort.load(DIGITS, 'digits');
      await new Promise((r) => setTimeout(r, 1200));
      await ort.run(digits, [{ name: 'input', dtype: 1, dims: [1, 1, 8, 8], data: new Float32Array(64) }]);
      const endless = await ort.load(loop, 'loop.onnx');
      const failure = await ort.run(endless, [{ name: 'x', dtype: 1, dims: [1], data: new Float32Array(1) }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((failure as RuntimeFailure).kind).toBe('timeout');
    } finally {
      ort.close();
    }
  });

  it('onnxpress killed outright (SIGKILL): its ONNX Runtime child does not run on', async () => {
    const run = start(['eval', loop, '--reference', loop]);
    const child = await ortChild(run.pid);
    await new Promise((r) => setTimeout(r, 500));
    run.kill('SIGKILL');
    await run.done;
    await waitFor(() => (alive(child) ? undefined : true), 5_000);
  });
});

describe('telemetry', () => {
  it('evaluating writes nothing under $HOME/.cache/Microsoft and no /tmp/mat-debug-PID.log, in the child or in process', () => {
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    const logs = () => new Set(readdirSync('/tmp').filter((f) => /^mat-debug-\d+\.log$/.test(f)));
    const before = logs();
    const env = { ...process.env, HOME: home };
    delete env.ORT_DISABLE_TELEMETRY;
    const r = spawnSync(process.execPath, [CLI, 'eval', DIGITS, '--reference', DIGITS, '--runs', '2'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    // The library's in-process runtime (what the tests use) too.
    const script = `import('${join(ROOT, 'dist', 'runtime', 'ort.js')}').then((m) => m.createSession('${DIGITS}'))`;
    const p = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
    expect(p.status, p.stderr).toBe(0);
    expect(readdirSync(home)).toEqual([]);
    expect([...logs()].filter((f) => !before.has(f))).toEqual([]);
  });
});

describe('models ONNX Runtime refuses: one line naming the model, never an internal error', () => {
  const io: [ValueInfoProto[], ValueInfoProto[]] = [[valueInfo('x')], [valueInfo('y')]];
  const cases: [string, ReturnType<typeof model>, RegExp][] = [
    [
      'cycle',
      model(graph([node('Relu', ['t2'], ['t1']), node('Relu', ['t1'], ['t2']), node('Add', ['x', 't2'], ['y'])], ...io)),
      /the graph is not acyclic/,
    ],
    ['no-opset', model(graph([node('Relu', ['x'], ['y'])], ...io), { opset_import: [] }), /Missing opset in the model/],
    [
      'ir-99',
      model(graph([node('Relu', ['x'], ['y'])], ...io), { ir_version: 99 }),
      /Unsupported model IR version: 99, max supported IR version: \d+$/,
    ],
    ['unknown-op', model(graph([node('Frobnicate', ['x'], ['y'])], ...io)), /No Op registered for Frobnicate/],
    [
      'bad-sparse',
      model(
        graph([node('Add', ['x', 'w'], ['y'])], [valueInfo('x', 1, [4])], [valueInfo('y', 1, [4])], {
          sparse_initializer: [{ values: tensor('w', [2], 1, new Uint8Array(8)), indices: int64s('', [5n, 99n]), dims: [4] }],
        }),
      ),
      /^onnxpress: .*: ONNX Runtime cannot load it: Sparse tensor: w index is out of bounds/,
    ],
  ];
  for (const [name, proto, message] of cases) {
    it(name, () => {
      const path = save(join(dir, `${name}.onnx`), proto);
      const r = cli(['eval', path, '--reference', path, '--runs', '0']);
      refused(r, new RegExp(`^onnxpress: .*${name}\\.onnx: ONNX Runtime cannot load it: `));
      expect(r.stderr.trim()).toMatch(message);
      expect(r.stderr).not.toMatch(/onnxruntime_src|Load model from/);
    });
  }

  it('a failure while running names the model and the inputs fed, and suggests --data or --dim', () => {
    // Reshape of the 1-element input to [3]: fine to load, fails to run.
    const path = save(
      join(dir, 'reshape.onnx'),
      model(
        graph([node('Reshape', ['x', 'shape'], ['y'])], [valueInfo('x', 1, ['n'])], [valueInfo('y', 1, [3])], {
          initializer: [int64s('shape', [3n])],
        }),
      ),
    );
    refused(
      cli(['eval', path, '--reference', path, '--runs', '0']),
      /^onnxpress: .*reshape\.onnx: ONNX Runtime failed running it on x: float32 \[1\]: .*cannot be reshaped.* \(the inputs were synthesized: give the shapes the model needs with --shape x=N, the symbolic dimensions with --dim \(n=N\), or real inputs with --data\)$/,
    );
  });
});

describe('evaluation inputs checked against each model before running', () => {
  const ref = single('ref-a.onnx', 1, [1]);

  it('an input the candidate needs that the data (made for the reference) does not give', () => {
    const other = save(join(dir, 'other-names.onnx'), model(graph([node('Identity', ['z'], ['y'])], [valueInfo('z')], [valueInfo('y')])));
    refused(
      cli(['eval', other, '--reference', ref]),
      /^onnxpress: .*other-names\.onnx: needs input 'z' \(float32 \[1\]\), which the evaluation data does not give \(it gives 'x'\)$/,
    );
  });

  it('another dtype, rank or fixed dimension: the input, what it expects and what the data gives', () => {
    refused(
      cli(['eval', single('int64.onnx', INT64, [1]), '--reference', ref]),
      /int64\.onnx: input 'x' is int64 \[1\], the data gives float32 \[1\]$/,
    );
    refused(
      cli(['eval', single('rank2.onnx', 1, [1, 1]), '--reference', ref]),
      /rank2\.onnx: input 'x' is float32 \[1, 1\], the data gives float32 \[1\]$/,
    );
    refused(
      cli(['eval', single('three.onnx', 1, [3]), '--reference', single('two.onnx', 1, [2])]),
      /three\.onnx: input 'x' is float32 \[3\], the data gives float32 \[2\]$/,
    );
  });

  it('the reference too, with --data', () => {
    const set = join(dir, 'int-data', 'test_data_set_0');
    mkdirSync(set, { recursive: true });
    const values = new BigInt64Array(64);
    writeFileSync(
      join(set, 'input_0.pb'),
      encode('onnx.TensorProto', makeTensor('input', INT64, [1, 1, 8, 8], new Uint8Array(values.buffer))),
    );
    refused(
      cli(['eval', DIGITS, '--reference', DIGITS, '--data', join(dir, 'int-data')]),
      /digits\/model\.onnx: input 'input' is float32 \[N, 1, 8, 8\], the data gives int64 \[1, 1, 8, 8\]$/,
    );
  });

  it('a scalar input takes a one-element tensor, as ONNX Runtime allows', () => {
    const path = single('scalar.onnx', BOOL, [], 'Not');
    const set = join(dir, 'scalar-data', 'test_data_set_0');
    mkdirSync(set, { recursive: true });
    writeFileSync(join(set, 'input_0.pb'), encode('onnx.TensorProto', makeTensor('x', BOOL, [1], new Uint8Array([1]))));
    const r = cli(['eval', path, '--reference', path, '--data', join(dir, 'scalar-data'), '--runs', '0']);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('synthesized inputs with huge declared sizes are refused before they are made', () => {
  it('a model whose input is [1000000, 1000000]: exit 1, the input, its element count and the limit', () => {
    const path = single('huge-input.onnx', 1, [1_000_000, 1_000_000]);
    refused(
      cli(['eval', path, '--reference', path]),
      /^onnxpress: .*huge-input\.onnx: synthesized input 'x' of shape \[1000000, 1000000\] would have 1000000000000 elements, over the limit of 67108864 \(2\^26\); or give evaluation data with --data$/,
    );
  });

  it('--dim n=1000000000: exit 2, suggesting smaller --dim values', () => {
    const path = single('dim-input.onnx', 1, ['n', 1000]);
    refused(
      cli(['eval', path, '--reference', path, '--dim', 'n=1000000000']),
      /synthesized input 'x' of shape \[1000000000, 1000\] would have 1000000000000 elements, over the limit of 67108864 \(2\^26\); give smaller --dim values; or give evaluation data with --data$/,
      2,
    );
  });
});
