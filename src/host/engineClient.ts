// The extension host's side of the engine process (src/explain/server/main.ts): starts it lazily
// with Node's child_process.fork (advanced serialization: typed arrays cross as bytes), sends typed
// requests, relays progress, cancels (the engine stops at its next step; a hard cancel terminates
// it when it does not answer in time), watches its memory and turns its death into errors for the
// requests it was working on. The next request starts a new process. No `vscode` import.
import { fork, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import {
  ENGINE_ERRORS,
  type FromEngine,
  type RequestKind,
  type RequestOf,
  type ResultOf,
  type ToEngine,
  type WireError,
} from '../explain/server/protocol';

/** What a cancel did: nothing was running, the engine stopped the request, or the engine was terminated. */
export type CancelOutcome = 'idle' | 'stopped' | 'terminated' | 'stopping';

export interface EngineClientOptions {
  /** The bundled engine entry (dist/engine.js). */
  entry: string;
  /** Node options before the entry (tests: ['--import', 'tsx'] to run the TypeScript source). */
  execArgv?: string[];
  /** The memory limit in MiB (lrpLens.engineMemoryMb), read when the process starts. */
  memoryMb: () => number;
  log?: (line: string) => void;
  /** How long a hard cancel waits for the engine to stop before terminating it (default 500 ms). */
  cancelGraceMs?: number;
  /** RSS check period while requests run (default 250 ms). */
  rssPollMs?: number;
  /** Scheduling priority of the engine process (nice value, default 10): the editor comes first. */
  nice?: number;
}

/** What callers of the engine use: EngineClient in the same thread, EngineLink through a worker. */
export interface Engine {
  request<K extends RequestKind>(kind: K, body: RequestOf<K>, opts?: RequestOptions): EngineCall<ResultOf<K>>;
  dispose(): Promise<void>;
}

/** `what` names the work in error messages; progress messages go to `onProgress`. */
export interface RequestOptions {
  what?: string;
  onProgress?: (message: string) => void;
}

export interface EngineCall<T> {
  readonly id: number;
  readonly result: Promise<T>;
  /**
   * Stops the request. Soft (default): the engine stops it at its next step. Hard (the user's
   * Cancel): when the engine has not stopped within the grace period it is terminated; the other
   * requests it was running are sent again to a new process.
   */
  cancel(hard?: boolean): Promise<CancelOutcome>;
}

interface Pending {
  id: number;
  kind: RequestKind;
  body: unknown;
  /** For messages: what the request was doing, e.g. "explaining cat.png with model.onnx". */
  what: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: (message: string) => void;
  cancelled: boolean;
  /** Callbacks waiting for the request to end (cancel's wait). */
  settled: (() => void)[];
  resent: number;
  /** The process the request was sent to. */
  proc?: ChildProcess;
}

type KillReason = { kind: 'cancel' } | { kind: 'memory'; rssMb: number; limitMb: number } | { kind: 'dispose' };

/** An error with the name the engine (or this client) gave it; host/errors.ts titles it by name. */
export function engineError(e: WireError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

export class EngineClient implements Engine {
  private proc: ChildProcess | undefined;
  private procMemoryMb = 0;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private rssTimer: NodeJS.Timeout | undefined;
  /** Why this client killed a process (so its exit is not reported as a crash). */
  private readonly killReasons = new WeakMap<ChildProcess, KillReason>();
  private stderrTail: string[] = [];
  private disposed = false;
  /** Incremented on every process start (tests and logs). */
  starts = 0;

  constructor(private readonly opts: EngineClientOptions) {}

  /** PID of the running engine process, if any. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  request<K extends RequestKind>(kind: K, body: RequestOf<K>, opts: RequestOptions = {}): EngineCall<ResultOf<K>> {
    const id = this.nextId++;
    let resolve!: (v: unknown) => void;
    let reject!: (e: Error) => void;
    const result = new Promise<ResultOf<K>>((res, rej) => {
      resolve = res as (v: unknown) => void;
      reject = rej;
    });
    const p: Pending = { id, kind, body, what: opts.what ?? kind, resolve, reject, onProgress: opts.onProgress, cancelled: false, settled: [], resent: 0 };
    if (this.disposed) reject(engineError({ name: ENGINE_ERRORS.cancelled, message: 'the extension is shutting down' }));
    else {
      this.pending.set(id, p);
      this.send(p);
    }
    return { id, result, cancel: (hard = false) => this.cancel(id, hard) };
  }

  private send(p: Pending): void {
    let proc: ChildProcess;
    try {
      proc = this.ensure();
    } catch (err) {
      this.settle(p, () => p.reject(new Error(`cannot start the engine process: ${(err as Error).message}`)));
      return;
    }
    const msg: ToEngine = { type: 'request', id: p.id, kind: p.kind, body: p.body as RequestOf<RequestKind> };
    p.proc = proc;
    proc.send(msg, (err) => {
      // a process that died before reading it: its exit handler reports the request
      if (err) this.log(`engine: could not send request ${p.id}: ${err.message}`);
    });
    this.watchMemory();
  }

  private ensure(): ChildProcess {
    const mem = Math.max(256, Math.round(this.opts.memoryMb()));
    // a changed memory limit applies from the next start; an idle process is replaced at once
    if (this.proc && mem !== this.procMemoryMb && ![...this.pending.values()].some((p) => p.proc === this.proc)) this.stopIdle();
    if (this.proc) return this.proc;
    this.stderrTail = [];
    const t0 = performance.now();
    const proc = fork(this.opts.entry, [], {
      serialization: 'advanced',
      execArgv: [...(this.opts.execArgv ?? []), `--max-old-space-size=${mem}`],
      env: { ...process.env, LRP_ENGINE_MEMORY_MB: String(mem), ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.proc = proc;
    this.procMemoryMb = mem;
    this.starts++;
    try {
      if (proc.pid) os.setPriority(proc.pid, this.opts.nice ?? 10);
    } catch {
      // not permitted here: the engine runs at normal priority
    }
    this.log(`engine: started process ${proc.pid} in ${(performance.now() - t0).toFixed(0)} ms (memory limit ${mem} MB)`);
    const lines = (stream: NodeJS.ReadableStream | null, err: boolean): void => {
      let buf = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).trimEnd();
          buf = buf.slice(i + 1);
          if (!line) continue;
          this.log(`engine ${err ? 'stderr' : 'stdout'}: ${line}`);
          if (err) this.stderrTail = [...this.stderrTail, line].slice(-5);
        }
      });
    };
    lines(proc.stdout, false);
    lines(proc.stderr, true);
    proc.on('message', (m: FromEngine) => this.onMessage(proc, m));
    proc.on('error', (err) => this.log(`engine: process error: ${err.message}`));
    proc.on('exit', (code, signal) => this.onExit(proc, code, signal));
    return proc;
  }

  private stopIdle(): void {
    const proc = this.proc;
    if (!proc) return;
    this.killReasons.set(proc, { kind: 'dispose' });
    this.proc = undefined;
    proc.kill('SIGKILL');
    this.log(`engine: restarting with a new memory limit`);
  }

  private onMessage(proc: ChildProcess, m: FromEngine): void {
    if (proc !== this.proc) return;
    if (m.type === 'ready') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    switch (m.type) {
      case 'progress':
        if (!p.cancelled) p.onProgress?.(m.message);
        break;
      case 'result':
        this.settle(p, () => (p.cancelled ? p.reject(engineError({ name: ENGINE_ERRORS.cancelled, message: 'Cancelled' })) : p.resolve(m.result)));
        break;
      case 'error':
        this.settle(p, () => p.reject(engineError(m.error)));
        break;
      case 'cancelled':
        this.settle(p, () => p.reject(engineError({ name: ENGINE_ERRORS.cancelled, message: 'Cancelled' })));
        break;
    }
  }

  private settle(p: Pending, how: () => void): void {
    if (this.pending.get(p.id) !== p) return;
    this.pending.delete(p.id);
    how();
    for (const f of p.settled) f();
    if (!this.pending.size) this.stopWatchingMemory();
  }

  private async cancel(id: number, hard: boolean): Promise<CancelOutcome> {
    const p = this.pending.get(id);
    const proc = this.proc;
    if (!p || !proc) return 'idle';
    p.cancelled = true;
    const stopped = new Promise<'stopped'>((r) => p.settled.push(() => r('stopped')));
    proc.send({ type: 'cancel', id } satisfies ToEngine, () => undefined);
    if (!hard) return 'stopping';
    const grace = this.opts.cancelGraceMs ?? 500;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([stopped, new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), grace)))]);
    clearTimeout(timer);
    if (outcome === 'stopped') return 'stopped';
    if (this.proc !== proc) return 'terminated';
    this.log(`engine: request ${id} did not stop within ${grace} ms of Cancel; terminating process ${proc.pid}`);
    this.killReasons.set(proc, { kind: 'cancel' });
    proc.kill('SIGKILL');
    await stopped;
    return 'terminated';
  }

  private onExit(proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const reason = this.killReasons.get(proc);
    if (this.proc === proc) {
      this.proc = undefined;
      this.stopWatchingMemory();
    }
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    this.log(`engine: process ${proc.pid} ended (${how})${reason ? ` [${reason.kind}]` : ''}`);
    const tail = this.stderrTail.length ? ` Last engine output: ${this.stderrTail[this.stderrTail.length - 1]}` : '';
    const again: Pending[] = [];
    for (const p of [...this.pending.values()].filter((x) => x.proc === proc)) {
      if (p.cancelled || reason?.kind === 'dispose') {
        this.settle(p, () => p.reject(engineError({ name: ENGINE_ERRORS.cancelled, message: 'Cancelled' })));
      } else if (reason?.kind === 'cancel' && p.resent < 1) {
        // terminated because another request was cancelled: this one goes to the new process
        again.push(p);
      } else if (reason?.kind === 'memory') {
        this.settle(p, () =>
          p.reject(
            engineError({
              name: ENGINE_ERRORS.memory,
              message: `The engine used ${reason.rssMb} MB while ${p.what}, more than its memory limit of ${reason.limitMb} MB (setting lrpLens.engineMemoryMb); it was stopped`,
            }),
          ),
        );
      } else {
        this.settle(p, () =>
          p.reject(
            engineError({
              name: ENGINE_ERRORS.crashed,
              message: `The engine process ended unexpectedly (${how}) while ${p.what}. VS Code and the other panels are not affected; Retry starts a new engine.${tail}`,
            }),
          ),
        );
      }
    }
    for (const p of again) {
      p.resent++;
      this.send(p);
    }
  }

  private watchMemory(): void {
    if (this.rssTimer || process.platform !== 'linux') return;
    let reading = false;
    this.rssTimer = setInterval(async () => {
      const proc = this.proc;
      if (!proc?.pid || reading) return;
      reading = true;
      const rssMb = await readRssMb(proc.pid);
      reading = false;
      if (rssMb === undefined || rssMb <= this.procMemoryMb || proc !== this.proc) return;
      this.log(`engine: process ${proc.pid} uses ${rssMb} MB, over its limit of ${this.procMemoryMb} MB; terminating it`);
      this.killReasons.set(proc, { kind: 'memory', rssMb, limitMb: this.procMemoryMb });
      proc.kill('SIGKILL');
    }, this.opts.rssPollMs ?? 250);
    this.rssTimer.unref();
  }

  private stopWatchingMemory(): void {
    if (this.rssTimer) clearInterval(this.rssTimer);
    this.rssTimer = undefined;
  }

  /** Ends the process; requests in flight end as cancelled. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const proc = this.proc;
    this.stopWatchingMemory();
    if (!proc) return;
    const gone = new Promise<void>((r) => proc.once('exit', () => r()));
    this.killReasons.set(proc, { kind: 'dispose' });
    proc.kill('SIGKILL');
    await gone;
  }
}

/**
 * Resident set size of a process in MiB (Linux: /proc/PID/statm), undefined elsewhere or when
 * gone. Asynchronous: the extension host's thread never waits on /proc.
 */
export async function readRssMb(pid: number): Promise<number | undefined> {
  try {
    const pages = Number((await fsp.readFile(`/proc/${pid}/statm`, 'utf8')).split(' ')[1]);
    return Math.round((pages * 4096) / 2 ** 20);
  } catch {
    return undefined;
  }
}
