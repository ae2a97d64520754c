// One external data file for several models (compress A.onnx B.onnx … -o DIR with any share pass): every
// initializer of at least the threshold is stored once by its bytes (a sha256 of them), whatever its
// name, dtype or shape, and every model that holds those bytes points at the same offset. A 2-D
// tensor whose transpose is already stored becomes a Transpose node of a new initializer that reads
// the stored bytes. Tensors still in a file (read lazily, or external data) are hashed and copied in
// pieces; only a 2-D tensor checked for a transposed copy is held in memory, one at a time.
// A pass's new tensors are settled as they are made (settle, as OutputData for one model): written,
// or found already stored, at once, so that their bytes need not stay in memory. A settled tensor
// equal to the transpose of stored bytes is left where it is: store() makes it a Transpose after
// the passes (a node cannot be added while a pass is running).
// Nothing is renamed into place until the caller commits, after every model is written.
import { createHash } from 'node:crypto';
import type { Model } from '../ir/model.js';
import { intsAttribute, makeNode } from '../ir/build.js';
import { ModelEditor } from '../ir/editor.js';
import { forEachGraph } from '../ir/walk.js';
import { toNumber, transposedBytes } from '../ir/tensor.js';
import { dtypeInfo } from '../ir/dtype.js';
import { TempFile } from './atomic.js';
import { dataOf, setData, type TensorData } from '../ir/data.js';
import { FileRange } from '../ir/file-range.js';
import { repointSettled } from './write.js';
import type { GraphProto, TensorProto } from '../ir/onnx.js';
import { DataType } from '../ir/onnx.js';

const LARGE_TENSOR = 1 << 20;

/** Page-aligned large tensors can be memory-mapped by ONNX Runtime; others are 64-byte aligned (as io/write.ts). */
function alignedOffset(end: number, length: number): number {
  const align = length >= LARGE_TENSOR ? 4096 : 64;
  return end + ((align - (end % align)) % align);
}

/** What was stored once: its offset and length, and the models that read it. */
interface Stored {
  offset: number;
  length: number;
  models: Set<number>;
  /** The tensor it was written for (any other tensor reading it reuses it). */
  owner: TensorProto;
}

export interface SharedTotals {
  /** Distinct tensors stored in the file. */
  storedTensors: number;
  /** Stored tensors that two or more models read. */
  sharedTensors: number;
  /** Their bytes. */
  sharedBytes: number;
  /** Bytes not written again because they were already stored (tensors and transposed copies). */
  savedBytes: number;
  /** Tensors (of all models) that read bytes stored for another tensor. */
  reused: number;
  /** Of those, transposed copies now computed by a Transpose node. */
  transposed: number;
  /** Tensors written, or found stored, as a pass made them (settle) rather than after the passes. */
  settled: number;
}

export interface StoreResult {
  /** Tensors of this model that read bytes already stored. */
  reused: number;
  transposed: number;
  /** Bytes of this model's tensors that were already stored. */
  savedBytes: number;
  /** Bytes of the file this model reads (each stored range once). */
  readsBytes: number;
}

/**
 * Bytes per element: whole bytes, or 0.5 for int4 and uint4 (two a byte, the first in the low bits:
 * clustering's codes), which Transpose takes from opset 21 on.
 */
function elementBytes(t: TensorProto): number | undefined {
  const bits = dtypeInfo(t.data_type)?.bits ?? 0;
  if (bits === 4) return t.data_type === DataType.UINT4 || t.data_type === DataType.INT4 ? 0.5 : undefined;
  return bits >= 8 && bits % 8 === 0 ? bits / 8 : undefined;
}

function hashOf(bytes: TensorData): string {
  const h = createHash('sha256');
  if (bytes instanceof Uint8Array) h.update(bytes);
  else bytes.writeTo((chunk) => h.update(chunk));
  return h.digest('hex');
}

