// The engine process: forked by the extension host (src/host/engineClient.ts) with an IPC channel
// in advanced serialization. Keeps loaded models and compiled programs between requests, runs
// requests concurrently, reports progress, and stops a cancelled request at its next step.
// The memory limit comes as `--max-old-space-size` (V8 heap) and LRP_ENGINE_MEMORY_MB (the
// model-size check; the host watches the process's RSS).
import { EngineCancelledError, EngineService } from './service';
import type { FromEngine, RequestKind, ToEngine } from './protocol';

function send(msg: FromEngine): void {
  if (process.connected) process.send?.(msg);
}

const limit = Number(process.env.LRP_ENGINE_MEMORY_MB);
const service = new EngineService({ memoryMb: Number.isFinite(limit) && limit > 0 ? limit : undefined });
const cancelled = new Set<number>();
const running = new Set<number>();

async function run(id: number, kind: RequestKind, body: unknown): Promise<void> {
  running.add(id);
  const ctx = {
    progress: (message: string) => send({ type: 'progress', id, message }),
    check: () => {
      if (cancelled.has(id)) throw new EngineCancelledError();
    },
  };
  try {
    ctx.check();
    const result = await service.handle(kind, body as never, ctx);
    if (cancelled.has(id)) send({ type: 'cancelled', id });
    else send({ type: 'result', id, result });
  } catch (err) {
    if (err instanceof EngineCancelledError || cancelled.has(id)) send({ type: 'cancelled', id });
    else {
      const e = err instanceof Error ? err : new Error(String(err));
      send({ type: 'error', id, error: { name: e.name, message: e.message || String(err) } });
    }
  } finally {
    running.delete(id);
    cancelled.delete(id);
  }
}

process.on('message', (raw: ToEngine) => {
  if (raw.type === 'request') void run(raw.id, raw.kind, raw.body);
  else if (raw.type === 'cancel' && running.has(raw.id)) cancelled.add(raw.id);
});

// the host went away: nothing left to answer
process.on('disconnect', () => {
  void service.dispose().finally(() => process.exit(0));
});

send({ type: 'ready', pid: process.pid });
