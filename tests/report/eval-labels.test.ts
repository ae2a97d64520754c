// Labels as text with a token sequence a line (issue 21 item 4): one sample a line, its labels
// whitespace-separated, flattened in order; each line's count is checked against its sample's
// positions, and a wrong count is one line with both counts.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLabels } from '../../src/runtime/data.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();
const CHARLM = fixture('charlm', 'model.onnx');
const DATA = ['--data', fixture('charlm', 'test_data_set_0')];
/** The fixture's next-token labels, int64 [8, 64] in a TensorProto beside its inputs. */
const LABELS = readLabels(fixture('charlm', 'test_data_set_0', 'labels_0.pb'));

/** The labels as text, a line per sample of 64 tokens; `edit` may change a line's tokens. */
function labelsText(name: string, edit: (tokens: number[], line: number) => number[] = (t) => t): string {
  const lines: string[] = [];
  for (let i = 0; i < 8; i++) {
    const tokens = edit(Array.from(LABELS.subarray(i * 64, (i + 1) * 64)), i);
    // Any whitespace separates: spaces, several of them, tabs.
    lines.push(tokens.join(i % 2 ? ' ' : ' \t '));
  }
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

function perplexity(args: string[]): number {
  const r = cli(['eval', CHARLM, '--reference', CHARLM, ...DATA, '--runs', '0', '--json', ...args]);
  expect(r.code, r.stderr).toBe(0);
  const report = JSON.parse(r.stdout);
  expect(report.accuracy.metric).toBe('perplexity');
  expect(report.accuracy.perplexity.tokens).toBe(512);
  return report.accuracy.reference;
}

describe('a text labels file with a token sequence a line', () => {
  it('gives the perplexity the TensorProto labels give', () => {
    expect(LABELS.length).toBe(512);
    const fromText = perplexity(['--labels', labelsText('labels.txt')]);
    expect(fromText).toBe(perplexity([]));
    expect(fromText).toBe(perplexity(['--labels', fixture('charlm', 'labels_0.npy')]));
  });

  it('a line with another count than its sample has positions: one line with both counts (exit 2)', () => {
    const short = labelsText('short-line.txt', (t, i) => (i === 2 ? t.slice(0, 63) : t));
    const r = cli(['eval', CHARLM, '--reference', CHARLM, ...DATA, '--runs', '0', '--labels', short]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(
      /short-line\.txt: line 3 has 63 labels, but sample 3 of the data has 64 positions \(predictions of shape \[8, 64, 94\]; one label a position, one sample a line\)$/,
    );
  });

  it('fewer or more lines than samples: one line with both counts', () => {
    const fewer = join(dir, 'fewer.txt');
    writeFileSync(fewer, readFileSync(labelsText('all.txt'), 'utf8').split('\n').slice(0, 7).join('\n'));
    const r = cli(['eval', CHARLM, '--reference', CHARLM, ...DATA, '--runs', '0', '--labels', fewer]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/fewer\.txt: 7 lines of labels, but the data has more samples \(at least 8; one line a sample\)$/);
    const more = join(dir, 'more.txt');
    writeFileSync(more, readFileSync(labelsText('all2.txt'), 'utf8') + LABELS.subarray(0, 64).join(' ') + '\n');
    const m = cli(['eval', CHARLM, '--reference', CHARLM, ...DATA, '--runs', '0', '--labels', more]);
    expect(m.code).toBe(2);
    expect(m.stderr.trim()).toMatch(/more\.txt: 576 labels for 512 predictions$/);
  });

  it('a word that is not an integer names its line', () => {
    const bad = labelsText('bad.txt', (t, i) => (i === 4 ? [...t.slice(0, 10), 'x' as unknown as number, ...t.slice(11)] : t));
    const r = cli(['eval', CHARLM, '--reference', CHARLM, ...DATA, '--runs', '0', '--labels', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/bad\.txt:5: 'x' is not an integer label$/);
  });
});
