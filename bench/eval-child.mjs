// The cost of running ONNX Runtime in a child process (issue 25): three commands that run models,
// timed as whole commands on two pinned builds (bench/build-ref.sh), 1 warm-up, 7 alternating rounds,
// median. Usage: bash bench/build-ref.sh eeb742c; bash bench/build-ref.sh REV; edit `builds`; node bench/eval-child.mjs
import { spawnSync } from 'node:child_process';
const builds = { before: 'bench/out/ref-eeb742c', after: 'bench/out/ref-0a507cf' };
const cases = {
  'npm start (digits int8 --eval)': (b) => [
    'compress',
    'fixtures/digits/model.onnx',
    '-o',
    `/tmp/eb-${b}.onnx`,
    '--force',
    '--quantize',
    'int8',
    '--eval',
    '--data',
    'fixtures/digits/test_data_set_0',
    '--labels',
    'fixtures/digits/labels.txt',
  ],
  'eval char LM (20 timed runs)': () => [
    'eval',
    'fixtures/charlm/model.onnx',
    '--reference',
    'fixtures/charlm/model.onnx',
    '--data',
    'fixtures/charlm/test_data_set_0',
  ],
  'int8 GPTQ calibration (char LM)': (b) => [
    'compress',
    'fixtures/charlm/model.onnx',
    '-o',
    `/tmp/eb-g-${b}.onnx`,
    '--force',
    '--quantize',
    'int8:calibration=fixtures/charlm/test_data_set_0',
  ],
};
const rounds = 7,
  times = {};
for (const name of Object.keys(cases)) for (const b of Object.keys(builds)) times[`${name}|${b}`] = [];
for (const name of Object.keys(cases))
  for (const b of Object.keys(builds)) spawnSync(process.execPath, [`${builds[b]}/bin/onnxpress`, ...cases[name](b)]); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const name of Object.keys(cases)) {
    for (const b of r % 2 ? ['after', 'before'] : ['before', 'after']) {
      const t = process.hrtime.bigint();
      const p = spawnSync(process.execPath, [`${builds[b]}/bin/onnxpress`, ...cases[name](b)], { encoding: 'utf8' });
      if (p.status !== 0) {
        console.error(b, name, p.stderr);
        process.exit(1);
      }
      times[`${name}|${b}`].push(Number(process.hrtime.bigint() - t) / 1e9);
    }
  }
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log('| case | before (eeb742c) s | after (0a507cf) s | after / before |\n|---|---:|---:|---:|');
for (const name of Object.keys(cases)) {
  const a = med(times[`${name}|before`]),
    b = med(times[`${name}|after`]);
  console.log(`| ${name} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(b / a).toFixed(2)}× |`);
}
