#!/usr/bin/env node
// Builds each model's evaluation data in cache/data/ID/ (test_data_set_N/input_K.pb, what `compress
// --eval --data` reads), from realistic inputs: speech synthesized by espeak-ng for the VADs and the
// wake-word chain (states and features computed by the original upstream models, as the packages run
// them), text lines and documents rendered with the DejaVu fonts for OCR, photos for background removal.
//
//   node bench/real-models/inputs.mjs [--force] [ID…]
// Needs espeak-ng and ImageMagick (apt-get install -y espeak-ng imagemagick) and, once, Debian's
// python3-skimage package file for its sample photos (apt-get download; run apt-get update first).
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, fetchModel, readList } from './fetch.mjs';
import { speech } from './lib/media.mjs';
import {
  detInput,
  embeddings,
  embeddingWindows,
  headWindows,
  int16Scale,
  isnetInput,
  lineBatch,
  melFrames,
  runVad,
  session,
  vadBatches,
} from './lib/pipelines.mjs';
import { detImages, ISNET_SIZE, isnetPhotos, LINES, renderLines, rotated } from './lib/scenes.mjs';
import { writeTestDataSets } from './lib/tensor-file.mjs';

export const mediaDir = join(cacheDir, 'media');
export const dataDir = join(cacheDir, 'data');

const byId = (id) => readList().find((m) => m.id === id);

/** The speech and what the upstream openWakeWord models make of it (used by the head models' data and checks). */
export async function wakeFeatures() {
  const { samples } = speech(mediaDir);
  const mel = await melFrames(await session(fetchModel(byId('oww-melspectrogram'))), samples);
  const windows = embeddingWindows(mel);
  const emb = await embeddings(await session(fetchModel(byId('oww-embedding'))), windows);
  return { samples, mel, windows, emb };
}

/** A head's window length: its input's second dimension. */
export async function headLength(head) {
  return head.inputMetadata[0].shape[1];
}

const builders = {
  /** Each 32 ms frame with the state the model itself carried to it, 128 frames a batch. */
  async vad(entry) {
    const run = await runVad(await session(fetchModel(entry)), speech(mediaDir).samples, true);
    const batches = vadBatches(run, 128);
    return {
      batches,
      about: `${run.frames.length} frames of ${run.frameLength} samples of espeak-ng speech (16 kHz), states carried, 128 a batch`,
    };
  },
  /** 80 ms chunks with openWakeWord's 480 samples of overlap, int16 scale, 64 a batch. */
  async 'oww-mel'() {
    const samples = int16Scale(speech(mediaDir).samples);
    const chunk = 1280 + 480;
    const starts = [];
    for (let s = 0; s + chunk <= samples.length; s += 1280) starts.push(s);
    const batches = [];
    for (let b = 0; b < starts.length; b += 64) {
      const rows = starts.slice(b, b + 64);
      const data = new Float32Array(rows.length * chunk);
      rows.forEach((s, i) => {
        data.set(samples.subarray(s, s + chunk), i * chunk);
      });
      batches.push([{ name: 'input', dims: [rows.length, chunk], data }]);
    }
    return { batches, about: `${starts.length} chunks of 1760 samples of espeak-ng speech, 64 a batch` };
  },
  /** The melspectrogram model's frames of the speech, 76-frame windows every 80 ms, 64 a batch. */
  async 'oww-embedding'() {
    const { windows } = await wakeFeatures();
    const size = 76 * 32;
    const batches = [];
    for (let b = 0; b < windows.count; b += 64) {
      const n = Math.min(64, windows.count - b);
      batches.push([{ name: 'input_1', dims: [n, 76, 32, 1], data: windows.data.slice(b * size, (b + n) * size) }]);
    }
    return {
      batches,
      about: `${windows.count} mel windows (76 × 32) of espeak-ng speech from the package's melspectrogram model, 64 a batch`,
    };
  },
  /** The embedding model's features of the speech, one detector window (batch 1) every 3rd step. */
  async 'oww-head'(entry) {
    const head = await session(fetchModel(entry));
    const length = await headLength(head);
    const { emb } = await wakeFeatures();
    const windows = headWindows(emb, length, 3);
    const batches = windows.map((w) => [{ name: head.inputNames[0], dims: [1, length, 96], data: w }]);
    return {
      batches,
      about: `${windows.length} windows of ${length} speech embeddings (from the package's melspectrogram and embedding models), one every 240 ms`,
    };
  },
  /** A rendered document, a scanned page and a photo with a sign, each in its own size. */
  async 'ocr-det'() {
    const batches = detImages(mediaDir).map((img) => [
      { name: 'x', dims: [1, 3, img.height, img.width], data: detInput(img.rgb, img.width, img.height) },
    ]);
    return {
      batches,
      about:
        '3 images: a document rendered in DejaVu Serif (640×352), skimage page.png (384×192), skimage coffee.png with a sign (608×416)',
    };
  },
  /** 16 lines in 4 DejaVu faces, height 48, padded to the widest (PaddleOCR's batching). */
  async 'ocr-rec'() {
    const lines = renderLines();
    const width = Math.ceil(Math.max(...lines.map((l) => l.width)) / 8) * 8;
    return {
      batches: [[{ name: 'x', dims: [lines.length, 3, 48, width], data: lineBatch(lines, 48, width) }]],
      about: `${LINES.length} text lines rendered in DejaVu Sans/Serif/Mono/Bold, 48 × ${width}`,
    };
  },
  /** The same lines upright and upside down, squashed to 192 where wider (PaddleOCR's angle classifier input). */
  async 'ocr-cls'() {
    const lines = renderLines(192);
    const all = [...lines, ...lines.map(rotated)];
    return {
      batches: [[{ name: 'x', dims: [all.length, 3, 48, 192], data: lineBatch(all, 48, 192) }]],
      about: `${LINES.length} rendered text lines, upright and rotated 180°, 48 × 192`,
    };
  },
  /** Three photos at 1024 × 1024, one a batch. */
  async isnet() {
    const batches = isnetPhotos(mediaDir).map((p) => [
      { name: 'input', dims: [1, 3, ISNET_SIZE, ISNET_SIZE], data: isnetInput(p.rgb, ISNET_SIZE) },
    ]);
    return { batches, about: '3 photos (skimage astronaut, chelsea, coffee) at 1024×1024' };
  },
};
builders['silero-v4'] = builders.vad;
builders['silero-v5'] = builders.vad;

export function dataPath(entry) {
  return join(dataDir, entry.id);
}

/** Builds one model's data unless it is there; returns its folder. */
export async function buildData(entry, force = false) {
  const dir = dataPath(entry);
  if (existsSync(join(dir, 'about.json')) && !force) return dir;
  const build = builders[entry.data];
  if (!build) throw new Error(`${entry.id}: no input builder '${entry.data}'`);
  const { batches, about } = await build(entry);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeTestDataSets(dir, batches);
  writeFileSync(join(dir, 'about.json'), JSON.stringify({ about, batches: batches.length }));
  return dir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const force = args.includes('--force');
  const wanted = args.filter((a) => a !== '--force');
  for (const entry of readList().filter((m) => wanted.length === 0 || wanted.includes(m.id))) {
    const started = Date.now();
    const dir = await buildData(entry, force);
    console.log(`${entry.id.padEnd(24)} ${dir}  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
}
