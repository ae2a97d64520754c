// Hostile-input fuzzing: mutations of the fixtures (truncations, byte flips, huge length fields,
// dims claiming terabytes, deep nesting, cycles, duplicate and missing names, wrong dtypes,
// raw_data of the wrong size, external data past the end of its file), each run through the
// commands. Acceptable outcomes: a result, or a one-line error with exit code 1 (or 2). Anything
// else — another exception, a hang, a partial or leftover output file — is a failure.
// Used by scripts/fuzz.mjs (thousands of cases) and by the test suite (a few hundred).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compress, decode, encode, inspectModel, readModel } from '../dist/index.js';
import { knownError } from '../dist/errors.js';
import { parseStep } from '../dist/pipeline/registry.js';
import { seededRandom } from '../dist/kernels/random.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'bin', 'onnxpress');
const SOURCES = [
  'fixtures/digits/model.onnx',
  'fixtures/mlp/model.onnx',
  'fixtures/conformance/if_subgraph/model.onnx',
  'fixtures/conformance/constants/model.onnx',
  'fixtures/conformance/loop_scan/model.onnx',
  'fixtures/conformance/dtypes/model.onnx',
  'fixtures/repeated/tied/model.onnx',
];

function varint(n) {
  const out = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Byte-level and structure-level mutations; each returns { name, bytes } or { name, files } (extra files beside it). */
function mutations(random, bytes) {
  const pick = (n) => Math.floor(random() * n);
  const structural = (name, change) => () => {
    const model = decode('onnx.ModelProto', bytes);
    const ok = change(model.graph, model);
    return ok === false ? undefined : { name, bytes: encode('onnx.ModelProto', model) };
  };
  return [
    () => ({ name: 'truncate', bytes: bytes.subarray(0, 1 + pick(bytes.length - 1)) }),
    () => {
      const b = Buffer.from(bytes);
      const flips = 1 + pick(8);
      for (let i = 0; i < flips; i++) b[pick(b.length)] ^= 1 << pick(8);
      return { name: `flip ${flips} bits`, bytes: b };
    },
    () => {
      // A length-delimited field whose length claims ~4 GB.
      const b = Buffer.from(bytes);
      for (let tries = 0; tries < 50; tries++) {
        const at = pick(b.length - 6);
        if ((b[at] & 7) === 2 && b[at] > 7)
          return { name: 'huge length', bytes: Buffer.concat([b.subarray(0, at + 1), varint(0xfffffff0), b.subarray(at + 2)]) };
      }
      return { name: 'huge length (append)', bytes: Buffer.concat([b, Buffer.from([0x3a]), varint(0xfffffff0)]) };
    },
    structural('dims claim terabytes', (g) => {
      const t = g.initializer[pick(g.initializer.length)];
      if (!t) return false;
      t.dims = [1e12, 1e3];
    }),
    structural('negative dims', (g) => {
      const t = g.initializer[0];
      if (!t) return false;
      t.dims = [-4, 2];
    }),
    structural('raw_data of the wrong size', (g) => {
      const t = g.initializer.find((x) => x.raw_data && x.raw_data.length > 8);
      if (!t) return false;
      t.raw_data = t.raw_data.subarray(0, t.raw_data.length - 4);
    }),
    structural('unknown dtype', (g) => {
      const t = g.initializer[0];
      if (!t) return false;
      t.data_type = 99;
    }),
    structural('dtype changed', (g) => {
      const t = g.initializer.find((x) => x.data_type === 1);
      if (!t) return false;
      t.data_type = 7;
    }),
    structural('cycle', (g) => {
      if (g.node.length < 2) return false;
      g.node[0].input[0] = g.node[g.node.length - 1].output[0];
    }),
    structural('missing input', (g) => {
      const n = g.node[pick(g.node.length)];
      if (!n?.input.length) return false;
      n.input[0] = 'nothing_makes_this';
    }),
    structural('duplicate output names', (g) => {
      if (g.node.length < 2) return false;
      g.node[1].output[0] = g.node[0].output[0];
    }),
    structural('no graph outputs', (g) => {
      g.output = [];
    }),
    structural('deep nesting', (g) => {
      let inner = {
        node: [],
        initializer: [],
        input: [],
        output: [],
        value_info: [],
        quantization_annotation: [],
        sparse_initializer: [],
        metadata_props: [],
        name: 'deep',
      };
      for (let i = 0; i < 60; i++) {
        inner = {
          ...inner,
          node: [
            {
              op_type: 'If',
              input: ['c'],
              output: [`o${i}`],
              attribute: [
                {
                  name: 'then_branch',
                  type: 5,
                  g: inner,
                  floats: [],
                  ints: [],
                  strings: [],
                  tensors: [],
                  graphs: [],
                  type_protos: [],
                  sparse_tensors: [],
                },
              ],
              metadata_props: [],
              device_configurations: [],
            },
          ],
        };
      }
      g.node.push(...inner.node);
    }),
    structural('external data past the end', (g) => {
      const t = g.initializer.find((x) => x.raw_data && x.raw_data.length > 0);
      if (!t) return false;
      delete t.raw_data;
      t.data_location = 1;
      t.external_data = [
        { key: 'location', value: 'weights.bin' },
        { key: 'offset', value: '999999999' },
        { key: 'length', value: '64' },
      ];
    }),
    structural('external data escaping the folder', (g) => {
      const t = g.initializer.find((x) => x.raw_data && x.raw_data.length > 0);
      if (!t) return false;
      delete t.raw_data;
      t.data_location = 1;
      t.external_data = [{ key: 'location', value: pick(2) ? '../../etc/passwd' : '/etc/passwd' }];
    }),
  ];
}

/**
 * Runs `count` mutations in process (inspect, compress with no pass, compress --quantize int8),
 * and every `cliEvery`-th one also through the CLI with eval (ONNX Runtime) under a time limit.
 */
export async function fuzz({ count, seed = 1, cliEvery = 0, dir, log = () => {} }) {
  const random = seededRandom(seed);
  const stats = { cases: 0, ok: 0, refused: 0, crashes: [], hangs: [], partial: [], cliRuns: 0 };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(256));
  const sources = SOURCES.map((s) => readFileSync(join(ROOT, s)));
  for (let i = 0; i < count; i++) {
    const source = sources[i % sources.length];
    const list = mutations(random, source);
    let m;
    try {
      m = list[Math.floor(random() * list.length)]();
    } catch {
      m = undefined;
    }
    if (!m) continue;
    stats.cases++;
    const input = join(dir, `case.onnx`);
    writeFileSync(input, m.bytes);
    const out = join(dir, 'out.onnx');
    rmSync(out, { force: true });
    const started = Date.now();
    for (const run of [
      async () => inspectModel(readModel(input)),
      async () => compress(input, out, { steps: [] }),
      async () => compress(input, out, { steps: [parseStep('quantize', 'int8:min-size=0')] }),
    ]) {
      rmSync(out, { force: true });
      try {
        await run();
        stats.ok++;
        if (existsSync(out)) readModel(out); // a written model must read back
      } catch (e) {
        // A refusal is an error of a known kind (errors.ts), on one line; anything else is a crash.
        if (knownError(e) && !String(e.message).includes('\n')) stats.refused++;
        else stats.crashes.push(`${m.name}: ${e?.constructor?.name}: ${String(e?.message).split('\n')[0]}`);
      }
      const leftovers = readdirSync(dir).filter((f) => f.includes('.tmp-'));
      if (leftovers.length) {
        stats.partial.push(`${m.name}: ${leftovers.join(', ')}`);
        for (const f of leftovers) rmSync(join(dir, f));
      }
    }
    if (Date.now() - started > 10_000) stats.hangs.push(`${m.name}: ${Date.now() - started} ms`);
    if (cliEvery > 0 && i % cliEvery === 0) {
      stats.cliRuns++;
      copyFileSync(input, join(dir, 'cli.onnx'));
      const r = spawnSync(
        process.execPath,
        [CLI, 'compress', join(dir, 'cli.onnx'), '-o', join(dir, 'cli-out.onnx'), '--force', '--eval', '--runs', '1', '--batches', '1'],
        { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' },
      );
      if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGTERM') stats.hangs.push(`${m.name} (cli): over 60 s`);
      else if (![0, 1, 2, 3].includes(r.status ?? -1))
        stats.crashes.push(`${m.name} (cli): exit ${r.status} signal ${r.signal}: ${r.stderr.trim().split('\n').pop()}`);
      else if (r.status !== 0 && (r.stderr.trim().split('\n').length !== 1 || /\n\s+at /.test(r.stderr)))
        stats.crashes.push(`${m.name} (cli): not a one-line error: ${r.stderr.slice(0, 200)}`);
      else if (/internal error/.test(r.stderr)) stats.crashes.push(`${m.name} (cli): ${r.stderr.trim().slice(0, 200)}`);
      const leftovers = readdirSync(dir).filter((f) => f.includes('.tmp-'));
      if (leftovers.length) stats.partial.push(`${m.name} (cli): ${leftovers.join(', ')}`);
    }
    if ((i + 1) % 250 === 0)
      log(`${i + 1}/${count}: ${stats.crashes.length} crashes, ${stats.hangs.length} hangs, ${stats.partial.length} partial outputs`);
  }
  return stats;
}
