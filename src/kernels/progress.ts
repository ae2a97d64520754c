// Progress as passes and kernels report it. A run reports to a Progress (a bar on a terminal, drawn
// by the CLI, or nothing). A kernel reports its progress through one job as the fraction of its work
// done (0 to 1), as it goes (after each slab of rows, each pass of a sort, each chunk of codes), so
// that a bar moves through a large tensor instead of jumping to done when the tensor is.
export type JobProgress = (fraction: number) => void;

/** The progress of a part of a job that spans [from, to] of the whole. */
export function part(progress: JobProgress | undefined, from: number, to: number): JobProgress | undefined {
  return progress && ((f) => progress(from + (to - from) * f));
}

/** Values per chunk where a kernel's loop is cut only to report progress (about 4 MB of floats). */
export const PROGRESS_CHUNK = 1 << 20;

/** What a run reports its progress to: a bar on a terminal (the CLI's), or nothing. */
export interface Progress {
  /** `total` items, or bytes with `unit` 'bytes' (the bar then shows the rate). */
  start(total: number, label: string, unit?: 'items' | 'bytes'): void;
  tick(n: number): void;
  stop(): void;
}

export const silentProgress: Progress = { start() {}, tick() {}, stop() {} };
