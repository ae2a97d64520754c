#!/usr/bin/env node
// Converts every ONNX backend test model under a folder to the given opsets and checks each in
// ONNX Runtime against the stored outputs (needs `npm run build` first). Not part of npm test: the
// backend data comes with Python's onnx wheel.
//   node scripts/convert-check.mjs [DIR] [--to 13,21] [--json] [--verbose]
// DIR defaults to .venv/lib/python3.11/site-packages/onnx/backend/test/data/node.
import { checkConversions } from '../dist/conformance/conversions.js';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const dir =
  args.find((a, i) => !a.startsWith('--') && !['--to'].includes(args[i - 1])) ??
  '.venv/lib/python3.11/site-packages/onnx/backend/test/data/node';
const targets = value('--to', '13,21').split(',').map(Number);
const report = await checkConversions(
  dir,
  targets,
  flag('--verbose')
    ? (c) => {
        if (c.status !== 'unchanged')
          process.stdout.write(
            `${c.status.padEnd(9)} ${c.model} ${c.from}→${c.to}${c.reason ? `  (${c.reason})` : ''}${c.adapted?.length ? `  [${c.adapted.join('; ')}]` : ''}\n`,
          );
      }
    : undefined,
);
if (flag('--json')) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
for (const target of targets) {
  const of = report.cases.filter((c) => c.to === target);
  const n = (s) => of.filter((c) => c.status === s).length;
  process.stdout.write(
    `to ${target}: ${n('converted')} converted, ${n('refused')} refused, ${n('wrong')} wrong, ${n('skipped')} skipped (ONNX Runtime cannot run the original or no tensor data), ${n('unchanged')} already at or above\n`,
  );
}
process.stdout.write(
  `refused by op: ${
    Object.entries(report.refusedOps)
      .sort((a, b) => b[1] - a[1])
      .map(([op, n]) => `${op} ${n}`)
      .join(', ') || 'none'
  }\n`,
);
if (report.counts.wrong > 0) process.exitCode = 1;
