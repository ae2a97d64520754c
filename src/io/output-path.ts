// The one policy for every file onnxpress writes (model, external data, report, recipe), checked
// before anything is read or written:
// - only a regular file, or nothing, may be replaced: a folder, a device, a FIFO or a socket never
//   (rename would put a regular file in place of /dev/null, as root too);
// - an existing file, or a symlink (even a dangling one), is replaced only with `force`, and then the
//   link itself is replaced: nothing is ever written through a symlink;
// - an input (the model, its data files, evaluation data, labels, a recipe) is never replaced, force
//   or not, and no two outputs may be the same file;
// - a file that must stay inside a folder (the external data file beside its model) must still be
//   there once symlinks in its path are resolved;
// - missing folders are created one level at a time, only after every check passed, and removed
//   again when the run fails (Node's recursive mkdir spins forever under /proc).
import { lstatSync, mkdirSync, realpathSync, rmdirSync, statSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { OutputError, UsageError } from '../errors.js';
import { fileKind } from './input-path.js';

export interface OutputTarget {
  path: string;
  /** What the file is, for messages: 'output', 'external data file', 'report', 'recipe'. */
  role: string;
  /** A folder the file must stay inside once symlinks are resolved. */
  within?: string;
}

export interface OutputPolicy {
  /** Replace existing regular files (and symlinks). */
  force: boolean;
  /** Files this run reads: never replaced. */
  inputs?: readonly string[];
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw new UsageError(`${path}: a part of its folder is a file, not a folder`);
    throw new OutputError(`${path}: cannot look at it (${code ?? String(e)})`);
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

const sameInode = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino;

function isInside(child: string, folder: string): boolean {
  const rel = relative(folder, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Refuses a `..` that backs out of a folder that does not exist or is a symbolic link: there the
 * kernel's reading of the path (through the link, or not at all) and the written path (resolved by
 * name) would name different files.
 */
function checkDotDot(path: string, role: string): void {
  const parts = path.split(/[\\/]+/);
  let prefix = isAbsolute(path) ? '/' : '.';
  for (const part of parts) {
    if (part === '..') {
      const stat = lstatOrUndefined(prefix);
      if (!stat || stat.isSymbolicLink()) {
        throw new UsageError(
          `${path}: the ${role}'s path goes through '..' below ${stat ? 'a symbolic link' : 'a folder that does not exist'}`,
        );
      }
    }
    if (part !== '') prefix = join(prefix, part);
  }
}

/** The nearest existing folder above `path`, and the folders below it still to be created. */
function existingAncestor(path: string): { folder: string; missing: string[] } {
  const missing: string[] = [];
  let dir = dirname(resolve(path));
  for (;;) {
    const stat = lstatOrUndefined(dir);
    if (stat) {
      const target = stat.isSymbolicLink() ? statOrUndefined(dir) : stat;
      if (!target) throw new UsageError(`${path}: its folder ${dir} is a dangling symbolic link`);
      if (!target.isDirectory()) throw new UsageError(`${path}: ${dir} is ${fileKind(target)}, not a folder`);
      break;
    }
    missing.unshift(dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return { folder: dir, missing };
}

/** `path` with every symbolic link in its existing part resolved (the rest cannot hold links yet). */
function physical(path: string): string {
  const full = resolve(path);
  let dir = full;
  for (;;) {
    try {
      return join(realpathSync(dir), relative(dir, full));
    } catch {
      const parent = dirname(dir);
      if (parent === dir) return full;
      dir = parent;
    }
  }
}

/** Checks one output against the policy; returns the folders that would have to be created for it. */
function checkOne(target: OutputTarget, policy: OutputPolicy, inputs: Stats[]): string[] {
  const { role } = target;
  checkDotDot(target.path, role);
  // Checked and written by the resolved name (what TempFile and the writer use).
  const path = resolve(target.path);
  const { missing } = existingAncestor(path);
  if (target.within !== undefined && !isInside(physical(dirname(path)), physical(target.within))) {
    throw new UsageError(`${target.path}: the ${role} would be written outside ${target.within} (through a symbolic link)`);
  }
  const link = lstatOrUndefined(path);
  if (!link) return missing;
  const stat = link.isSymbolicLink() ? statOrUndefined(path) : link;
  if (stat && inputs.some((i) => sameInode(i, stat)))
    throw new UsageError(`${target.path}: refusing to replace an input of this run with the ${role}`);
  if (stat && !stat.isFile()) {
    const through = link.isSymbolicLink() ? ' (through a symbolic link)' : '';
    throw new UsageError(`${target.path}: is ${fileKind(stat)}${through}; only a regular file can be replaced by the ${role}`);
  }
  if (!policy.force) {
    const what = link.isSymbolicLink() ? (stat ? 'is a symbolic link' : 'is a dangling symbolic link') : 'exists';
    throw new UsageError(`${target.path}: ${what}; pass --force to replace it with the ${role}`);
  }
  return [];
}

/**
 * Checks every output of a run together against the policy (see the top of this file). Returns the
 * folders to create, shallowest first; nothing is created here.
 */
export function checkOutputs(targets: readonly OutputTarget[], policy: OutputPolicy): string[] {
  const inputs = (policy.inputs ?? []).map(statOrUndefined).filter((s): s is Stats => s !== undefined);
  const folders = new Set<string>();
  const seen = new Map<string, OutputTarget>();
  for (const target of targets) {
    const key = resolve(target.path);
    const earlier = seen.get(key);
    if (earlier) throw new UsageError(`${target.path}: given as both the ${earlier.role} and the ${target.role}`);
    seen.set(key, target);
    for (const dir of checkOne(target, policy, inputs)) folders.add(dir);
  }
  return [...folders].sort((a, b) => a.split(sep).length - b.split(sep).length);
}

const created: string[] = [];

/** Creates `folders` (shallowest first), one level at a time; remembered so that a failed run removes them. */
export function createFolders(folders: readonly string[]): void {
  for (const dir of folders) {
    if (statOrUndefined(dir)?.isDirectory()) continue;
    try {
      mkdirSync(dir);
    } catch (e) {
      throw new OutputError(`${dir}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    created.push(dir);
  }
}

/** Checks the outputs, then creates their missing folders. */
export function prepareOutputs(targets: readonly OutputTarget[], policy: OutputPolicy): void {
  createFolders(checkOutputs(targets, policy));
}

/** Removes the folders this run created, deepest first, where they are still empty: called when a run fails. */
export function removeCreatedFolders(): void {
  while (created.length > 0) {
    try {
      rmdirSync(created.pop()!);
    } catch {
      /* not empty, or gone */
    }
  }
}

/** A last look just before a file is renamed into place: what is there now must still be replaceable. */
export function checkReplaceable(path: string): void {
  let stat: Stats;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isFile() && !stat.isSymbolicLink())
    throw new OutputError(`${path}: is ${fileKind(stat)} now; only a regular file can be replaced`);
}

/** Creates the folder `dir` (and missing folders above it) for a run's outputs; an existing folder is fine. */
export function prepareFolder(dir: string, role: string): void {
  const stat = lstatOrUndefined(dir);
  const target = stat?.isSymbolicLink() ? statOrUndefined(dir) : stat;
  if (stat && !target?.isDirectory())
    throw new UsageError(`${dir}: is ${target ? fileKind(target) : 'a dangling symbolic link'}, not a folder for the ${role}`);
  if (!stat) createFolders([...existingAncestor(join(dir, 'file')).missing]);
}
