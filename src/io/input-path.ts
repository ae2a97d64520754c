// The one policy for every file onnxpress reads besides its own package files (the model, external
// data, evaluation data, labels, recipes, reports given to merge):
// - only a regular file is read: a folder, FIFO, socket or device is refused with one line. A FIFO
//   opened for reading waits for a writer, so files are opened with O_NONBLOCK, and the descriptor
//   is checked with fstat (a stat before the open alone leaves a window to swap the file);
// - reading is from that descriptor, and no more than a per-kind limit, checked before reading;
// - a file found inside a data folder (not named by the user) must still be inside that folder
//   once symlinks are resolved: a downloaded data folder must not make us read elsewhere.
import { closeSync, readSync, realpathSync } from 'node:fs';
import { totalmem } from 'node:os';
import { isAbsolute, relative } from 'node:path';
import { InputError } from '../errors.js';
import { openFailed, openInput } from '../fs/open.js';

/**
 * The most bytes one evaluation data file (.pb, .npy, .npz, labels) may hold, after decompression
 * for .npz: 2 GiB, or a quarter of memory where that is less. Evaluation keeps the data in memory
 * beside two models and ONNX Runtime's buffers for them; 2 GiB is also protobuf's limit for a
 * TensorProto file, and evaluation batches of this size are far past what metrics need.
 */
export const DATA_FILE_LIMIT = Math.min(2 ** 31, Math.floor(totalmem() / 4));

/** The most bytes of a text input (recipe, report JSON, labels text): far more than any holds; V8 strings end at 512 MiB. */
export const TEXT_FILE_LIMIT = 64 * 2 ** 20;

export function bytesText(n: number): string {
  if (n >= 2 ** 30 && n % 2 ** 30 === 0) return `${n / 2 ** 30} GiB`;
  if (n >= 2 ** 20 && n % 2 ** 20 === 0) return `${n / 2 ** 20} MiB`;
  return `${n} bytes`;
}

export { fileKind, openFailed, openInput, type OpenInput } from '../fs/open.js';

/** Reads `size` bytes from the start of an open file into a buffer of its own (a file that shrank gives fewer). */
export function readAll(fd: number, size: number): Buffer {
  const out = Buffer.allocUnsafeSlow(size);
  let done = 0;
  while (done < size) {
    const n = readSync(fd, out, done, Math.min(size - done, 1 << 30), done);
    if (n === 0) break;
    done += n;
  }
  return done === size ? out : out.subarray(0, done);
}

export interface ReadInputOptions {
  /** The most bytes the file may have. */
  limit: number;
  /** What the file is, for the message when it is too large: 'data file', 'recipe'. */
  what: string;
  /** The file to open when it is not `name` (a resolved path). */
  file?: string;
}

/** Reads a whole file under the policy, refusing one over `limit` bytes before reading it. */
export function readInput(name: string, options: ReadInputOptions): Buffer {
  const { fd, stat } = openInput(name, options.file);
  try {
    if (stat.size > options.limit) {
      throw new InputError(`${name}: ${stat.size} bytes, over the ${bytesText(options.limit)} limit for a ${options.what}`);
    }
    return readAll(fd, stat.size);
  } finally {
    closeSync(fd);
  }
}

/** Reads a whole text file (UTF-8) under the policy. */
export function readInputText(name: string, options: Omit<ReadInputOptions, 'limit'> & { limit?: number }): string {
  return readInput(name, { ...options, limit: options.limit ?? TEXT_FILE_LIMIT }).toString('utf8');
}

/** The real path of a folder the user named, for inside(). */
export function realFolder(dir: string): string {
  try {
    return realpathSync(dir);
  } catch (e) {
    throw openFailed(dir, e);
  }
}

/**
 * The real path of `path`, found inside the data folder `folder` (whose real path is `realRoot`),
 * refusing it when symbolic links lead outside that folder. The caller opens the returned path, so
 * the link cannot be changed between the check and the read.
 */
export function insideDataFolder(path: string, folder: string, realRoot: string): string {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${path}: a symbolic link to nothing`);
    throw openFailed(path, e);
  }
  const rel = relative(realRoot, real);
  if (rel === '..' || rel.startsWith('../') || rel.startsWith('..\\') || isAbsolute(rel)) {
    throw new InputError(`${path}: links outside its data folder ${folder}`);
  }
  return real;
}
