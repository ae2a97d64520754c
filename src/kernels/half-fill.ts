// Filling the places the writer left for derived bytes (io/write.ts leaveDerived): float16/bfloat16
// weights converted from their file on every thread, straight into the output.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { DerivedPlacement } from '../io/write.js';
import { addHalfFigures, type HalfFigures } from '../ir/half.js';
import { HalfOfFile } from './half-file.js';
import { KernelPool } from './pool.js';
import { silentProgress, type Progress } from './progress.js';

/** Values per job: pieces of 4 MB of float32, so that threads finish at nearly the same time. */
const PIECE = 1 << 20;

const NOTHING: HalfFigures = { maxAbsError: 0, errorSquares: 0, squares: 0, largest: 0 };

/**
 * Computes derived bytes into the places the writer left them, on `threads` threads (this one and
 * kernel workers): HalfOfFile values in pieces, any other kind here. Each HalfOfFile gets its
 * figures; throws HalfRangeExceeded when one does not fit its type (the files are then the caller's
 * to discard).
 */
export async function fillDerived(placements: DerivedPlacement[], threads: number, progress: Progress = silentProgress): Promise<void> {
  const halves = placements.filter((p) => p.bytes instanceof HalfOfFile);
  for (const p of placements) if (!(p.bytes instanceof HalfOfFile)) writeAt(p);
  if (halves.length === 0) return;
  const pool = new KernelPool(threads);
  progress.start(
    halves.reduce((n, p) => n + p.bytes.byteLength, 0),
    'writing half-precision weights',
    'bytes',
  );
  try {
    await Promise.all(
      halves.map(async ({ bytes, path, offset }) => {
        const half = bytes as HalfOfFile;
        const { file, offset: from, length } = half.source;
        const parts: Promise<HalfFigures>[] = [];
        for (let at = 0; at < length; at += PIECE) {
          const count = Math.min(PIECE, length - at);
          parts.push(
            pool
              .run({
                kind: 'half-fill',
                values: { file, offset: from + at * 4, length: count },
                bfloat16: half.bfloat16,
                to: path,
                toOffset: offset + at * 2,
              })
              .then((figures) => {
                progress.tick(count * 2);
                return figures;
              }),
          );
        }
        half.figures = (await Promise.all(parts)).reduce(addHalfFigures, NOTHING);
      }),
    );
  } finally {
    progress.stop();
    await pool.close();
  }
  for (const { bytes } of halves) {
    const half = bytes as HalfOfFile;
    half.measured(half.figures!);
  }
}

/** Writes one placement's bytes on this thread. */
function writeAt({ bytes, path, offset }: DerivedPlacement): void {
  const fd = openSync(path, 'r+');
  try {
    let at = offset;
    bytes.writeTo((chunk) => {
      for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done, chunk.length - done, at + done);
      at += chunk.length;
    });
  } finally {
    closeSync(fd);
  }
}
