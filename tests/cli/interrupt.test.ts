// Ctrl-C while a progress bar is drawn: the bar's line is ended first, so that onnxpress's message
// starts on a line of its own (it was written after the bar, on the bar's line).
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { endProgressLine, terminalProgress } from '../../src/cli/progress.js';
import { ROOT, fixture, scratch } from '../helpers.js';

const dir = scratch();
const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

/** Whether `text` leaves the cursor at the start of an empty line: after a newline, or a move to column 1 and a cleared line. */
const atFreshLine = (text: string) => /(\n|\x1b\[1G\x1b\[2K)$/.test(text);

describe('an interrupt during a progress bar', () => {
  it("ends the bar's line (and shows the cursor again) before anything else is written", () => {
    const tty = Object.assign(new PassThrough(), { isTTY: true, columns: 100 }) as unknown as NodeJS.WriteStream;
    let text = '';
    (tty as unknown as PassThrough).on('data', (d: Buffer) => {
      text += d.toString();
    });
    const bar = terminalProgress(tty);
    bar.start(100, 'timing');
    bar.tick(10);
    expect(atFreshLine(text)).toBe(false);
    endProgressLine();
    expect(atFreshLine(text)).toBe(true);
    expect(text).toContain('\x1b[?25h');
    // Once ended, nothing more is drawn, and ending again writes nothing.
    const before = text;
    bar.tick(10);
    endProgressLine();
    expect(text).toBe(before);
  });

  // A real terminal (a pseudo-terminal from util-linux's script): Ctrl-C typed while the timing bar runs.
  it.skipIf(!hasScript)(
    'Ctrl-C on a terminal: "onnxpress: interrupted by SIGINT" starts on a line of its own, exit 130',
    async () => {
      const command = [
        process.execPath,
        join(ROOT, 'bin', 'onnxpress'),
        'compress',
        fixture('digits', 'model.onnx'),
        '-o',
        join(dir, 'out.onnx'),
        '--quantize',
        'int8',
        '--eval',
        '--runs',
        '100000',
        '--data',
        fixture('digits', 'test_data_set_0'),
      ]
        .map((a) => `'${a}'`)
        .join(' ');
      const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let typed = false;
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // Ctrl-C once the bar has been drawn a few times.
        if (!typed && (out.match(/timing +\[/g) ?? []).length >= 3) {
          typed = true;
          child.stdin.write('\x03');
        }
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      clearTimeout(timer);
      expect(typed).toBe(true);
      expect(code).toBe(130);
      const at = out.indexOf('onnxpress: interrupted by SIGINT');
      expect(at).toBeGreaterThan(0);
      expect(atFreshLine(out.slice(0, at)), JSON.stringify(out.slice(Math.max(0, at - 120), at + 40))).toBe(true);
    },
    90_000,
  );
});
