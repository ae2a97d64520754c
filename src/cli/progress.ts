// Progress reporting: a bar on a terminal, nothing otherwise (CI logs stay clean).
import cliProgress from 'cli-progress';
import { silentProgress, type Progress } from '../kernels/progress.js';

const megabytes = (n: number) => `${(n / 1e6).toFixed(n >= 1e9 ? 0 : 1)} MB`;

/** The bar drawn on the terminal now, if any. */
let drawn: Progress | undefined;

/**
 * Ends the bar drawn now, if any: its line is cleared and the cursor shown again, so that what is
 * written next (the message of an interrupt) starts on a line of its own.
 */
export function endProgressLine(): void {
  drawn?.stop();
}

/** Where a bar is drawn (process.stderr), declared here so that the library's types need no @types/node. */
export interface TerminalStream {
  readonly isTTY?: boolean;
  write(text: string): boolean;
}

/** A cli-progress bar on stderr when it is a terminal; silent otherwise. */
export function terminalProgress(stream: TerminalStream = process.stderr): Progress {
  if (!stream.isTTY) return silentProgress;
  let bar: cliProgress.SingleBar | undefined;
  let bytes: { total: number; done: number; since: number } | undefined;
  const payload = () => {
    if (!bytes) return {};
    const seconds = Math.max(1e-3, (performance.now() - bytes.since) / 1000);
    return { done: megabytes(bytes.done), size: megabytes(bytes.total), rate: `${megabytes(bytes.done / seconds)}/s` };
  };
  const progress: Progress = {
    start(total, label, unit = 'items') {
      bytes = unit === 'bytes' ? { total, done: 0, since: performance.now() } : undefined;
      const counts = bytes ? '{done} of {size}, {rate}' : '{value}/{total}';
      bar = new cliProgress.SingleBar(
        {
          stream: stream as NodeJS.WritableStream,
          format: `${label.padEnd(12)} [{bar}] ${counts} {duration_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, payload());
      drawn = progress;
    },
    tick(n) {
      if (bytes) bytes.done += n;
      bar?.increment(n, payload());
    },
    stop() {
      bar?.stop();
      bar = undefined;
      bytes = undefined;
      if (drawn === progress) drawn = undefined;
    },
  };
  return progress;
}
