// Tensor bytes that are still in a file: a large payload of a lazily read model, a tensor in an
// external data file, or one already written to an output's data file. One type for all three, so
// that a tensor's data is either bytes in memory or a FileRange, held in one place (ir/data.ts).
import { closeSync, readSync } from 'node:fs';
import { InputError } from '../errors.js';
import { openInput } from '../fs/open.js';

/** Where a chunk copied from a file was read (a writer may then copy it in the kernel). */
export interface ChunkOrigin {
  file: string;
  offset: number;
}

/** Receives bytes in order, each chunk with where it was read. */
export type ChunkSink = (chunk: Uint8Array, origin?: ChunkOrigin) => void;

/** A byte range of a file, read when asked for. */
export class FileRange {
  /**
   * `location`: set when the range is a tensor's external data as the model it came from wrote it
   * (relative to that model's folder); a writer then keeps the tensor in an external data file.
   */
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly length: number,
    readonly location?: string,
  ) {}

  get byteLength(): number {
    return this.length;
  }

  get origin(): ChunkOrigin {
    return { file: this.file, offset: this.offset };
  }

  /** Whether the range came from an external data file of the model that was read. */
  get external(): boolean {
    return this.location !== undefined;
  }

  /** The bytes, read into a new (aligned) buffer. */
  load(): Uint8Array {
    return readRange(this.file, this.offset, this.length);
  }

  /** The same bytes, now in `file` at `offset` (a data file renamed into place, a settled tensor). */
  movedTo(file: string, offset = this.offset): FileRange {
    return new FileRange(file, offset, this.length);
  }

  /** Hands the bytes to `write` in pieces of one shared buffer (each consumed before the next read). */
  writeTo(write: ChunkSink): void {
    const chunk = copyBuffer();
    const reader = new RangeReader(this.file);
    try {
      for (let done = 0; done < this.length; ) {
        const n = Math.min(chunk.length, this.length - done);
        reader.readInto(this.offset + done, chunk.subarray(0, n));
        write(chunk.subarray(0, n), { file: this.file, offset: this.offset + done });
        done += n;
      }
    } finally {
      reader.close();
    }
  }
}

let shared: Buffer | undefined;

/**
 * One buffer for every file-to-file copy (the sink consumes each chunk before the next read): a new
 * buffer per tensor costs a page fault per 4 KiB copied, and chunks of 1 MiB stay in the cache.
 */
function copyBuffer(): Buffer {
  shared ??= Buffer.allocUnsafeSlow(1 << 20);
  return shared;
}

/** Reads `length` bytes at `offset` of a file into a new (aligned) buffer. */
export function readRange(file: string, offset: number, length: number): Uint8Array {
  const out = Buffer.allocUnsafeSlow(length);
  readRangeInto(file, offset, out);
  return out;
}

/** Reads `out.length` bytes of `file` from `offset` into `out`. */
export function readRangeInto(file: string, offset: number, out: Uint8Array): void {
  const reader = new RangeReader(file);
  try {
    reader.readInto(offset, out);
  } finally {
    reader.close();
  }
}

/** Reads ranges of one file, which stays open until close(). */
export class RangeReader {
  private readonly fd: number;

  constructor(readonly file: string) {
    this.fd = openInput(file).fd;
  }

  /** Reads `out.length` bytes from `offset` into `out`. */
  readInto(offset: number, out: Uint8Array): void {
    const length = out.length;
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n === 0) throw new InputError(`${this.file}: ended before byte ${offset + length}`);
      done += n;
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}