export class SharedData {
  readonly file: TempFile;
  private readonly byHash = new Map<string, Stored>();
  private readonly byOffset = new Map<number, Stored>();
  private readonly settled: TensorProto[] = [];
  /** `size|rows|cols` of the 2-D tensors stored: only a tensor whose transpose has such a shape is transposed and hashed. */
  private readonly matrices = new Set<string>();
  private reused = 0;
  private transposes = 0;
  private saved = 0;
  private settledCount = 0;
  private models = 0;
  /** While a model's passes run: whether it looks for transposed copies (settle's question). */
  private current: { transpose: boolean } | undefined;

  /**
   * @param path the file's final path (checked by the caller with prepareOutputs)
   * @param location its name as the models write it (relative to their folder)
   */
  constructor(
    readonly path: string,
    readonly location: string,
    private readonly threshold: number,
  ) {
    this.file = new TempFile(path);
  }

  /**
   * Stores every initializer of at least the threshold of `model` (every graph) in the file, once
   * by its bytes, and points the tensor at it. With `transpose`, a 2-D tensor of a main or sub
   * graph whose transpose is stored becomes a Transpose node (its name kept as the node's output)
   * of a new initializer reading the stored bytes.
   */
  store(model: Model, options: { transpose: boolean }): StoreResult {
    const index = this.models++;
    this.current = undefined;
    const result: StoreResult = { reused: 0, transposed: 0, savedBytes: 0, readsBytes: 0 };
    const reads = new Set<Stored>();
    let edits: ModelEditor | undefined;
    const sites: { graph: GraphProto; tensor: TensorProto }[] = [];
    forEachGraph(model.proto, ({ graph }) => {
      for (const tensor of graph.initializer) sites.push({ graph, tensor });
    });
    for (const { graph, tensor } of sites) {
      const bytes = dataOf(tensor);
      if (!bytes || bytes.byteLength < this.threshold || bytes.byteLength === 0) continue;
      const settled = this.offsetOf(bytes);
      if (settled !== undefined) {
        // Settled while the passes ran: written then, or found already stored.
        const entry = this.byOffset.get(settled)!;
        entry.models.add(index);
        reads.add(entry);
        if (entry.owner !== tensor) {
          result.reused++;
          result.savedBytes += entry.length;
        }
        continue;
      }
      const digest = hashOf(bytes);
      const same = this.byHash.get(digest);
      if (same && same.length === bytes.byteLength) {
        this.point(tensor, same);
        same.models.add(index);
        reads.add(same);
        result.reused++;
        result.savedBytes += same.length;
        continue;
      }
      const size = elementBytes(tensor);
      const name = tensor.name ?? '';
      const [rows, cols] = tensor.dims.map(toNumber) as [number, number];
      if (
        options.transpose &&
        tensor.dims.length === 2 &&
        size !== undefined &&
        this.matrices.has(`${size}|${cols}|${rows}`) &&
        this.replaceable(graph, model, name, size)
      ) {
        const flipped = transposedBytes(bytes instanceof Uint8Array ? bytes : bytes.load(), rows, cols, size);
        const other = this.byHash.get(hashOf(flipped));
        if (other && other.length === flipped.byteLength) {
          edits ??= new ModelEditor(model);
          const home = edits.graph(graph);
          // The tensor keeps its name as the Transpose's output; the stored bytes get a new initializer [cols, rows].
          const source = edits.fresh(`${name}_shared_T`);
          home.removeInitializer(tensor);
          const stored: TensorProto = { ...tensor, name: source, dims: [cols, rows], external_data: [] };
          delete stored.data_location;
          this.point(stored, other);
          home.addInitializer(stored);
          home.insertNode(
            makeNode('Transpose', [source], [name], edits.fresh(`${name}_Transpose`), [intsAttribute('perm', [1, 0])]),
            'start',
          );
          other.models.add(index);
          reads.add(other);
          result.reused++;
          result.transposed++;
          result.savedBytes += other.length;
          continue;
        }
      }
      const entry = this.append(tensor, bytes, digest);
      entry.models.add(index);
      this.point(tensor, entry);
      reads.add(entry);
    }
    for (const s of reads) result.readsBytes += s.length;
    this.reused += result.reused;
    this.transposes += result.transposed;
    this.saved += result.savedBytes;
    return result;
  }

  /**
   * Opens the next model (the one store() takes next): from now on its passes may settle tensors,
   * looking for transposed copies as `options` says.
   */
  begin(options: { transpose: boolean }): void {
    this.current = options;
  }

