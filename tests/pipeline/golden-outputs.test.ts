// Outputs stay byte-identical through refactors (issue 20): the hashes in tests/golden/outputs.json
// were written by the code before the tensor-data and graph-editor rework; a change that alters an
// output on purpose rewrites them (`node scripts/golden-outputs.mjs --update`) and says why.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';

const root = join(import.meta.dirname, '../..');

test('every pipeline on the fixtures writes the same bytes as the recorded run', () => {
  const run = spawnSync(process.execPath, [join(root, 'scripts/golden-outputs.mjs')], {
    encoding: 'utf8',
    timeout: 120_000,
    killSignal: 'SIGKILL',
  });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  const now = JSON.parse(run.stdout) as Record<string, Record<string, string>>;
  const recorded = JSON.parse(readFileSync(join(root, 'tests/golden/outputs.json'), 'utf8')) as Record<string, Record<string, string>>;
  expect(Object.keys(now).sort()).toEqual(Object.keys(recorded).sort());
  const differing = Object.keys(recorded).filter((name) => JSON.stringify(now[name]) !== JSON.stringify(recorded[name]));
  expect(differing).toEqual([]);
}, 180_000);
