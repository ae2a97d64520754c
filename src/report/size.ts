// Size accounting: bytes of the files written, and what they shrink to under gzip.
import { createReadStream } from 'node:fs';
import { createGzip } from 'node:zlib';

export interface FileSize {
  path: string;
  bytes: number;
}

export function totalBytes(files: FileSize[]): number {
  return files.reduce((n, f) => n + f.bytes, 0);
}

/** Bytes of the files gzip-compressed one after another (default level), measured by compressing them. */
export async function gzipBytes(paths: string[]): Promise<number> {
  const gzip = createGzip();
  let total = 0;
  gzip.on('data', (chunk: Buffer) => {
    total += chunk.length;
  });
  const done = new Promise<void>((resolve, reject) => {
    gzip.on('end', resolve);
    gzip.on('error', reject);
  });
  for (const path of paths) {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      if (!gzip.write(chunk)) await new Promise((r) => gzip.once('drain', r));
    }
  }
  gzip.end();
  await done;
  return total;
}
