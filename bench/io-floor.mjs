// The I/O floor of a Node program: read a model file in 1 MB chunks and write FRACTION of each chunk
// to the output (1: a copy, 0.5: as fp16 writes, ~0.25: as int8 writes), on THREADS threads taking
// chunks in turn (thread t: chunks t, t + THREADS, …, so that the output grows from its start, as
// onnxpress's writers grow it), with no parsing and no arithmetic. Whatever onnxpress does on top of
// reading and writing the bytes, it cannot take less than this; `cp` (copy_file_range, an in-kernel
// copy) is the other bound.
//   node bench/io-floor.mjs MODEL OUT FRACTION THREADS
import fs from 'node:fs';
import { Worker, isMainThread, workerData } from 'node:worker_threads';

const CHUNK = 1 << 20;

function part(src, dst, fraction, first, step) {
  const size = fs.fstatSync((src = { fd: fs.openSync(src, 'r') }).fd).size;
  const output = fs.openSync(dst, 'r+');
  const buf = Buffer.allocUnsafe(CHUNK);
  for (let off = first * CHUNK; off < size; off += step * CHUNK) {
    const n = fs.readSync(src.fd, buf, 0, Math.min(CHUNK, size - off), off);
    fs.writeSync(output, buf, 0, Math.floor(n * fraction), Math.floor(off * fraction));
  }
  fs.closeSync(src.fd);
  fs.closeSync(output);
}

if (isMainThread) {
  const [src, dst, fractionArg = '1', threadsArg = '2'] = process.argv.slice(2);
  const fraction = Number(fractionArg);
  const threads = Number(threadsArg);
  // Created empty, not truncated to its size: on ext4 a file extended by ftruncate and then written
  // makes close wait for its blocks to be allocated (src/io/copy.ts says the same of fs.copyFile).
  fs.closeSync(fs.openSync(dst, 'w'));
  const others = [];
  for (let t = 1; t < threads; t++)
    others.push(
      new Promise((done) => new Worker(new URL(import.meta.url), { workerData: { src, dst, fraction, t, threads } }).on('exit', done)),
    );
  part(src, dst, fraction, 0, threads);
  await Promise.all(others);
} else part(workerData.src, workerData.dst, workerData.fraction, workerData.t, workerData.threads);
