// The extension host's handle on the engine process, kept off the host's thread. Starting a child
// process forks the caller, and fork copies the caller's page tables while its thread waits: from
// an extension host of a few hundred MB that is 50 to 200 ms with every extension frozen (measured;
// nodejs/node#14917). So a worker thread (dist/engine-link.js, ./engineLinkWorker.ts) owns the
// EngineClient and its process: the fork, the IPC and the deserialising of large results all run
// there, and this class only passes requests, progress, results and cancels across a MessagePort.
// Same surface as EngineClient (request, pid, dispose). No `vscode` import.
import { Worker } from 'node:worker_threads';
import { ENGINE_ERRORS, type RequestKind, type RequestOf, type ResultOf } from '../explain/server/protocol';
import { engineError, type CancelOutcome, type Engine, type EngineCall, type RequestOptions } from './engineClient';

/** Main thread -> worker. */
export type ToLink =
  | { type: 'request'; id: number; kind: RequestKind; body: unknown; what?: string; memoryMb: number }
  | { type: 'cancel'; id: number; hard: boolean }
  | { type: 'dispose' };

/** Worker -> main thread. */
export type FromLink =
  | { type: 'progress'; id: number; message: string }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; error: { name: string; message: string } }
  | { type: 'cancelOutcome'; id: number; outcome: CancelOutcome }
  | { type: 'pid'; pid: number | undefined; starts: number }
  | { type: 'log'; line: string }
  | { type: 'disposed' };

/** What the worker's EngineClient is built with (workerData). */
export interface LinkOptions {
  entry: string;
  execArgv?: string[];
  cancelGraceMs?: number;
  rssPollMs?: number;
  nice?: number;
}

export interface EngineLinkOptions extends LinkOptions {
  /** The worker's bundle (dist/engine-link.js). */
  worker: string;
  /** Node options of the worker (tests: ['--import', 'tsx'] to run the TypeScript source). */
  workerExecArgv?: string[];
  /** The memory limit in MiB (lrpLens.engineMemoryMb), read with every request. */
  memoryMb: () => number;
  log?: (line: string) => void;
}

interface Waiting {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: (message: string) => void;
}

export class EngineLink implements Engine {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiting>();
  /** Cancels waiting for their outcome (it may come after the request's end). */
  private readonly cancels = new Map<number, ((o: CancelOutcome) => void)[]>();
  private nextId = 1;
  private disposed = false;
  private enginePid: number | undefined;
  /** Engine process starts so far (tests and logs). */
  starts = 0;

  constructor(private readonly opts: EngineLinkOptions) {}

  /** PID of the running engine process, if any (as last reported by the worker). */
  get pid(): number | undefined {
    return this.enginePid;
  }

  request<K extends RequestKind>(kind: K, body: RequestOf<K>, opts: RequestOptions = {}): EngineCall<ResultOf<K>> {
    const id = this.nextId++;
    let w!: Waiting;
    const result = new Promise<ResultOf<K>>((resolve, reject) => {
      w = { resolve: resolve as (v: unknown) => void, reject, onProgress: opts.onProgress };
    });
    const cancel = (hard = false): Promise<CancelOutcome> => {
      if (!this.waiting.has(id) || !this.worker) return Promise.resolve('idle');
      return new Promise<CancelOutcome>((r) => {
        this.cancels.set(id, [...(this.cancels.get(id) ?? []), r]);
        this.post({ type: 'cancel', id, hard });
      });
    };
    if (this.disposed) {
      w.reject(engineError({ name: ENGINE_ERRORS.cancelled, message: 'the extension is shutting down' }));
      return { id, result, cancel };
    }
    this.waiting.set(id, w);
    try {
      this.post({ type: 'request', id, kind, body, what: opts.what, memoryMb: this.opts.memoryMb() });
    } catch (err) {
      this.waiting.delete(id);
      w.reject(new Error(`cannot start the engine: ${(err as Error).message}`));
    }
    return { id, result, cancel };
  }

  private post(msg: ToLink): void {
    this.ensure().postMessage(msg);
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const { worker, workerExecArgv, memoryMb: _m, log: _l, ...link } = this.opts;
    const w = new Worker(worker, { workerData: link satisfies LinkOptions, execArgv: workerExecArgv ?? [] });
    w.on('message', (m: FromLink) => this.onMessage(m));
    w.on('error', (err) => this.lost(w, `the engine's thread failed: ${err.message}`));
    w.on('exit', (code) => this.lost(w, `the engine's thread ended (exit code ${code})`));
    this.worker = w;
    return w;
  }

  /** The worker is gone: every request waiting on it fails, the next request starts a new one. */
  private lost(w: Worker, why: string): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    this.enginePid = undefined;
    if (!this.disposed) this.opts.log?.(`engine: ${why}`);
    for (const waits of this.cancels.values()) for (const c of waits) c('terminated');
    this.cancels.clear();
    for (const [id, p] of this.waiting) {
      this.waiting.delete(id);
      p.reject(engineError({ name: this.disposed ? ENGINE_ERRORS.cancelled : ENGINE_ERRORS.crashed, message: this.disposed ? 'Cancelled' : `${why}; Retry starts a new engine.` }));
    }
  }

  private onMessage(m: FromLink): void {
    switch (m.type) {
      case 'log':
        this.opts.log?.(m.line);
        return;
      case 'pid':
        this.enginePid = m.pid;
        this.starts = m.starts;
        return;
      case 'disposed':
        return;
      case 'progress':
        this.waiting.get(m.id)?.onProgress?.(m.message);
        return;
      case 'cancelOutcome':
        for (const c of this.cancels.get(m.id) ?? []) c(m.outcome);
        this.cancels.delete(m.id);
        return;
      case 'result':
      case 'error': {
        const p = this.waiting.get(m.id);
        if (!p) return;
        this.waiting.delete(m.id);
        if (m.type === 'result') p.resolve(m.result);
        else p.reject(engineError(m.error));
        return;
      }
    }
  }

  /** Ends the engine process and the thread; requests in flight end as cancelled. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const w = this.worker;
    if (!w) return;
    const gone = new Promise<void>((r) => w.once('exit', () => r()));
    w.postMessage({ type: 'dispose' } satisfies ToLink);
    const timer = setTimeout(() => void w.terminate(), 2000);
    await gone;
    clearTimeout(timer);
  }
}
