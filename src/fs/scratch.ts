// Scratch folders a run writes for itself (the models ONNX Runtime loads to measure a choice, a
// trial's outputs): removed when the run is done with them, and at the latest when the process
// exits — after an error thrown past the pass, an interrupt (the command line exits on signals), or
// a test runner's teardown — so none is left in the temporary folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<string>();
let hooked = false;

/** A new, empty folder `onnxpress-<purpose>-XXXXXX` in the temporary folder. */
export function makeScratchDir(purpose: string): string {
  const dir = mkdtempSync(join(tmpdir(), `onnxpress-${purpose}-`));
  live.add(dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const d of live) rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

/** Removes a folder makeScratchDir made, with everything in it. */
export function removeScratchDir(dir: string): void {
  live.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** The scratch folders not yet removed (tests). */
export function liveScratchDirs(): string[] {
  return [...live];
}
