// Opening a file for reading under the one input policy (io/input-path.ts states it): only a regular
// file, opened without blocking and checked on its descriptor. Below every other folder, because
// the IR reads tensor bytes still in files (ir/file-range.ts) and io reads everything else.
import { closeSync, constants, fstatSync, openSync, statSync, type Stats } from 'node:fs';
import { InputError } from '../errors.js';

/** "a FIFO", "a directory", ...: what a path is (from lstat or stat), for messages of both file policies. */
export function fileKind(stat: Stats): string {
  if (stat.isFile()) return 'a regular file';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'not a file';
}

function notRegular(name: string, stat: Stats): InputError {
  return new InputError(`${name}: not a regular file (it is ${fileKind(stat)})`);
}

export function openFailed(name: string, e: unknown): InputError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new InputError(`${name}: no such file`);
  if (code === 'EACCES' || code === 'EPERM') return new InputError(`${name}: permission denied`);
  if (code === 'ENOTDIR') return new InputError(`${name}: a part of its path is not a folder`);
  if (code === 'ELOOP') return new InputError(`${name}: too many levels of symbolic links`);
  return new InputError(`${name}: cannot read (${code ?? String(e)})`);
}

// O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer (regular
// files ignore it). O_NOCTTY: a terminal swapped in never becomes our controlling terminal.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

export interface OpenInput {
  fd: number;
  /** The descriptor's own stat: a regular file. */
  stat: Stats;
}

/**
 * Opens a file for reading under the policy. `name` is how errors name it (the path the user gave,
 * or a phrase); `file` is what is opened (a resolved path, by default `name`). Close the fd.
 */
export function openInput(name: string, file = name): OpenInput {
  let before: Stats;
  try {
    before = statSync(file);
  } catch (e) {
    throw openFailed(name, e);
  }
  // Refused before opening, so that a device is never opened at all.
  if (!before.isFile()) throw notRegular(name, before);
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (e) {
    throw openFailed(name, e);
  }
  const stat = fstatSync(fd);
  if (!stat.isFile()) {
    closeSync(fd);
    throw notRegular(name, stat);
  }
  return { fd, stat };
}
