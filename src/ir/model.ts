// The in-memory model: the decoded ModelProto, whose tensors own their data (ir/data.ts), plus
// where it came from.
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
  /** The external data files its tensors were read from (resolved, inside its folder). */
  readonly dataFiles: readonly string[];
}

/** Hears of tensors a pass declares final: the writer of an external data output writes them at once. */
export type SettleListener = (tensors: TensorProto[]) => void;

export class Model {
  /** Set (by the pipeline) while the step whose new tensors are final runs. */
  private settleListener?: SettleListener;

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
    return this.source ? [this.source.path, ...this.source.dataFiles] : [];
  }

  /**
   * A pass hands over new tensors that nothing will change again (its output weights, when it is
   * the step the pipeline settles): a listener may write them and leave FileRanges in their place,
   * so that their bytes need not stay in memory. Without a listener, nothing happens.
   */
  settle(tensors: TensorProto[]): void {
    this.settleListener?.(tensors);
  }

  /** Installs (or with undefined removes) the listener settle() calls. */
  listenForSettled(listener: SettleListener | undefined): void {
    this.settleListener = listener;
  }
}
