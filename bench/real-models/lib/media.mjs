// The raw material of the inputs: speech synthesized by espeak-ng, text rendered with the system's
// DejaVu fonts by ImageMagick, and photos from Debian's python3-skimage package (its bundled sample
// images: an astronaut, a cat, a cup of coffee, a scanned page). All made offline, kept in cache/media.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RATE = 16000;

function need(tool, hint) {
  try {
    execFileSync('which', [tool], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} is not installed: ${hint}`);
  }
}

/** Mono 16-bit PCM WAV bytes → Float32 samples in [-1, 1) and the sample rate. */
function readWav(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 12;
  let rate = 0;
  while (at + 8 <= bytes.length) {
    const id = String.fromCharCode(...bytes.subarray(at, at + 4));
    const size = view.getUint32(at + 4, true);
    if (id === 'fmt ') rate = view.getUint32(at + 12, true);
    if (id === 'data') {
      const end = Math.min(bytes.length, at + 8 + size);
      const samples = new Float32Array((end - at - 8) >> 1);
      for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(at + 8 + 2 * i, true) / 32768;
      return { rate, samples };
    }
    at += 8 + size + (size & 1);
  }
  throw new Error('no data chunk in the WAV file');
}

export function writeWav(path, samples, rate = RATE) {
  const out = Buffer.alloc(44 + 2 * samples.length);
  out.write('RIFF', 0);
  out.writeUInt32LE(36 + 2 * samples.length, 4);
  out.write('WAVEfmt ', 8);
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(2 * rate, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36);
  out.writeUInt32LE(2 * samples.length, 40);
  samples.forEach((s, i) => {
    out.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(s * 32768))), 44 + 2 * i);
  });
  writeFileSync(path, out);
}

/** Band-limited resampling (windowed sinc, 32 taps a side, cut-off below both Nyquist rates). */
function resample(samples, from, to) {
  if (from === to) return samples;
  const ratio = from / to;
  const cutoff = 0.95 * Math.min(1, to / from);
  const taps = 32;
  const out = new Float32Array(Math.floor(samples.length / ratio));
  for (let i = 0; i < out.length; i++) {
    const t = i * ratio;
    const centre = Math.floor(t);
    let sum = 0;
    for (let k = centre - taps + 1; k <= centre + taps; k++) {
      if (k < 0 || k >= samples.length) continue;
      const x = t - k;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * cutoff * x) / (Math.PI * cutoff * x);
      const window = 0.5 + 0.5 * Math.cos((Math.PI * x) / taps);
      sum += samples[k] * cutoff * sinc * window;
    }
    out[i] = sum;
  }
  return out;
}

function seeded(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// What is said, by which voice, and the pause before it (seconds). The wake phrases of the openWakeWord
// models are in it, so that their detectors have something to detect.
const SCRIPT = [
  { voice: 'en-us', speed: 160, pause: 1.2, text: 'Hey Jarvis, what is the weather like today?' },
  { voice: 'en-gb', speed: 150, pause: 0.9, text: 'The quick brown fox jumps over the lazy dog.' },
  { voice: 'en-us', speed: 150, pause: 1.5, text: 'Alexa, play some music in the kitchen.' },
  { voice: 'en-us', speed: 170, pause: 0.7, text: 'Please call Stella and ask her to bring these things from the store.' },
  { voice: 'en-gb', speed: 150, pause: 1.3, text: 'Set a ten minute timer.' },
  { voice: 'en-us', speed: 140, pause: 1.0, text: 'Hey Rhasspy, turn on the lights in the living room.' },
  { voice: 'en-gb-scotland', speed: 160, pause: 0.8, text: 'Six thick thistle sticks. Numbers: one, two, three, four, five.' },
  { voice: 'en-us', speed: 150, pause: 1.6, text: 'Hey Jarvis, set a five minute timer.' },
];

/**
 * About 45 s of speech at 16 kHz: the script's sentences with pauses between, over a quiet noise
 * floor (−60 dBFS, seeded) and a faint 50 Hz hum, as a microphone would give. Returns the samples and
 * where speech is (sample ranges, from the synthesized sentences' extent).
 */
export function speech(mediaDir) {
  const path = join(mediaDir, 'speech-16k.wav');
  const spansPath = join(mediaDir, 'speech-16k.json');
  if (existsSync(path) && existsSync(spansPath)) {
    return { samples: readWav(readFileSync(path)).samples, speech: JSON.parse(readFileSync(spansPath, 'utf8')) };
  }
  need('espeak-ng', 'apt-get install -y espeak-ng');
  mkdirSync(mediaDir, { recursive: true });
  const parts = [];
  const spans = [];
  let length = 0;
  for (const line of SCRIPT) {
    const wav = execFileSync('espeak-ng', ['-v', line.voice, '-s', String(line.speed), '--stdout', line.text], { maxBuffer: 1 << 28 });
    const { rate, samples } = readWav(wav);
    const voice = resample(samples, rate, RATE);
    const pause = new Float32Array(Math.round(line.pause * RATE));
    parts.push(pause, voice);
    spans.push([length + pause.length, length + pause.length + voice.length]);
    length += pause.length + voice.length;
  }
  const tail = new Float32Array(RATE);
  parts.push(tail);
  length += tail.length;
  const out = new Float32Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  const random = seeded(16);
  for (let i = 0; i < out.length; i++) {
    const noise = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    out[i] = 0.7 * out[i] + 0.001 * noise + 0.002 * Math.sin((2 * Math.PI * 50 * i) / RATE);
  }
  writeWav(path, out);
  writeFileSync(spansPath, JSON.stringify(spans));
  return { samples: readWav(readFileSync(path)).samples, speech: spans };
}

// Debian's python3-skimage ships scikit-image's sample photos; its version and the images' hashes
// are pinned (the archive keeps one version per release).
const SKIMAGE_DEB = 'python3-skimage=0.19.3-8';
const PHOTOS = {
  'astronaut.png': '88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5',
  'chelsea.png': '596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb',
  'coffee.png': 'cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7',
  'page.png': '341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3',
  'rocket.jpg': 'c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c',
};

/** The path of one of the pinned sample photos, extracted from the Debian package once. */
export function photo(mediaDir, name) {
  const dir = join(mediaDir, 'skimage');
  const file = join(dir, 'usr/lib/python3/dist-packages/skimage/data', name);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    let deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
    if (!deb) {
      try {
        execFileSync('apt-get', ['download', SKIMAGE_DEB], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
      } catch {
        throw new Error(`apt-get download ${SKIMAGE_DEB} failed (run apt-get update first?)`);
      }
      deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
    }
    execFileSync('dpkg-deb', ['-x', join(dir, deb), dir]);
  }
  const hash = createHash('sha256').update(readFileSync(file)).digest('hex');
  if (PHOTOS[name] && hash !== PHOTOS[name]) throw new Error(`${name}: sha256 ${hash}, pinned ${PHOTOS[name]}`);
  return file;
}

/** Runs ImageMagick and returns the raw 8-bit RGB pixels of what it made, width × height. */
export function magickRgb(args, width, height) {
  need('convert', 'apt-get install -y imagemagick');
  const rgb = execFileSync('convert', [...args, '-depth', '8', 'rgb:-'], { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] });
  if (rgb.length !== width * height * 3) throw new Error(`convert ${args.join(' ')}: ${rgb.length} bytes, expected ${width}×${height}×3`);
  return rgb;
}

/** An image file resized (aspect not kept) to width × height, as RGB bytes. */
export function imageRgb(path, width, height) {
  return magickRgb([path, '-alpha', 'off', '-colorspace', 'sRGB', '-resize', `${width}x${height}!`], width, height);
}

export const FONTS = {
  sans: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  serif: '/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf',
  mono: '/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf',
  bold: '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
};

/** One line of text rendered black on white at `height` pixels high; its width follows the text, squashed to `maxWidth` where wider. */
export function textLine(text, font, height, maxWidth = Infinity) {
  need('convert', 'apt-get install -y imagemagick');
  const args = [
    '-background',
    'white',
    '-fill',
    'black',
    '-font',
    font,
    '-pointsize',
    String(2 * height),
    `label:${text}`,
    '-trim',
    '-bordercolor',
    'white',
    '-border',
    '6',
    '-resize',
    `x${height}`,
  ];
  let [width] = execFileSync('convert', [...args, '-format', '%w %h', 'info:'], { stdio: ['ignore', 'pipe', 'pipe'] })
    .toString()
    .trim()
    .split(' ')
    .map(Number);
  if (width > maxWidth) {
    args.push('-resize', `${maxWidth}x${height}!`);
    width = maxWidth;
  }
  return { width, height, rgb: magickRgb(args, width, height) };
}
