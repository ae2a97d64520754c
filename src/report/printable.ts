// Text from a model file (names, producer, doc strings) or from a data file is the file author's, not
// ours: printed raw, an ANSI escape could rewrite the terminal, a newline could forge a line of the
// report, and a name a megabyte long would flood it. Everything that reaches a terminal or a text
// report goes through here; JSON keeps the exact values, with the characters that terminals act on
// escaped.

/** C0 and C1 control characters, DEL, and the Unicode marks that reorder or hide text. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]/g;

/** Longest piece of outside text shown in a terminal or text report; longer ones end in an ellipsis. */
export const MAX_SHOWN_TEXT = 256;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with control characters shown as escapes and cut to `max` characters. */
export function printableText(text: string, max = MAX_SHOWN_TEXT): string {
  const safe = text.replace(UNSAFE, escapeChar);
  return safe.length > max ? `${safe.slice(0, max - 1)}…` : safe;
}

/** A copy of `value` in which every string (keys included) is printable. */
export function printable<T>(value: T, max = MAX_SHOWN_TEXT): T {
  if (typeof value === 'string') return printableText(value, max) as T;
  if (Array.isArray(value)) return value.map((v) => printable(v, max)) as T;
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[printableText(k, max)] = printable(v, max);
  return out as T;
}

/**
 * JSON text with the characters that JSON.stringify leaves raw but terminals act on (C1 controls,
 * DEL, line and paragraph separators, bidirectional marks) written as \u escapes: the values are
 * unchanged for any JSON reader.
 */
export function terminalSafeJson(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
