// Progress reporting: a bar on a terminal, nothing otherwise (CI logs stay clean).
import cliProgress from 'cli-progress';

export interface Progress {
  start(total: number, label: string): void;
  tick(n: number): void;
  stop(): void;
}

export const silentProgress: Progress = { start() {}, tick() {}, stop() {} };

/** A cli-progress bar on stderr when it is a terminal; silent otherwise. */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return silentProgress;
  let bar: cliProgress.SingleBar | undefined;
  return {
    start(total, label) {
      bar = new cliProgress.SingleBar({ stream, format: `${label.padEnd(12)} [{bar}] {value}/{total} {duration_formatted}`, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
      bar.start(total, 0);
    },
    tick(n) { bar?.increment(n); },
    stop() { bar?.stop(); bar = undefined; },
  };
}
