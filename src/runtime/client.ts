// ONNX Runtime in a child process (child.ts), for every model onnxpress runs on a user's behalf. A
// model that crashes ONNX Runtime (SIGSEGV, abort on bad_alloc) ends the child, not onnxpress; one
// that runs forever (session.run blocks its thread: a Loop of 2^63-1 iterations never returns) is
// stopped by a timer here, which can fire because the blocked thread is in the other process.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { NamedArray } from '../io/testdata.js';
import { packagePath } from '../paths.js';
import { crashFailure, loadFailure, runFailure, timeoutFailure } from './failure.js';
import type { Collected, CollectResult, Compared, Reduction, Reply, Request, Summed } from './protocol.js';

/** Seconds an evaluation may spend in ONNX Runtime unless told otherwise (--eval-timeout). */
export const DEFAULT_EVAL_TIMEOUT_S = 600;

/** A session in the child, with the name errors give its model. */
export interface RemoteSession {
  id: number;
  label: string;
  /** The child it lives in (sessions end with their child). */
  child: ChildProcess;
}

/** The longest delay setTimeout takes (about 24.8 days); longer budgets wait in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Children alive, killed when onnxpress exits however it exits (a blocked child would not notice). */
const live = new Set<ChildProcess>();
let exitHook = false;

/** A child started ahead of the evaluation that will use it (prestartOrtChild). */
let spare: ChildProcess | undefined;

function childScript(): string {
  // The bundled child (starts sooner), else the compiled one; tests running the sources use them too.
  for (const p of [packagePath('dist', 'ort-child.mjs'), packagePath('dist', 'runtime', 'child.js')]) if (existsSync(p)) return p;
  throw new Error('onnxpress is not built: dist/ort-child.mjs is missing (run npm run build)');
}

