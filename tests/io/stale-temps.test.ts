// A run killed outright (SIGKILL, the out-of-memory killer) cannot delete its temporary output; the
// next write of the same output deletes what such runs left (io/atomic.ts), and nothing else: not a
// live process's temporary file, not another output's, not a name that only looks alike.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { writeModel } from '../../src/io/write.js';
import { fixture, scratch } from '../helpers.js';

const dir = scratch();
const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
afterAll(() => live.kill());

describe('temporary outputs left by killed runs', () => {
  it('are deleted by the next write of the same output; live and unrelated files stay', () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const out = join(dir, 'out.onnx');
    const stale = [`out.onnx.tmp-${dead}-0123abcd`, `out.onnx.data.tmp-${dead}-89abcdef`];
    const kept = [
      `out.onnx.tmp-${live.pid}-0123abcd`, // a live process's
      `other.onnx.tmp-${dead}-0123abcd`, // another output's
      `out.onnx.tmp-${dead}-notahex!`, // not the pattern
      `out.onnx.tmp-notapid-0123abcd`,
    ];
    for (const name of [...stale, ...kept]) writeFileSync(join(dir, name), 'partial');
    writeModel(readModel(fixture('digits', 'model.onnx')), out, { externalData: true, sizeThreshold: 1024 });
    expect(existsSync(out) && existsSync(`${out}.data`)).toBe(true);
    const left = readdirSync(dir);
    for (const name of stale) expect(left).not.toContain(name);
    for (const name of kept) expect(left).toContain(name);
  });
});
