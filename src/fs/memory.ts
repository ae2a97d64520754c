// How much memory this process may use: the machine's, or less where a memory cgroup limits it (a
// container, a CI job, `systemd-run -p MemoryMax=`). The writer asks before holding a whole
// single-file output in memory (pipeline/compress.ts).
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';

export interface MemoryLimit {
  bytes: number;
  /** Where the figure comes from, for messages: 'the machine', or the cgroup file that sets it. */
  source: string;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The limit a cgroup file holds, or undefined for "max", a missing file or v1's "no limit" (about 2⁶³). */
function limitIn(path: string): number | undefined {
  const text = read(path)?.trim();
  if (!text || !/^\d+$/.test(text)) return undefined;
  const bytes = Number(text);
  return bytes < 2 ** 60 ? bytes : undefined;
}

/** The cgroup folders from this process's own up to the hierarchy's root (every level's limit applies). */
function ancestors(mount: string, path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.' && p !== '..');
  return Array.from({ length: parts.length + 1 }, (_, i) => join(mount, ...parts.slice(0, parts.length - i)));
}

/**
 * The smallest of the machine's memory and every memory cgroup limit above this process (v2
 * `memory.max`, v1 `memory.limit_in_bytes`). `root` is where /proc and /sys are found (tests).
 */
export function memoryLimit(root = '/'): MemoryLimit {
  let best: MemoryLimit = { bytes: totalmem(), source: 'the machine' };
  const consider = (file: string) => {
    const bytes = limitIn(file);
    if (bytes !== undefined && bytes < best.bytes) best = { bytes, source: file.slice(root.length - 1) };
  };
  for (const line of (read(join(root, 'proc/self/cgroup')) ?? '').split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controllers === '') for (const dir of ancestors(join(root, 'sys/fs/cgroup'), path)) consider(join(dir, 'memory.max'));
    else if (controllers!.split(',').includes('memory'))
      for (const dir of ancestors(join(root, 'sys/fs/cgroup/memory'), path)) consider(join(dir, 'memory.limit_in_bytes'));
  }
  return best;
}
