// The in-memory model: the decoded ModelProto plus where it came from, so that tensors stored in
// external files can be read when a pass needs them and copied when the model is written.
import type { ExternalRef } from '../io/external.js';
import type { GraphProto, ModelProto, TensorProto } from './onnx.js';

export interface ModelSource {
  /** The .onnx file the model was read from (absolute). */
  readonly path: string;
  /** The path as the user gave it, for messages and reports. */
  readonly given: string;
  /** Its folder: external data locations are relative to it. */
  readonly dir: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** The file's bytes: tensor data of the model are views into them. */
  readonly buffer?: Uint8Array;
}

export class Model {
  /** External-data references of the tensors that still point at the source's files. */
  readonly external = new Map<TensorProto, ExternalRef>();

  constructor(
    public proto: ModelProto,
    readonly source?: ModelSource,
  ) {}

  get graph(): GraphProto {
    if (!this.proto.graph) throw new Error('model has no graph');
    return this.proto.graph;
  }

  /** Files this model's data comes from: the model file and every external data file. */
  sourceFiles(): string[] {
    const files = new Set<string>();
    if (this.source) files.add(this.source.path);
    for (const ref of this.external.values()) files.add(ref.file);
    return [...files];
  }
}