  /**
   * The tensors a pass has made and no later pass changes (model.settle): each held in memory
   * and of at least the threshold is written, or pointed at the same bytes already stored, and its
   * bytes leave memory. One equal to the transpose of stored bytes stays as it is, for store().
   */
  settle(tensors: readonly TensorProto[]): void {
    if (!this.current) throw new Error('SharedData.settle before begin');
    for (const t of tensors) {
      const raw = dataOf(t);
      if (!(raw instanceof Uint8Array) || raw.byteLength < this.threshold || raw.byteLength === 0) continue;
      const digest = hashOf(raw);
      const same = this.byHash.get(digest);
      if (same && same.length === raw.byteLength) {
        this.repoint(t, same);
        this.settledCount++;
        continue;
      }
      const size = elementBytes(t);
      if (this.current.transpose && t.dims.length === 2 && size !== undefined) {
        const [rows, cols] = t.dims.map(toNumber) as [number, number];
        if (
          this.matrices.has(`${size}|${cols}|${rows}`) &&
          this.byHash.get(hashOf(transposedBytes(raw, rows, cols, size)))?.length === raw.byteLength
        )
          continue;
      }
      this.repoint(t, this.append(t, raw, digest));
      this.settledCount++;
    }
  }

  /** Writes bytes not stored yet, aligned, and records them. */
  private append(tensor: TensorProto, bytes: TensorData, digest: string): Stored {
    this.file.pad(alignedOffset(this.file.bytes, bytes.byteLength) - this.file.bytes);
    const entry: Stored = { offset: this.file.bytes, length: bytes.byteLength, models: new Set(), owner: tensor };
    if (bytes instanceof Uint8Array) this.file.write(bytes);
    else bytes.writeTo((chunk) => this.file.write(chunk));
    this.byHash.set(digest, entry);
    this.byOffset.set(entry.offset, entry);
    const size = elementBytes(tensor);
    if (tensor.dims.length === 2 && size !== undefined) {
      const [rows, cols] = tensor.dims.map(toNumber) as [number, number];
      this.matrices.add(`${size}|${rows}|${cols}`);
    }
    return entry;
  }

  /** An initializer may become a Transpose's output unless it is part of the graph's interface (or 4-bit below opset 21). */
  private replaceable(graph: GraphProto, model: Model, name: string, size: number): boolean {
    if (graph.output.some((o) => o.name === name)) return false;
    const opset = model.proto.opset_import.find((o) => !o.domain || o.domain === 'ai.onnx')?.version;
    if (size < 1 && toNumber(opset ?? 1) < 21) return false;
    const ir = toNumber(model.proto.ir_version ?? 3);
    return !(ir >= 4 && graph.input.some((i) => i.name === name));
  }

  private point(t: TensorProto, at: Stored): void {
    this.repoint(t, at);
  }

  /** Points a tensor at stored bytes. */
  private repoint(t: TensorProto, at: Stored): void {
    setData(t, new FileRange(this.file.tmpPath, at.offset, at.length));
    this.settled.push(t);
  }

  /** Where a stored tensor's bytes are, or undefined for any other tensor (writeModel's question). */
  offsetOf(bytes: TensorData): number | undefined {
    return bytes instanceof FileRange && bytes.file === this.file.tmpPath ? bytes.offset : undefined;
  }

  totals(): SharedTotals {
    let sharedTensors = 0,
      sharedBytes = 0;
    for (const s of this.byHash.values()) {
      if (s.models.size > 1) {
        sharedTensors++;
        sharedBytes += s.length;
      }
    }
    return {
      storedTensors: this.byHash.size,
      sharedTensors,
      sharedBytes,
      savedBytes: this.saved,
      reused: this.reused,
      transposed: this.transposes,
      settled: this.settledCount,
    };
  }

  get bytes(): number {
    return this.file.bytes;
  }

  /** Renames the file into place; stored tensors then read from there. */
  commit(): void {
    this.file.commit();
    repointSettled(this.settled, this.file.tmpPath, this.path);
  }

  abort(): void {
    this.file.abort();
  }
}
