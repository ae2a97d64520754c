// Task checks: does the compressed model still make the decisions the original makes on the same
// inputs? VAD speech/non-speech per 32 ms frame, wake-word detections per window, top-1 classes, the
// text the recognizer reads, text and foreground masks. Each check returns what the original found
// (`baseline`), what changed (`summary`), and `pass`.
import { speech } from './media.mjs';
import { ctcDecode, embeddings, embeddingWindows, headWindows, melFrames, runHead, runVad, session, tensor } from './pipelines.mjs';
import { LINES } from './scenes.mjs';
import { readTestDataSets } from './tensor-file.mjs';

const WAKE_THRESHOLD = 0.5;
const VAD_THRESHOLD = 0.5;

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function argmax(row) {
  let best = 0;
  for (let k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
  return best;
}

async function vad(ctx, original, compressed) {
  const { samples } = speech(ctx.mediaDir);
  const a = (await runVad(await session(original), samples)).probs;
  const b = (await runVad(await session(compressed), samples)).probs;
  const flips = a.filter((p, i) => p > VAD_THRESHOLD !== b[i] > VAD_THRESHOLD).length;
  const speechFrames = a.filter((p) => p > VAD_THRESHOLD).length;
  return {
    baseline: `${speechFrames} of ${a.length} frames speech`,
    summary: `${flips} of ${a.length} frame decisions changed, max |Δp| ${maxAbsDiff(a, b).toFixed(3)}`,
    pass: flips === 0,
  };
}

/** Detections of a head (score of its first output above 0.5) on every window of the embeddings. */
async function detections(head, emb) {
  const length = head.inputMetadata[0].shape[1];
  const rows = await runHead(head, headWindows(emb, length), length);
  return rows.map((r) => r[0]);
}

function compareDetections(name, a, b) {
  const flips = a.filter((p, i) => p > WAKE_THRESHOLD !== b[i] > WAKE_THRESHOLD).length;
  return { flips, windows: a.length, found: a.filter((p) => p > WAKE_THRESHOLD).length, max: Math.max(...a), diff: maxAbsDiff(a, b), name };
}

async function wake(ctx, original, compressed) {
  const { emb } = await ctx.wakeFeatures();
  const a = await detections(await session(original), emb);
  const b = await detections(await session(compressed), emb);
  const c = compareDetections('', a, b);
  return {
    baseline: `${c.found} of ${c.windows} windows detected (max score ${c.max.toFixed(3)})`,
    summary: `${c.flips} of ${c.windows} detections changed, max |Δscore| ${c.diff.toFixed(3)}`,
    pass: c.flips === 0,
  };
}

/** A front-end model (melspectrogram or embedding) replaced by its compressed copy: the detectors' decisions downstream. */
async function wakeFront(ctx, _original, compressed, entry) {
  const { samples, emb, windows } = await ctx.wakeFeatures();
  let emb2;
  if (entry.id === 'oww-melspectrogram') {
    const mel = await melFrames(await session(compressed), samples);
    emb2 = await embeddings(await session(ctx.modelPath('oww-embedding')), embeddingWindows(mel));
  } else emb2 = await embeddings(await session(compressed), windows);
  const results = [];
  for (const id of ['oww-hey-jarvis', 'oww-alexa', 'oww-hey-rhasspy']) {
    const head = await session(ctx.modelPath(id));
    results.push(compareDetections(id.replace('oww-', ''), await detections(head, emb), await detections(head, emb2)));
  }
  const flips = results.reduce((n, r) => n + r.flips, 0);
  return {
    baseline: results.map((r) => `${r.name} ${r.found}`).join(', ') + ` of ${results[0].windows} windows detected`,
    summary: `downstream detections changed: ${results.map((r) => `${r.name} ${r.flips}`).join(', ')}; max |Δscore| ${Math.max(...results.map((r) => r.diff)).toFixed(3)}`,
    pass: flips === 0,
  };
}

async function runSets(path, sets) {
  const s = await session(path);
  const outs = [];
  for (const set of sets) {
    const feeds = Object.fromEntries(Object.entries(set).map(([name, t]) => [name, tensor(t.data, t.dims)]));
    const out = await s.run(feeds);
    outs.push(out[s.outputNames[0]]);
  }
  return outs;
}

async function top1(ctx, original, compressed, entry) {
  if (entry.data === 'oww-head') {
    const { emb } = await ctx.wakeFeatures();
    const head = await session(original);
    const length = head.inputMetadata[0].shape[1];
    const windows = headWindows(emb, length);
    const a = (await runHead(head, windows, length)).map(argmax);
    const b = (await runHead(await session(compressed), windows, length)).map(argmax);
    const flips = a.filter((k, i) => k !== b[i]).length;
    return {
      baseline: `${a.filter((k) => k !== 0).length} of ${a.length} windows not class 0 (background)`,
      summary: `${flips} of ${a.length} top-1 classes changed`,
      pass: flips === 0,
    };
  }
  const sets = readTestDataSets(ctx.dataDir);
  const rows = async (path) =>
    (await runSets(path, sets)).flatMap((t) => {
      const [n, k] = t.dims;
      return Array.from({ length: n }, (_, i) => argmax(t.data.subarray(i * k, (i + 1) * k)));
    });
  const a = await rows(original);
  const b = await rows(compressed);
  const truth = a.map((_, i) => (i < a.length / 2 ? 0 : 1));
  const flips = a.filter((k, i) => k !== b[i]).length;
  return {
    baseline: `${a.filter((k, i) => k === truth[i]).length} of ${a.length} line angles right`,
    summary: `${flips} of ${a.length} top-1 changed`,
    pass: flips === 0,
  };
}

async function ctc(ctx, original, compressed) {
  const sets = readTestDataSets(ctx.dataDir);
  const keys = ctx.ocrKeys();
  const read = async (path) =>
    (await runSets(path, sets)).flatMap((t) => ctcDecode(t.data, t.dims).map((ids) => ids.map((k) => keys[k - 1] ?? ' ').join('')));
  const a = await read(original);
  const b = await read(compressed);
  const changed = a.filter((s, i) => s !== b[i]);
  return {
    baseline: `${a.filter((s, i) => s === LINES[i]).length} of ${a.length} lines read exactly`,
    summary: `${changed.length} of ${a.length} readings changed${changed.length ? ` (e.g. '${changed[0]}' → '${b[a.indexOf(changed[0])]}')` : ''}`,
    pass: changed.length === 0,
  };
}

async function mask(ctx, original, compressed, entry) {
  const sets = readTestDataSets(ctx.dataDir);
  const threshold = entry.data === 'isnet' ? 0.5 : 0.3;
  const a = await runSets(original, sets);
  const b = await runSets(compressed, sets);
  const ious = a.map((t, i) => {
    let both = 0;
    let either = 0;
    const u = t.data;
    const v = b[i].data;
    for (let p = 0; p < u.length; p++) {
      const x = u[p] > threshold;
      const y = v[p] > threshold;
      if (x && y) both++;
      if (x || y) either++;
    }
    return either === 0 ? 1 : both / either;
  });
  const cover = a.map((t) => t.data.filter((x) => x > threshold).length / t.data.length);
  return {
    baseline: `mask (> ${threshold}) covers ${cover.map((c) => `${(100 * c).toFixed(1)}%`).join(', ')}`,
    summary: `mask IoU ${ious.map((x) => x.toFixed(4)).join(', ')}`,
    pass: Math.min(...ious) >= 0.99,
  };
}

export const TASKS = { vad, wake, 'wake-front': wakeFront, top1, ctc, mask };
