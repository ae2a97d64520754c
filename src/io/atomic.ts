// Output files are written under a temporary name and renamed when complete, so that an
// interrupted run (a signal, a failing pass, a full disk) never leaves a half-written file.
import { closeSync, existsSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { OutputError } from '../errors.js';
import { checkReplaceable } from './output-path.js';

const open = new Set<TempFile>();

function failure(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

export class TempFile {
  readonly tmpPath: string;
  private fd: number | undefined;
  /** Where the next write goes: bytes written and skipped so far. */
  bytes = 0;

  constructor(readonly finalPath: string) {
    removeStaleTemps(finalPath);
    this.tmpPath = `${finalPath}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      this.fd = openSync(this.tmpPath, 'wx', 0o644);
    } catch (e) {
      throw new OutputError(`${finalPath}: cannot create (${failure(e)})`);
    }
    open.add(this);
  }

  write(chunk: Uint8Array): void {
    if (this.fd === undefined) throw new Error('write after close');
    let done = 0;
    try {
      while (done < chunk.length) done += writeSync(this.fd, chunk, done, chunk.length - done, this.bytes + done);
    } catch (e) {
      throw new OutputError(`${this.finalPath}: write failed (${failure(e)})`);
    }
    this.bytes += chunk.length;
  }

  /** Leaves `n` bytes for someone else to write (another thread, through `tmpPath`) before `commit`. */
  skip(n: number): void {
    this.bytes += n;
  }

  /** Appends `n` zero bytes (alignment padding). */
  pad(n: number): void {
    if (n > 0) this.write(Buffer.alloc(n));
  }

  private close(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }

  /** Closes the file and moves it to its final name. */
  commit(): void {
    this.close();
    try {
      checkReplaceable(this.finalPath);
      renameSync(this.tmpPath, this.finalPath);
    } catch (e) {
      this.abort();
      if (e instanceof OutputError) throw e;
      throw new OutputError(`${this.finalPath}: cannot rename into place (${failure(e)})`);
    } finally {
      open.delete(this);
    }
  }

  /** Closes and deletes the temporary file. */
  abort(): void {
    try {
      this.close();
    } catch {
      /* already failing */
    }
    try {
      if (existsSync(this.tmpPath)) unlinkSync(this.tmpPath);
    } catch {
      /* best effort */
    }
    open.delete(this);
  }
}

/**
 * Deletes what killed runs left of `finalPath`: `<finalPath>.tmp-<pid>-<8 hex digits>` files whose
 * process no longer exists (a SIGKILL, as the out-of-memory killer sends, leaves the run no way to
 * clean up: pruning the 6.4 GB model in a 1 GiB cgroup left 512 MB so). A file of a process that is
 * alive, or that this one may not signal, stays.
 */
function removeStaleTemps(finalPath: string): void {
  const dir = dirname(finalPath);
  const prefix = `${basename(finalPath)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // the folder's problems are the new file's to report
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-[0-9a-f]{8}$/.exec(name.slice(prefix.length))?.[1]);
    if (!pid || pid === process.pid || processExists(pid)) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      /* best effort */
    }
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Deletes every temporary output still open: called on signals and fatal errors. Returns how many. */
export function abortAllTempFiles(): number {
  const files = [...open];
  for (const f of files) f.abort();
  return files.length;
}

/** Writes a whole small file (a report, a recipe) under a temporary name, then renames it into place. */
export function writeFileAtomically(path: string, bytes: Uint8Array): void {
  const file = new TempFile(path);
  try {
    file.write(bytes);
    file.commit();
  } catch (e) {
    file.abort();
    throw e;
  }
}
