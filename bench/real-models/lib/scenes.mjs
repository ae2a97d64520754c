// The images the vision models see: text lines rendered in the system's DejaVu fonts (the OCR
// recognizer and angle classifier), documents and photos with text (the detector), and photos of a
// person, a cat and a cup of coffee (background removal).
import { FONTS, imageRgb, magickRgb, photo, textLine } from './media.mjs';

/** What the text lines say: the recognizer's expected reading. */
export const LINES = [
  'Invoice No. 2026-0142',
  'Total: $1,284.50',
  'Hello, World!',
  'ONNX Runtime 1.30',
  'The quick brown fox',
  'Meeting at 10:30 am',
  'Platform 9 3/4',
  'info@example.com',
  'Keep calm and carry on',
  'Room 204, Building B',
  'Open 7 days a week',
  'EXIT',
  'Speed limit 50',
  'Best before 2027-01-31',
  'Page 3 of 12',
  'Thank you!',
];
const LINE_FONTS = [FONTS.sans, FONTS.serif, FONTS.mono, FONTS.bold];

/** The lines at PaddleOCR's height of 48, each in its own width (squashed to `maxWidth` where wider). */
export function renderLines(maxWidth = Infinity) {
  return LINES.map((text, i) => textLine(text, LINE_FONTS[i % LINE_FONTS.length], 48, maxWidth));
}

/** A line turned upside down (what the angle classifier's class 1, "180", is for). */
export function rotated(line) {
  const rgb = Buffer.alloc(line.rgb.length);
  const pixels = line.width * line.height;
  for (let p = 0; p < pixels; p++) line.rgb.copy(rgb, (pixels - 1 - p) * 3, p * 3, p * 3 + 3);
  return { ...line, rgb };
}

const PARAGRAPH =
  'Quarterly report. Revenue grew 12% to $4.2 million, driven by new customers in Europe and Asia. ' +
  'Operating costs were flat. The board approved the 2027 budget on 14 March; the next meeting is on 2 June at 10:00.';

/** The detector's images, each in its own size (sides multiples of 32, as PaddleOCR resizes them). */
export function detImages(mediaDir) {
  const doc = magickRgb(
    [
      '-background',
      'white',
      '-fill',
      'black',
      '-font',
      FONTS.serif,
      '-pointsize',
      '20',
      '-size',
      '560x',
      `caption:${PARAGRAPH}`,
      '-gravity',
      'center',
      '-extent',
      '640x352',
    ],
    640,
    352,
  );
  const sign = magickRgb(
    [
      photo(mediaDir, 'coffee.png'),
      '-font',
      FONTS.bold,
      '-pointsize',
      '40',
      '-fill',
      'white',
      '-undercolor',
      '#00000080',
      '-annotate',
      '+40+70',
      'CAFE  OPEN 7-19',
      '-resize',
      '608x416!',
    ],
    608,
    416,
  );
  return [
    { name: 'rendered document', width: 640, height: 352, rgb: doc },
    { name: 'scanned page (skimage page.png)', width: 384, height: 192, rgb: imageRgb(photo(mediaDir, 'page.png'), 384, 192) },
    { name: 'photo with a sign (skimage coffee.png)', width: 608, height: 416, rgb: sign },
  ];
}

export const ISNET_SIZE = 1024;

/** Background removal's photos at IS-Net's 1024 × 1024 (stretched, as @imgly resizes them). */
export function isnetPhotos(mediaDir) {
  return ['astronaut.png', 'chelsea.png', 'coffee.png'].map((name) => ({
    name,
    rgb: imageRgb(photo(mediaDir, name), ISNET_SIZE, ISNET_SIZE),
  }));
}
