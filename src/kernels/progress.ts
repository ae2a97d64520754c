// A kernel's progress through one job, as the fraction of its work done (0 to 1), reported as it
// goes (after each slab of rows, each pass of a sort, each chunk of codes) so that a bar moves
// through a large tensor instead of jumping to done when the tensor is.
export type JobProgress = (fraction: number) => void;

/** The progress of a part of a job that spans [from, to] of the whole. */
export function part(progress: JobProgress | undefined, from: number, to: number): JobProgress | undefined {
  return progress && ((f) => progress(from + (to - from) * f));
}

/** Values per chunk where a kernel's loop is cut only to report progress (about 4 MB of floats). */
export const PROGRESS_CHUNK = 1 << 20;
