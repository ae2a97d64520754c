// Large tensors of a large model file stay in the file until something needs them. A quick scan of
// the protobuf structure finds the raw_data payloads of the main graph's initializers; everything
// else is read into a buffer of the file's size whose payload regions are never touched (so the
// operating system never gives them memory), and the decoded tensors point at the file instead.
// io/read.ts makes those payloads FileRanges (ir/file-range.ts): unchanged tensors are then copied
// from file to file in pieces, and a pass reads only what it uses.
import { closeSync, openSync, readSync } from 'node:fs';

/** Reads through a file in windows, for the structure scan. */
class Window {
  private readonly buf = Buffer.allocUnsafe(1 << 16);
  private start = 0;
  private end = 0;
  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}
  byte(pos: number): number {
    if (pos < this.start || pos >= this.end) {
      if (pos >= this.size) throw new RangeError('past the end');
      this.start = pos;
      this.end = pos + readSync(this.fd, this.buf, 0, this.buf.length, pos);
    }
    return this.buf[pos - this.start]!;
  }
  varint(pos: number): [number, number] {
    let value = 0,
      scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte(pos++);
      value += (b & 0x7f) * scale;
      if (b < 0x80) return [value, pos];
      scale *= 128;
    }
    throw new RangeError('bad varint');
  }
}

type Kind = 'model' | 'graph' | 'tensor';

function scan(w: Window, start: number, end: number, kind: Kind, minLength: number, holes: [number, number][]): void {
  let pos = start;
  while (pos < end) {
    const [tag, afterTag] = w.varint(pos);
    const field = Math.floor(tag / 8),
      wire = tag % 8;
    pos = afterTag;
    if (wire === 0) pos = w.varint(pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [length, payload] = w.varint(pos);
      if (payload + length > end) throw new RangeError('length past the end');
      if (kind === 'model' && field === 7) scan(w, payload, payload + length, 'graph', minLength, holes);
      else if (kind === 'graph' && field === 5) scan(w, payload, payload + length, 'tensor', minLength, holes);
      else if (kind === 'tensor' && field === 9 && length >= minLength) holes.push([payload, length]);
      pos = payload + length;
    } else throw new RangeError('unsupported wire type');
  }
}

/**
 * Reads a model file, leaving the raw_data payloads of main-graph initializers of at least
 * `minLength` bytes unread. Returns the buffer (payload regions untouched) and the payloads' ranges,
 * or undefined when the structure does not scan cleanly (the caller then reads the whole file and
 * lets the decoder report what is wrong).
 */
export function readWithHoles(file: string, size: number, minLength: number): { buffer: Buffer; holes: Map<number, number> } | undefined {
  const fd = openSync(file, 'r');
  try {
    const holes: [number, number][] = [];
    try {
      scan(new Window(fd, size), 0, size, 'model', minLength, holes);
    } catch {
      return undefined;
    }
    holes.sort((a, b) => a[0] - b[0]);
    const buffer = Buffer.allocUnsafeSlow(size);
    let pos = 0;
    const fill = (from: number, to: number) => {
      for (let at = from; at < to; ) {
        const n = readSync(fd, buffer, at, Math.min(16 << 20, to - at), at);
        if (n === 0) throw new Error(`${file}: ended early`);
        at += n;
      }
    };
    for (const [start, length] of holes) {
      fill(pos, start);
      pos = start + length;
    }
    fill(pos, size);
    return { buffer, holes: new Map(holes) };
  } finally {
    closeSync(fd);
  }
}