function spawnChild(): ChildProcess {
  const child = fork(childScript(), [], {
    serialization: 'advanced',
    // Not the parent's flags (a test runner's loaders, --inspect), which the child does not need.
    execArgv: [],
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
    // ONNX Runtime may print; onnxpress's stdout is the report. Stderr is kept to explain crashes.
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  live.add(child);
  child.on('exit', () => live.delete(child));
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  return child;
}

/** Whether `child` holds the process open (a spare nobody takes must not). */
function hold(child: ChildProcess, held: boolean): void {
  // The stderr pipe is a net.Socket, which can be unreferenced.
  for (const handle of [child, child.channel, child.stderr as Socket | null]) {
    if (held) handle?.ref();
    else handle?.unref();
  }
}

/**
 * Starts the child of the next evaluation now: a command that will evaluate calls this first, so
 * that the child's start (a Node process, then ONNX Runtime) overlaps its reading of the models
 * (its cost: bench/RESULTS.md, §"ONNX Runtime in a child process: what it costs").
 */
export function prestartOrtChild(): void {
  if (spare) return;
  spare = spawnChild();
  hold(spare, false);
}

function takeSpare(): ChildProcess | undefined {
  const child = spare;
  spare = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null || !child.connected) return undefined;
  hold(child, true);
  return child;
}

type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;

interface Waiting {
  id: number;
  phase: 'loading' | 'running';
  label: string;
  inputs: NamedArray[];
  /** What a run failure suggests (runFailure's default unless given). */
  hint?: string;
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
  onTick?: () => void;
}

/**
 * Session options for runs inside a pass on the pass's `threads` (the kernels wait for them): idle
 * threads sleep rather than spin. Calibration on BERT-base's 128 × 32 tokens 42.0 → 28.4 s on two,
 * the same sums (bench/RESULTS.md, "Calibration on every thread"); the checks' few batches likewise.
 */
export function onPassThreads(threads: number): { spinning?: boolean } {
  return threads > 1 ? { spinning: false } : {};
}

/**
 * One child process running ONNX Runtime, and the time budget of what it runs: requests go one at
 * a time, and the budget counts the time spent waiting for them since the construction (or
 * restartBudget), not the caller's own work between them (GPTQ's Gram matrices can take longer
 * than the runs). After a crash or a timeout the sessions are gone; the next load starts a new child.
 */
export class OrtProcess {
  private child?: ChildProcess;
  private waiting?: Waiting;
  private nextId = 0;
  private stderr = '';
  /** Milliseconds spent waiting for the child, against the budget. */
  private spentMs = 0;
  private sessions: RemoteSession[] = [];

  constructor(private readonly timeoutS = DEFAULT_EVAL_TIMEOUT_S) {
    this.restartBudget();
  }

  /** Starts the child now, so that it boots and loads ONNX Runtime while the caller does other work. */
  prestart(): void {
    this.start();
  }

  /** Starts the budget again, for the next of several evaluations run in one child. */
  restartBudget(): void {
    this.spentMs = 0;
  }

  /**
   * `spinning: false` makes ONNX Runtime's idle threads sleep instead of spin, `prepack: false` skips
   * its repacking of weights (see ort.ts SessionOptions).
   */
  async load(path: string, label: string, threads = 1, options: { spinning?: boolean; prepack?: boolean } = {}): Promise<RemoteSession> {
    const id = (await this.request({ op: 'load', path, threads, ...options }, 'loading', label, [])) as number;
    const session = { id, label, child: this.child! };
    this.sessions.push(session);
    return session;
  }

  /** Every output of the model, in the session's output order; `hint` is what a failure suggests. */
  async run(session: RemoteSession, inputs: NamedArray[], hint?: string): Promise<NamedArray[]> {
    this.check([session]);
    return (await this.request(
      { op: 'run', session: session.id, inputs: sendable(inputs) },
      'running',
      session.label,
      inputs,
      undefined,
      hint,
    )) as NamedArray[];
  }

  /**
   * Runs the session and adds the named outputs' statistics to those the child keeps for it (see
   * the 'collect' request); the outputs stay in the child.
   */
  async collect(
    session: RemoteSession,
    inputs: NamedArray[],
    names: string[],
    histograms?: Record<string, number>,
    reductions?: Reduction[],
  ): Promise<CollectResult> {
    this.check([session]);
    return (await this.request(
      { op: 'collect', session: session.id, inputs: sendable(inputs), names, histograms, reductions },
      'running',
      session.label,
      inputs,
    )) as CollectResult;
  }

  /**
   * Runs both sessions on `inputs` and compares the named values inside the child, a group at a
   * time within `budgetBytes` (the values never cross to this process): a Fidelity by name.
   */
  async compare(
    reference: RemoteSession,
    candidate: RemoteSession,
    inputs: NamedArray[],
    names: string[],
    budgetBytes: number,
    hint?: string,
  ): Promise<Compared> {
    this.check([reference, candidate]);
    return (await this.request(
      { op: 'compare', reference: reference.id, candidate: candidate.id, inputs: sendable(inputs), names, budgetBytes },
      'running',
      `${reference.label} and ${candidate.label}`,
      inputs,
      undefined,
      hint,
    )) as Compared;
  }

  /**
   * Runs the session and adds the named outputs to the sums the child keeps for it, and each of
   * `grams`' products of an output (see the 'sum' request).
   */
  async sum(
    session: RemoteSession,
    inputs: NamedArray[],
    names: string[],
    grams?: { value: string; session: RemoteSession; into: string }[],
  ): Promise<void> {
    this.check([session, ...(grams ?? []).map((g) => g.session)]);
    const products = grams?.map((g) => ({ value: g.value, session: g.session.id, into: g.into }));
    await this.request(
      { op: 'sum', session: session.id, inputs: sendable(inputs), names, grams: products },
      'running',
      session.label,
      inputs,
    );
  }

  /** The sums of the named outputs (all when absent) over the runs since they were last asked for, by name. */
  async summed(session: RemoteSession, names?: string[]): Promise<Summed> {
    this.check([session]);
    return (await this.request({ op: 'summed', session: session.id, names }, 'running', session.label, [])) as Summed;
  }

  /** The statistics collected for the session since the last call. */
  async collected(session: RemoteSession): Promise<Collected> {
    this.check([session]);
    return (await this.request({ op: 'collected', session: session.id }, 'running', session.label, [])) as Collected;
  }

  /** Milliseconds of each session.run, per session: `runs` rounds in turn, after `warmup` untimed ones. */
  async time(
    sessions: RemoteSession[],
    inputs: NamedArray[],
    runs: number,
    warmup: number,
    onTick?: () => void,
    hint?: string,
  ): Promise<number[][]> {
    this.check(sessions);
    const label = sessions.map((s) => s.label).join(' and ');
    return (await this.request(
      { op: 'time', sessions: sessions.map((s) => s.id), inputs: sendable(inputs), runs, warmup },
      'running',
      label,
      inputs,
      onTick,
      hint,
    )) as number[][];
  }

  /** Frees every session loaded so far (a child that ended took its sessions with it). */
  async releaseAll(): Promise<void> {
    const sessions = this.sessions.filter((s) => s.child === this.child);
    this.sessions = [];
    for (const s of sessions) await this.request({ op: 'release', session: s.id }, 'running', s.label, []);
  }

  private check(sessions: RemoteSession[]): void {
    if (sessions.some((s) => s.child !== this.child)) throw new Error('a session of an ONNX Runtime process that has ended');
  }

  /** Ends the child; it exits as its channel closes. */
  close(): void {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    live.delete(child);
    if (child.connected) child.disconnect();
    // Nothing more is read from it: onnxpress may end without waiting for its exit.
    child.stderr?.destroy();
    child.unref();
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    const child = takeSpare() ?? spawnChild();
    this.stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      this.stderr = (this.stderr + s).slice(-4096);
    });
    child.on('message', (reply: Reply) => this.receive(reply));
    child.on('exit', (code, signal) => this.exited(child, code, signal));
    child.on('error', (e) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.settle((w) => w.reject(e));
    });
    return (this.child = child);
  }

  private request(
    body: RequestBody,
    phase: Waiting['phase'],
    label: string,
    inputs: NamedArray[],
    onTick?: () => void,
    hint?: string,
  ): Promise<unknown> {
    if (this.waiting) return Promise.reject(new Error('ONNX Runtime child: one request at a time'));
    return new Promise((resolve, reject) => {
      const budgetMs = this.timeoutS * 1000 - this.spentMs;
      if (budgetMs <= 0) return reject(timeoutFailure(label, phase, this.timeoutS));
      const child = this.start();
      const id = ++this.nextId;
      const begun = performance.now();
      let timer: NodeJS.Timeout;
      const arm = () => {
        const left = budgetMs - (performance.now() - begun);
        if (left > 0) {
          timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
          return;
        }
        // Over budget: the child may be blocked in session.run, so it is killed, not asked.
        this.kill();
        this.settle((w) => w.reject(timeoutFailure(label, phase, this.timeoutS)));
      };
      arm();
      const done =
        <T>(f: (v: T) => void) =>
        (v: T) => {
          clearTimeout(timer);
          this.spentMs += performance.now() - begun;
          f(v);
        };
      this.waiting = { id, phase, label, inputs, hint, resolve: done(resolve), reject: done(reject), onTick };
      try {
        // A send that fails because the child died is reported by its exit, with the signal.
        child.send({ ...body, id } as Request, () => {});
      } catch (e) {
        this.settle((w) => w.reject(e));
      }
    });
  }

  private settle(f: (w: Waiting) => void): void {
    const w = this.waiting;
    this.waiting = undefined;
    if (w) f(w);
  }

  private receive(reply: Reply): void {
    const w = this.waiting;
    if (!w || reply.id !== w.id) return;
    if (reply.tick) {
      w.onTick?.();
      return;
    }
    if (reply.error === undefined) {
      this.settle((x) => x.resolve(reply.result));
      return;
    }
    this.settle((x) =>
      x.reject(x.phase === 'loading' ? loadFailure(x.label, reply.error!) : runFailure(x.label, reply.error!, x.inputs, x.hint)),
    );
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    const how = signal ?? `exit code ${code}`;
    this.settle((w) => w.reject(crashFailure(w.label, w.phase, how, this.stderr)));
  }

  private kill(): void {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill('SIGKILL');
  }
}

/**
 * Typed arrays that view part of a larger buffer (tensors read from a file are views into it) are
 * copied first: structured clone sends a view's whole buffer.
 */
function sendable(inputs: NamedArray[]): NamedArray[] {
  return inputs.map((a) => {
    if (Array.isArray(a.data) || a.data.byteLength === a.data.buffer.byteLength) return a;
    return { ...a, data: a.data.slice() } as NamedArray;
  });
}
