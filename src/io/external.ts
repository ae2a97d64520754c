// External data: tensors whose bytes live in files beside the model (location, offset, length).
// Locations are relative paths inside the model's folder; anything else is refused, because a
// model file from the internet must not make us read (or later write) outside that folder. Like
// every input (input-path.ts), they must be regular files, opened without blocking.
import { closeSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { InputError } from '../errors.js';
import { openInput } from './input-path.js';
import type { TensorProto } from '../ir/onnx.js';
import { TENSOR_LOCATION_EXTERNAL } from '../ir/onnx.js';

export interface ExternalRef {
  /** The location as written in the model. */
  readonly location: string;
  /** The resolved file (inside the model's folder). */
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

export function isExternal(t: TensorProto): boolean {
  return t.data_location === TENSOR_LOCATION_EXTERNAL;
}

function entry(t: TensorProto, key: string): string | undefined {
  let value: string | undefined;
  for (const e of t.external_data) if (e.key === key) value = e.value;
  return value;
}

function parseCount(text: string | undefined, what: string, where: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)))
    throw new InputError(`${where}: external data ${what} '${text}' is not a valid byte count`);
  return Number(text);
}

/** Resolves an external-data location against the model's folder, refusing any path that leaves it. */
export function resolveLocation(modelDir: string, location: string, where: string): string {
  if (location === '' || location.includes('\0')) throw new InputError(`${where}: empty or invalid external data location`);
  if (isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location) || location.startsWith('\\')) {
    throw new InputError(
      `${where}: external data location '${location}' is an absolute path; only paths inside the model's folder are allowed`,
    );
  }
  const parts = location.split(/[\\/]+/);
  if (parts.includes('..')) throw new InputError(`${where}: external data location '${location}' leaves the model's folder`);
  const dir = realpathSync(modelDir);
  const candidate = join(dir, ...parts);
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch {
    throw new InputError(`${where}: external data file '${location}' not found next to the model`);
  }
  const rel = relative(dir, real);
  if (rel === '' || rel.startsWith('..' + sep) || rel === '..' || isAbsolute(rel)) {
    throw new InputError(`${where}: external data location '${location}' resolves through a link to outside the model's folder`);
  }
  return real;
}

/** Reads and checks a tensor's external-data reference; `where` names the model file in errors. */
export function externalRef(t: TensorProto, modelDir: string, where: string): ExternalRef {
  const name = t.name ?? '(unnamed)';
  const location = entry(t, 'location');
  if (location === undefined) throw new InputError(`${where}: tensor '${name}' is marked external but has no location`);
  const file = resolveLocation(modelDir, location, where);
  const { fd, stat } = openInput(`${where}: external data file '${location}'`, file);
  closeSync(fd);
  const offset = parseCount(entry(t, 'offset'), 'offset', where) ?? 0;
  const length = parseCount(entry(t, 'length'), 'length', where) ?? stat.size - offset;
  if (offset + length > stat.size) {
    throw new InputError(`${where}: tensor '${name}' needs bytes ${offset}..${offset + length} of '${location}', which has ${stat.size}`);
  }
  return { location, file, offset, length };
}
